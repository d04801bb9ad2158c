"""perseus ui without a server: live statistics, the login rule for non-loopback addresses, deployments."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from perseus.analysis.stats import percentiles, sla_attainment, sla_latency
from perseus.errors import InputError
from perseus.ui import PASSWORD_ENV, USER_ENV, _deployment, credentials_for, is_loopback
from perseus.ui.live import LiveStats, TenantInfo, load_text
from tests.conftest import REPO_ROOT, cli_env, unchanged_paths


def record(tenant, done, latency_ms, ok=True, warmup=False):
    # results.REQUEST_SCHEMA order
    scheduled = done - latency_ms / 1e3
    return (tenant, "m", "shared", scheduled, scheduled, done, latency_ms, latency_ms, ok, None if ok else "e", warmup)


def test_live_stats_match_the_report_functions():
    rng = np.random.default_rng(3)
    lat = rng.exponential(20.0, size=500)
    ok = rng.uniform(size=500) > 0.02
    live = LiveStats([TenantInfo("a", "m", 30.0, 95.0, "poisson 10/s"), TenantInfo("b", "m", 5.0, 99.0, "closed x2")])
    for i, (x, good) in enumerate(zip(lat, ok, strict=True)):
        live.add(record("a", i / 10, float(x), bool(good)))
    live.add(record("a", -0.5, 1.0, warmup=True))  # warm-up: counted apart, never in the statistics
    live.add(record("zzz", 1.0, 1.0))  # not a tenant of this deployment: ignored
    a, b = live.rows(now_s=50.0, duration_s=60.0)
    expected = percentiles(lat[ok], (50, 99))
    assert a["requests"] == 500 and a["errors"] == int((~ok).sum()) and a["warmup"] == 1
    assert a["p50"] == round(expected[50], 2) and a["p99"] == round(expected[99], 2)
    assert a["attainment"] == round(100 * sla_attainment(lat, ok, 30.0), 2)
    sla = sla_latency(lat, ok, 95.0)
    assert a["slalatency"] == ("failed" if np.isinf(sla) else round(sla, 2))
    assert a["met"] == ("yes" if sla <= 30.0 else "no")
    assert a["rps"] == round(ok.sum() / 50.0, 1)
    assert a["sla"] == "p95 <= 30 ms"
    # nothing measured yet: no numbers, and JSON-safe (no NaN)
    assert b["requests"] == 0 and b["p50"] is None and b["p99"] is None and b["met"] is None and b["rps"] == 0.0


def test_live_p99_of_the_last_10_seconds():
    live = LiveStats([TenantInfo("a", "m", 100.0, 99.0, "constant 1/s")])
    for t in range(30):
        live.add(record("a", float(t), 500.0 if t < 15 else 5.0))
    (row,) = live.rows(now_s=30.0)
    assert row["p99recent"] == 5.0
    assert row["p99"] > 400


def test_load_text():
    assert load_text("poisson", 25.0, None) == "poisson 25/s"
    assert load_text("closed", None, 4) == "closed x4"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_login(host):
    assert is_loopback(host)
    assert credentials_for(host, {}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.5", "example.org"])
def test_other_addresses_need_a_login(host):
    assert not is_loopback(host)
    with pytest.raises(InputError, match=f"{USER_ENV} and {PASSWORD_ENV}"):
        credentials_for(host, {})
    with pytest.raises(InputError):
        credentials_for(host, {USER_ENV: "alice", PASSWORD_ENV: ""})
    creds = credentials_for(host, {USER_ENV: "alice", PASSWORD_ENV: "s3cret"})
    assert creds.check("alice", "s3cret")
    assert not creds.check("alice", "s3cre")
    assert not creds.check("bob", "s3cret")


def test_deployments():
    from perseus.scenario import load

    scenario, _ = load(REPO_ROOT / "scenarios" / "smoke.toml")
    assert _deployment(scenario, "shared").tenants == ("vision", "series")
    assert _deployment(scenario, "solo-series").tenants == ("series",)
    with pytest.raises(InputError, match="choose: shared, solo-vision, solo-series"):
        _deployment(scenario, "solo-nobody")


def test_deployments_on_each_server_kind():
    """With [run] servers, the UI serves any deployment of `perseus run` on one kind, by the same name."""
    from perseus.plan import plan, scenario_for
    from perseus.scenario import load

    scenario, _ = load(REPO_ROOT / "scenarios" / "smoke.toml")
    scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"servers": ["triton", "mlserver"]})})
    chosen = _deployment(scenario, "solo-series@mlserver")
    assert chosen.tenants == ("series",) and chosen.server == "mlserver"
    assert scenario_for(scenario, chosen).server.kind == "mlserver"
    assert chosen in plan(scenario)  # the very deployment `perseus run` measures under that name
    with pytest.raises(InputError, match="choose: shared@triton, shared@mlserver, solo-vision@triton"):
        _deployment(scenario, "shared")  # ambiguous: which kind is for the user to say


TINY_APP = """
import typer
from perseus.ui import ui_command
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("ui")(ui_command)
app.command("version")(lambda: None)
app()
"""


def test_refuses_a_public_address_without_a_login(tmp_path):
    env = cli_env()
    env.pop(USER_ENV, None)
    env.pop(PASSWORD_ENV, None)
    run_dir = tmp_path / "run"
    args = ["scenarios/smoke.toml", "--web-host", "0.0.0.0", "--out", str(run_dir)]
    with unchanged_paths(REPO_ROOT / "model_repository"):
        proc = subprocess.run(
            [sys.executable, "-c", TINY_APP, "ui", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("perseus: --web-host: ") and PASSWORD_ENV in lines[0]
    assert not run_dir.exists()


def test_live_series_one_point_per_ten_seconds_with_the_window_in_progress():
    tenants = [TenantInfo("a", "m", 100.0, 99.0, "constant 2/s", 2.0), TenantInfo("b", "m", 9.0, 95.0, "closed x1")]
    live = LiveStats(tenants)
    for i in range(50):  # 2 per second for 25 s: 10 ms for the first 10 s, then 40 ms
        t = i / 2
        live.add(record("a", t, 10.0 if t < 10 else 40.0, ok=i != 30))
    live.add(record("a", -0.5, 999.0, warmup=True))
    a, b = live.series(now_s=25.0, duration_s=60.0)
    assert (a["sla_ms"], a["sla_percentile"], a["target_rps"]) == (100.0, 99.0, 2.0)
    assert [w["t"] for w in a["windows"]] == [10.0, 20.0, 25.0]  # the last window is the one in progress
    first, second, last = a["windows"]
    assert first == {"t": 10.0, "p50": 10.0, "p99": 10.0, "rps": 2.0}
    assert second["p50"] == 40.0 and second["rps"] == 1.9  # one of its 20 failed
    assert last["t"] == 25.0 and last["rps"] == round(10 / 5, 1)
    assert b["windows"] == [{"t": 10.0, "p50": None, "p99": None, "rps": 0.0}, {"t": 20.0, "p50": None, "p99": None,
                            "rps": 0.0}, {"t": 25.0, "p50": None, "p99": None, "rps": 0.0}]  # fmt: skip
    assert b["target_rps"] is None
