"""End to end in a real browser: `perseus ui scenarios/smoke.toml` with a real tritonserver and Locust's
web UI, driven by Debian's Chromium through playwright-core (tests/browser/ui_flow.js).

Start on Locust's page, watch the perseus tab fill, Stop, read the perseus page and open the report it
links; then SIGINT the process and check the run folder and that no tritonserver is left. Needs
/usr/bin/chromium and tests/browser/node_modules/playwright-core (scripts/setup-browser.sh); skips
without them. Set PERSEUS_UI_SCREENSHOT=1 to copy the perseus page's screenshot to tests/artifacts/ui.png.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from perseus import results
from perseus.ports import free_ports
from tests.conftest import cli_env

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = REPO_ROOT / "tests" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
TENANTS = ("vision", "series")  # scenarios/smoke.toml
MEASURE_S = 60  # --duration: long enough that the test, not the schedule, ends the measurement
ARTIFACT = REPO_ROOT / "tests" / "artifacts" / "ui.png"

# Until cli.py registers the command, drive ui_command through a one-command Typer app.
TINY_APP = """
import typer
from perseus.ui import ui_command
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("ui")(ui_command)
app.command("version")(lambda: None)  # a second command, so Typer keeps the `ui` sub-command name
app()
"""


def ui_argv() -> list[str]:
    from perseus.cli import app

    if any(c.name == "ui" for c in app.registered_commands):
        return [sys.executable, "-m", "perseus.cli", "ui"]
    return [sys.executable, "-c", TINY_APP, "ui"]


def missing_tools() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian's chromium; run scripts/setup-browser.sh as root)"
    if shutil.which("node") is None:
        return "node is missing (Node.js runs the playwright-core driver)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed in tests/browser (run scripts/setup-browser.sh)"
    return None


def wait_until_serving(proc: subprocess.Popen, url: str, err_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"perseus ui exited with {proc.returncode}:\n{err_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"perseus ui did not serve {url} within {timeout_s} s:\n{err_path.read_text()[-3000:]}")


WINDOW_PX = 1400  # the width at which every table must fit (issue: a laptop's browser window)


def test_the_reports_tables_fit_a_1400_px_window(tmp_path: Path):
    """report.html of a hand-made three-deployment run, at 1,400 px: no table scrolls sideways, nor the page."""
    from perseus.analysis import plots
    from perseus.analysis.render import render_html
    from tests.unit.test_render import make_ctx, make_run

    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    requests, summary = make_run(b="series-long-name")
    page = tmp_path / "report.html"
    # A status with a long reason, as a stopped or failed deployment has, must wrap rather than widen its table.
    reason = "completed: stopped from the web UI after 12.3 s of the 60 s asked for; analysed over what was measured"
    ctx = make_ctx(deployment_status={"shared": reason, "solo-a": "failed: " + "the server died " * 6})
    page.write_text(render_html(summary, ctx, plots.make_plots(requests, summary, tmp_path / "plots")))
    driver = subprocess.run(
        ["node", str(BROWSER_DIR / "report_layout.js"), str(page), str(WINDOW_PX)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    seen = json.loads(driver.stdout.strip().splitlines()[-1])
    assert seen["tables"] >= 5
    assert seen["overflowing"] == [], seen
    assert seen["pageOverflow"] <= 0, seen


def test_ui_in_a_browser(tmp_path: Path, tritons, kill_tritons):
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    run_dir, marker, shots = tmp_path / "run", tmp_path / "tmp", tmp_path / "browser"
    out_path, err_path = tmp_path / "ui.stdout", tmp_path / "ui.stderr"
    (port,) = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    args = [*ui_argv(), "scenarios/smoke.toml", "--out", str(run_dir), "--web-port", str(port)]
    args += ["--duration", str(MEASURE_S)]
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=cli_env(marker), stdout=out, stderr=err, text=True)
    try:
        wait_until_serving(proc, f"{base}/perseus/stats.json", err_path, timeout_s=180)
        assert run_dir.joinpath(results.MANIFEST).is_file()

        driver = subprocess.run(
            ["node", str(BROWSER_DIR / "ui_flow.js"), base, ",".join(TENANTS), str(shots)],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert driver.returncode == 0, f"{driver.stderr[-4000:]}\n--- perseus ui:\n{err_path.read_text()[-3000:]}"
        seen = json.loads(driver.stdout.strip().splitlines()[-1])
        screenshot = Path(seen["screenshots"]["page"])
        assert screenshot.read_bytes().startswith(b"\x89PNG")
        assert Path(seen["screenshots"]["tab"]).read_bytes().startswith(b"\x89PNG")
        if os.environ.get("PERSEUS_UI_SCREENSHOT"):
            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, ARTIFACT)
        assert seen["phase"].startswith("finished (stopped from the web UI")
        assert seen["reportUrl"].endswith("/perseus/report")
        assert seen["reportOverflow"] == {"tables": [], "page": 0}, seen["reportOverflow"]
        # The PERSEUS tab: a chart per tenant while the test ran, each with its SLA or target line, and the
        # exact-statistics table below them fitting the page; the start form says the users are fixed.
        assert sorted(c["tenant"] for c in seen["liveCharts"]) == sorted(TENANTS)
        assert all(c["references"] >= 1 for c in seen["liveCharts"]), seen["liveCharts"]
        assert seen["tabOverflow"] == {"tables": [], "page": 0}, seen["tabOverflow"]
        assert seen["startForm"]["note"].startswith("Users are fixed: one dispatcher per tenant (2 in all)")
        assert not seen["startForm"]["userCountShown"] and not seen["startForm"]["spawnRateShown"]

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        left = tritons(marker)
        kill_tritons(marker)

    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert out_path.read_text().strip().splitlines()[-1] == str(run_dir)
    assert left == []

    for name in (results.SUMMARY_CSV, results.REPORT_HTML, results.REPORT_MD, results.SCENARIO_COPY):
        assert (run_dir / name).is_file(), name
    requests = pq.read_table(run_dir / "shared" / results.REQUESTS)
    assert requests.schema.remove_metadata().equals(results.REQUEST_SCHEMA)
    assert (run_dir / "shared" / results.TELEMETRY).is_file()
    assert list(run_dir.rglob("*.arrows")) == []

    manifest = results.read_manifest(run_dir)
    entry = manifest["deployments"]["shared"]
    assert manifest["status"] == entry["status"] == "completed"
    assert entry["reason"].startswith("stopped from the web UI")
    assert 2 < entry["duration_s"] < MEASURE_S  # analysed over what was measured before Stop
    assert entry["requests"] == requests.num_rows

    frame = requests.to_pandas()
    measured = frame[~frame["warmup"]]
    summary = pd.read_csv(run_dir / results.SUMMARY_CSV)
    for tenant in TENANTS:
        row = summary[(summary["deployment"] == "shared") & (summary["tenant"] == tenant)].iloc[0]
        assert row["requests"] == (measured["tenant"] == tenant).sum() > 0
        # The perseus page showed the same numbers the summary has: both come from the raw records.
        shown = next(r for r in seen["page"] if r["Tenant"] == tenant)
        assert int(shown["Requests (measured)"]) == row["requests"]
        assert float(shown["p50 ms"]) == pytest.approx(row["p50_ms"], abs=0.006)
        assert float(shown["p99 ms"]) == pytest.approx(row["p99_ms"], abs=0.006)
        assert tenant in seen["reportText"]
