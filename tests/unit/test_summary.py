"""Statistics and verdicts on hand-made tables (test_render.py covers the rendered report)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import stats
from perseus.analysis.summary import ROW_COLUMNS, summarize
from perseus.telemetry import triton

# numpy warns when it interpolates towards a failure (inf - inf); the result is handled (-> inf).
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")

COLUMNS = ["tenant", "model", "deployment", "scheduled_s", "sent_s", "done_s"]
COLUMNS += ["latency_ms", "service_ms", "ok", "error", "warmup"]
DESIGN_COLUMNS = [
    "deployment",
    "tenant",
    "model",
    "requests",
    "errors",
    "duration_s",
    "throughput_rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "sla_ms",
    "sla_percentile",
    "sla_attainment",
    "sla_met",
    "cost_per_million_usd",
]


def records(tenant, deployment, scheduled, latency_ms, ok=None, warmup=None, model="m"):
    scheduled = np.asarray(scheduled, dtype=float)
    latency_ms = np.asarray(latency_ms, dtype=float)
    ok = np.ones(len(scheduled), bool) if ok is None else np.asarray(ok, bool)
    warmup = scheduled < 0 if warmup is None else np.asarray(warmup, bool)
    done = scheduled + latency_ms / 1e3
    lat = np.where(ok, latency_ms, np.nan)
    return pd.DataFrame(
        {
            "tenant": tenant,
            "model": model,
            "deployment": deployment,
            "scheduled_s": scheduled,
            "sent_s": scheduled,
            "done_s": done,
            "latency_ms": lat,
            "service_ms": lat,
            "ok": ok,
            "error": np.where(ok, None, "HTTP 500"),
            "warmup": warmup,
        },
        columns=COLUMNS,
    )


def scenario(*tenants):
    return {
        "name": "s",
        "tenants": [
            {
                "name": n,
                "model": "m",
                "sla_ms": sla,
                "sla_percentile": pct,
                "load": {"arrival": "poisson", "rate": rate},
            }
            for n, sla, pct, rate in tenants
        ],
    }


# -- stats ---------------------------------------------------------------------------------------
def test_percentiles_equal_numpy():
    values = np.random.default_rng(0).lognormal(2, 1, 1001)
    got = stats.percentiles(values)
    assert list(got) == [50, 90, 95, 99]
    for q, v in got.items():
        assert v == np.percentile(values, q)
    assert stats.percentiles(np.array([1.0, 2.0, 3.0, 4.0]), qs=(50,)) == {50: 2.5}
    assert all(math.isnan(v) for v in stats.percentiles(np.array([])).values())


def test_sla_latency_without_failures_is_the_percentile():
    lat = np.arange(1.0, 101.0)
    assert stats.sla_latency(lat, np.ones(100, bool), 95) == np.percentile(lat, 95)


def test_failures_count_as_infinitely_late():
    lat = np.full(100, 5.0)
    ok = np.ones(100, bool)
    ok[[10, 60]] = False  # 2% failed, fast: dropping them would make p99 = 5 ms
    assert stats.sla_latency(lat, ok, 99) == math.inf
    assert stats.sla_latency(lat, ok, 50) == 5.0  # the median is still a real latency
    assert math.isnan(stats.sla_latency(np.array([]), np.array([], bool), 99))


def test_sla_attainment():
    lat = np.array([10.0, 20.0, 30.0, 40.0, 5.0])
    ok = np.array([True, True, True, True, False])
    assert stats.sla_attainment(lat, ok, 20.0) == pytest.approx(2 / 5)  # failure never attains, <= is inclusive
    assert stats.sla_attainment(lat, np.ones(5, bool), 100) == 1.0
    assert math.isnan(stats.sla_attainment(np.array([]), np.array([], bool), 10))


# -- summarize -----------------------------------------------------------------------------------------
def test_failures_break_the_sla_in_summary():
    t = np.arange(100) / 10
    ok = np.ones(100, bool)
    ok[-2:] = False
    s = summarize(records("a", "shared", t, np.full(100, 5.0), ok), scenario(("a", 50, 99, 10)), _deps("a"), 1.0)
    row = s.rows.iloc[0]
    assert row["errors"] == 2
    assert row["sla_latency_ms"] == math.inf
    assert not row["sla_met"]
    assert row["sla_attainment"] == pytest.approx(0.98)
    assert row["p99_ms"] == 5.0  # latency percentiles are of the successful requests


def _deps(*tenants, duration=10.0, name="shared"):
    return {name: {"tenants": list(tenants), "duration_s": duration, "status": "completed", "kind": "shared"}}


def test_rows_and_columns_by_hand():
    rng = np.random.default_rng(1)
    lat = rng.uniform(1, 50, 200)
    warm = records("a", "shared", -np.linspace(1, 0.01, 20), np.full(20, 5000.0))  # absurd, must not count
    req = pd.concat([warm, records("a", "shared", np.arange(200) / 20, lat)], ignore_index=True)
    s = summarize(req, scenario(("a", 45, 90, 20)), _deps("a"), 0.5)
    assert list(s.rows.columns) == ROW_COLUMNS
    assert set(DESIGN_COLUMNS) <= set(s.rows.columns)
    row = s.rows.iloc[0]
    assert row["requests"] == 200
    assert row["errors"] == 0
    for q in (50, 90, 95, 99):
        assert row[f"p{q}_ms"] == np.percentile(lat, q)
    assert row["sla_latency_ms"] == np.percentile(lat, 90)
    assert row["sla_met"] == (np.percentile(lat, 90) <= 45)
    assert row["sla_attainment"] == pytest.approx(np.mean(lat <= 45))
    assert row["throughput_rps"] == pytest.approx(20.0)
    assert row["target_rps"] == 20.0
    assert row["duration_s"] == 10.0


def test_throughput_window_stretched_to_last_completion():
    # 100 requests offered over 10 s, but the server is overloaded: the last one completes at 25 s.
    t = np.arange(100) / 10
    lat = (t / 9.9) * 15_100  # 0 .. 15.1 s late
    s = summarize(records("a", "shared", t, lat), scenario(("a", 100, 99, 10)), _deps("a"), 3.6)
    row = s.rows.iloc[0]
    last_done = 9.9 + 15.1
    assert row["duration_s"] == pytest.approx(last_done)
    assert row["throughput_rps"] == pytest.approx(100 / last_done)
    assert row["throughput_rps"] < row["target_rps"]
    # cost: the server was held for the stretched window
    dep = s.deployments.iloc[0]
    assert dep["duration_s"] == pytest.approx(last_done)
    assert dep["cost_usd"] == pytest.approx(3.6 * last_done / 3600)


def test_cost_per_million_by_hand():
    price = 0.526
    a = records("a", "shared", np.arange(40) / 10, np.full(40, 3.0))
    ok = np.ones(80, bool)
    ok[:5] = False
    b = records("b", "shared", np.arange(80) / 20, np.full(80, 3.0), ok)
    s = summarize(
        pd.concat([a, b], ignore_index=True),
        scenario(("a", 10, 99, 10), ("b", 10, 99, 20)),
        _deps("a", "b", duration=4.0),
        price,
    )
    completed = 40 + 75
    expected = price * 4.0 / 3600 / completed * 1e6
    assert s.rows["cost_per_million_usd"].tolist() == pytest.approx([expected, expected])
    assert s.deployments.iloc[0]["completed"] == completed
    assert s.deployments.iloc[0]["cost_per_million_usd"] == pytest.approx(expected)


def test_no_price_no_cost():
    req = records("a", "shared", np.arange(10) / 10, np.ones(10))
    s = summarize(req, scenario(("a", 10, 99, 10)), _deps("a"), None)
    assert math.isnan(s.rows.iloc[0]["cost_per_million_usd"])
    assert s.comparison is None  # one tenant: nothing to compare


def test_tenant_without_records_still_gets_a_row():
    req = records("a", "shared", np.arange(10) / 10, np.ones(10))
    s = summarize(req, scenario(("a", 10, 99, 10), ("b", 10, 99, 10)), _deps("a", "b", duration=1.0), 1.0)
    b = s.rows[s.rows["tenant"] == "b"].iloc[0]
    assert b["requests"] == 0
    assert not b["sla_met"]
    assert math.isnan(b["p50_ms"])


def _fleet(latency_shared: float = 2.0, solos: tuple[str, ...] = ("a", "b"), n: int = 100):
    """Two tenants (SLA p90 <= 10 ms, enough requests for a verdict) on a shared server and on their own."""
    reqs, deps = [], {}
    for dep, tenants in (("shared", ["a", "b"]), *((f"solo-{t}", [t]) for t in solos)):
        latency = latency_shared if dep == "shared" else 2.0
        for t in tenants:
            reqs.append(records(t, dep, np.arange(n) / (n / 10), np.full(n, latency)))
        kind = "shared" if dep == "shared" else "solo"
        deps[dep] = {"tenants": tenants, "duration_s": 10.0, "status": "completed", "kind": kind}
    frame = pd.concat(reqs, ignore_index=True)
    return summarize(frame, scenario(("a", 10, 90, 10), ("b", 10, 90, 10)), deps, 1.0)


def test_the_verdict_at_the_offered_load_is_not_one_minus_one_over_n():
    c = _fleet().comparison
    shared = 1.0 * 10 / 3600 / 200 * 1e6  # one server, 200 good requests
    solo = 2 * 1.0 * 10 / 3600 / 200 * 1e6  # two servers for the same 200 good requests
    assert c.shared_cost_per_million_good_usd == pytest.approx(shared)
    assert c.solo_cost_per_million_good_usd == pytest.approx(solo)
    assert c.conclusive and c.shared_slas_met and c.solo_slas_met and c.servers_solo == 2
    assert c.verdict.startswith("share: one server carries all 2 tenants within their SLAs")
    # 1 - shared / solo is 50% here by construction: the verdict never states it as a saving.
    assert "50%" not in c.verdict and "saving" in c.verdict and "capacity" in c.verdict


def test_compare_needs_every_solo_baseline():
    assert _fleet(solos=("a",)).comparison is None


def test_compare_shared_misses():
    c = _fleet(latency_shared=50.0).comparison
    assert c.conclusive and not c.shared_slas_met and c.solo_slas_met
    assert c.verdict.startswith("do not share")


def test_too_little_evidence_is_inconclusive_with_the_advice():
    c = _fleet(n=30).comparison  # 30 requests < the minimum of 100
    assert not c.conclusive and c.verdict.startswith("inconclusive")
    assert "run at least 70 more requests" in c.verdict
    assert "share" not in c.verdict.replace("shared/", "")


# -- Triton's Prometheus text -----------------------------------------------------------------------
METRICS = """\
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="a",version="1"} 5
nv_inference_count{model="b",version="1"} 7
# HELP nv_gpu_utilization GPU utilization rate
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-1"} 0.25
# HELP process_cpu_seconds_total not Triton's
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 3
"""


def test_parse_prometheus_text():
    rows = list(triton.parse(METRICS))
    assert rows == [
        ("nv_inference_count", json.dumps({"model": "a", "version": "1"}), 5.0),
        ("nv_inference_count", json.dumps({"model": "b", "version": "1"}), 7.0),
        ("nv_gpu_utilization", json.dumps({"gpu_uuid": "GPU-1"}), 0.25),
    ]
    assert not any(name.endswith("_total") for name, _, _ in rows)
    assert json.loads(rows[0][1]) == {"model": "a", "version": "1"}


def test_a_late_load_generator_is_named_in_the_notes():
    """Latency counts from the schedule, so a generator that sends late makes the server look slow: say so."""
    t = np.arange(200) / 20

    def with_lag(tenant, lag_ms):
        frame = records(tenant, "shared", t, np.full(200, 5.0))
        frame["send_lag_ms"] = np.linspace(0, lag_ms, 200)  # as report.read_analysis_frame derives it
        return frame

    frame = pd.concat([with_lag("calm", 1.0), with_lag("late", 40.0)], ignore_index=True)
    sc = scenario(("calm", 50, 99, 20), ("late", 50, 99, 20))
    s = summarize(frame, sc, {"shared": {"tenants": ["calm", "late"], "duration_s": 10.0}}, 1.0, notes=("given",))
    lags = dict(zip(s.rows["tenant"], s.rows["send_lag_p99_ms"], strict=True))
    assert lags["calm"] == pytest.approx(0.99, abs=0.01) and lags["late"] == pytest.approx(39.6, abs=0.1)
    assert s.notes[0] == "given"
    late_notes = [n for n in s.notes if "sent late" in n]
    assert len(late_notes) == 1 and "tenant late" in late_notes[0] and "--workers" in late_notes[0]


def test_no_lag_column_no_lag_figure():
    s = summarize(
        records("a", "shared", np.arange(10.0), np.full(10, 5.0)), scenario(("a", 50, 99, 1)), _deps("a"), 1.0
    )
    assert math.isnan(s.rows.iloc[0]["send_lag_p99_ms"])
    assert not any("sent late" in n for n in s.notes)
