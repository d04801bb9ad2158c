"""Claims of the README, each checked on one real run (tiny models, a few seconds per deployment).

One ``perseus run --repeat 2 --no-baselines`` of four tenants, one per time-varying arrival pattern
(step, spike, ramp, trace), served through Triton and embedded in the load generator:

- ``--repeat 2`` runs every deployment twice, interleaved, and trials.csv has Student-t intervals;
- each pattern's measured arrivals lie where docs/scenario.md says they do;
- the embedded and the external strategy, and both trials, get the very same (tenant, scheduled_s)
  set for the same seed: the same arrivals, not merely as many.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from perseus import results
from tests.conftest import REPO_ROOT, kill_ours, run_cli

pytestmark = pytest.mark.integration

DURATION_S = 3.0
TRACE = [0.0, 0.05, 0.1, 0.4, 0.45, 0.9, 1.0]  # timestamps (s): bursts and gaps, replayed at `rate`

SCENARIO = f"""
name = "claims"
[server]
model_repository = "{REPO_ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = {DURATION_S}
warmup_s = 0.5
min_duration_s = 1
min_requests = 10
strategies = ["external", "embedded"]
[[tenants]]
name = "steps"
model = "lstm_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "step"
steps = [[10, 1], [40, 1]]
[[tenants]]
name = "spike"
model = "resnet_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "spike"
rate = 10
spike_rate = 60
spike_at_s = 1
spike_s = 1
[[tenants]]
name = "ramp"
model = "lstm_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "ramp"
rate = 10
ramp_step = 20
ramp_hold_s = 1
[[tenants]]
name = "trace"
model = "resnet_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "trace"
trace = "trace.csv"
rate = 20
"""
TENANTS = ("steps", "spike", "ramp", "trace")
# Arrivals per level, warm-up (-0.5 s) included: a level's count is its rate x length exactly (the
# stochastic rounding of an integer mean), docs/scenario.md. Step and ramp hold their first rate
# through the warm-up as a level of its own; a spike's base rate runs on from the warm-up to the spike.
LEVELS = {
    "steps": ([-0.5, 0.0, 1.0, 2.0, DURATION_S], [5, 10, 40, 10]),
    "ramp": ([-0.5, 0.0, 1.0, 2.0, DURATION_S], [5, 10, 30, 50]),
    "spike": ([-0.5, 1.0, 2.0, DURATION_S], [15, 60, 10]),
}


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    base = tmp_path_factory.mktemp("claims")
    (base / "trace.csv").write_text("t_s\n" + "\n".join(map(str, TRACE)) + "\n")
    (base / "claims.toml").write_text(SCENARIO)
    out, marker = base / "run", base / "tmp"
    try:
        proc = run_cli(["run", base / "claims.toml", "--out", out, "--repeat", "2", "--no-baselines"],
                       cwd=base, tmpdir=marker, timeout=300)  # fmt: skip
    finally:
        kill_ours(marker)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def arrivals(run_dir, deployment: str) -> pd.DataFrame:
    frame = pq.read_table(run_dir / deployment / results.REQUESTS, columns=["tenant", "scheduled_s", "warmup"])
    return frame.to_pandas()


def schedule_set(frame: pd.DataFrame) -> set[tuple[str, float]]:
    # Rounded to the nanosecond: the schedules are the same float64 arrays, written and read back.
    return set(zip(frame["tenant"].astype(str), frame["scheduled_s"].round(9), strict=True))


def test_repeat_two_runs_every_deployment_twice_with_intervals(claims):
    manifest = json.loads((claims / results.MANIFEST).read_text())
    names = list(manifest["deployments"])
    firsts = ["shared", *(f"embedded-{t}" for t in TENANTS)]
    assert names == firsts + [f"{n}-t2" for n in firsts]  # interleaved: every first trial, then every second
    assert {manifest["deployments"][n]["trial"] for n in names} == {1, 2}
    assert all(manifest["deployments"][f"{n}-t2"]["base"] == n for n in firsts)
    trials = pd.read_csv(claims / results.TRIALS_CSV)
    shared = trials[trials["deployment"] == "shared"].set_index("tenant")
    assert sorted(shared.index) == sorted(TENANTS) and (shared["trials"] == 2).all()
    # Two finite trials give a finite Student-t interval (1 degree of freedom) around their mean.
    low, mean, high = shared["p50_ms_ci_low"], shared["p50_ms_mean"], shared["p50_ms_ci_high"]
    assert np.isfinite(low).all() and (low <= mean).all() and (mean <= high).all()


@pytest.mark.parametrize("tenant", sorted(LEVELS))
def test_each_level_of_a_pattern_gets_its_rate(claims, tenant):
    frame = arrivals(claims, "shared")
    bins, expected = LEVELS[tenant]
    counts, _ = np.histogram(frame.loc[frame["tenant"] == tenant, "scheduled_s"].to_numpy(), bins=bins)
    assert counts.tolist() == expected


def test_a_trace_is_replayed_at_its_mean_rate_with_its_own_gaps(claims):
    frame = arrivals(claims, "shared")
    measured = np.sort(frame[(frame["tenant"] == "trace") & ~frame["warmup"]]["scheduled_s"].to_numpy())
    # 7 timestamps over 1 s, looped, at a mean of 20 per second: about 60 arrivals in the 3 s measured.
    assert abs(len(measured) - 20 * DURATION_S) <= len(TRACE)
    gaps = np.diff(measured)
    # The trace's own gaps, all scaled by one factor: the longest over the shortest is the trace's 0.45/0.05,
    # and the longest comes once per pass through the trace (every len(TRACE) arrivals: it loops).
    trace_gaps = np.diff(TRACE)
    assert gaps.max() / gaps.min() == pytest.approx(trace_gaps.max() / trace_gaps.min(), rel=1e-6)
    longest = np.flatnonzero(np.isclose(gaps, gaps.max(), rtol=1e-6))
    assert len(longest) >= 7 and set(np.diff(longest)) == {len(TRACE)}


def test_embedded_and_external_get_the_same_arrivals(claims):
    external = schedule_set(arrivals(claims, "shared"))
    embedded = set().union(*(schedule_set(arrivals(claims, f"embedded-{t}")) for t in TENANTS))
    assert external == embedded and len(external) > 200
    # And a second trial replays them too: repeated trials differ in measurement, not in load.
    assert schedule_set(arrivals(claims, "shared-t2")) == external


def test_the_execution_providers_each_tenant_ran_on_are_recorded(claims):
    """Served (what the backend model printed in server.log) and embedded (the in-process session) alike."""
    deployments = json.loads((claims / results.MANIFEST).read_text())["deployments"]
    cpu = ["CPUExecutionProvider"]
    assert deployments["shared"]["providers"] == dict.fromkeys(TENANTS, cpu)
    assert all(deployments[f"embedded-{t}"]["providers"] == {t: cpu} for t in TENANTS)
    assert "onnxruntime execution providers: CPUExecutionProvider" in (claims / results.REPORT_MD).read_text()


def test_the_ramp_report_names_the_levels(claims):
    assert "Stress ramps" in (claims / results.REPORT_MD).read_text()
