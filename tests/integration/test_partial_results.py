"""Data safety: `perseus report` on partial run folders, and `--out` never overwrites anything.

The run folder is built here without a server (the manifest with perseus.run's own functions, the
records with perseus.records.StreamWriter), then damaged the way crashes damage it:
- a deployment whose requests.parquet is gone;
- a deployment whose process died mid-run (os._exit), leaving only requests.arrows, its last
  batch torn.
The real CLI must still build the report, and say what is missing.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from perseus import checks, results
from perseus import run as runs
from perseus.kinds import Status
from perseus.plan import plan
from perseus.records import STREAM_SUFFIX, StreamWriter
from perseus.scenario import parse
from tests.conftest import REPO_ROOT, run_cli, unchanged_paths

pytestmark = pytest.mark.integration

GOOD_FILE = REPO_ROOT / "tests" / "data" / "good_scenario.toml"
DURATION = 2.0
PER_TENANT = 40
FIRST_BATCH, SECOND_BATCH = 25, 30

# Writes two batches to a stream, then dies without closing it (no end marker, no Parquet).
CRASH = f"""
import os, sys
from pathlib import Path
from perseus import results
from perseus.records import StreamWriter

def row(i):
    t = i * 0.05
    return ("series", "lstm_tiny", "solo-series", t, t + 0.001, t + 0.011, 11.0, 10.0, True, None, False)

w = StreamWriter(Path(sys.argv[1]), results.REQUEST_SCHEMA)
for i in range({FIRST_BATCH}):
    w.add(row(i))
w.flush()
for i in range({FIRST_BATCH}, {FIRST_BATCH + SECOND_BATCH}):
    w.add(row(i))
w.flush()
os._exit(1)
"""


def _rows(deployment: str, tenant: str, model: str, n: int) -> list[tuple]:
    out = []
    for i in range(n):
        t = i * DURATION / n
        out.append((tenant, model, deployment, t, t + 0.001, t + 0.02, 20.0, 19.0, True, None, False))
    return out


def _write_complete(folder: Path, rows: list[tuple]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    requests = StreamWriter(folder / results.REQUESTS, results.REQUEST_SCHEMA)
    for r in rows:
        requests.add(r)
    requests.close()
    telemetry = StreamWriter(folder / results.TELEMETRY, results.TELEMETRY_SCHEMA)
    telemetry.add((0.5, "host", "cpu_percent", "{}", 10.0))
    telemetry.close()
    (folder / results.SERVER_LOG).write_text("server log\n")


@pytest.fixture
def partial_run(tmp_path: Path) -> Path:
    raw = tomllib.loads(GOOD_FILE.read_text())
    data = copy.deepcopy(raw)
    data["run"]["baselines"] = True
    data["run"]["duration_s"] = DURATION
    scenario = parse(data, str(GOOD_FILE))
    deployments = plan(scenario)
    assert [d.name for d in deployments] == ["shared", "solo-vision", "solo-series"]
    price = checks.check_price(scenario, str(GOOD_FILE))
    run_dir = checks.prepare_run_dir(tmp_path / "run", scenario.name)
    ready = checks.Prepared(GOOD_FILE, raw, scenario, Path("model_repository"), price, [], "no GPU (test)", False)
    manifest = runs.new_manifest(ready, deployments, "perseus run x")
    runs.save_inputs(run_dir, GOOD_FILE, manifest)

    models = {t.name: t.model for t in scenario.tenants}
    for d in deployments:
        rows = [r for t in d.tenants for r in _rows(d.name, t, models[t], PER_TENANT)]
        manifest.finish(
            d.name, status=Status.COMPLETED, requests=len(rows), started=results.utc_now(), ended=results.utc_now()
        )
        if d.name != "solo-series":
            _write_complete(run_dir / d.name, rows)
    # solo-vision: measured, but its records were lost afterwards.
    (run_dir / "solo-vision" / results.REQUESTS).unlink()
    # solo-series: the process died mid-deployment.
    series = run_dir / "solo-series"
    series.mkdir()
    subprocess.run([sys.executable, "-c", CRASH, str(series / results.REQUESTS)], check=False, timeout=60)
    stream = (series / results.REQUESTS).with_suffix(STREAM_SUFFIX)
    size = stream.stat().st_size
    with open(stream, "r+b") as f:
        f.truncate(size - 100)  # tear the second batch
    manifest.finish("solo-series", status=Status.RUNNING)
    manifest.status = Status.RUNNING
    manifest.save(run_dir)
    return run_dir


def test_report_on_a_partial_folder_labels_what_is_missing(partial_run: Path):
    assert not (partial_run / "solo-series" / results.REQUESTS).exists()
    proc = run_cli(["report", partial_run], cwd=partial_run.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(partial_run / results.REPORT_HTML)

    md = (partial_run / results.REPORT_MD).read_text()
    assert "deployment solo-vision: no requests recorded" in md
    assert "deployment solo-series: requests recovered from an unfinished record stream" in md
    assert "deployment shared: no requests" not in md
    html = (partial_run / results.REPORT_HTML).read_text()
    assert "solo-vision: no requests recorded" in html

    # The stream became Parquet: every complete batch kept, the torn one dropped.
    recovered = pd.read_parquet(partial_run / "solo-series" / results.REQUESTS)
    assert len(recovered) == FIRST_BATCH
    assert list(partial_run.rglob(f"*{STREAM_SUFFIX}")) == []

    summary = pd.read_csv(partial_run / results.SUMMARY_CSV)
    rows = {(r.deployment, r.tenant): r for r in summary.itertuples()}
    assert rows[("shared", "vision")].requests == PER_TENANT
    assert rows[("shared", "series")].requests == PER_TENANT
    assert rows[("solo-vision", "vision")].requests == 0
    assert rows[("solo-series", "series")].requests == FIRST_BATCH


def test_report_twice_gives_the_same_summary(partial_run: Path):
    first = run_cli(["report", partial_run], cwd=partial_run.parent, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = (partial_run / results.SUMMARY_CSV).read_text()
    second = run_cli(["report", partial_run], cwd=partial_run.parent, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (partial_run / results.SUMMARY_CSV).read_text() == summary
    md = (partial_run / results.REPORT_MD).read_text()
    assert "deployment solo-vision: no requests recorded" in md
    assert "deployment solo-series running" in md  # the manifest still says it never finished


def test_out_that_is_a_file_is_refused(tmp_path: Path):
    out = tmp_path / "taken"
    out.write_text("mine")
    marker = tmp_path / "TMPDIR"
    with unchanged_paths(out, REPO_ROOT / "model_repository"):
        proc = run_cli(["run", GOOD_FILE, "--out", out], cwd=tmp_path, tmpdir=marker)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("perseus: --out: ")
    assert out.read_text() == "mine"
    assert list(marker.glob("perseus-*")) == []
