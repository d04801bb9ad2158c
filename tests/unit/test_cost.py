"""Cost model on hand-made tables: savings, chargeback, Triton's rates, energy, and their report sections."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import cost, plots
from perseus.analysis.render import render_html, render_markdown
from perseus.analysis.summary import SERVER_COLUMNS, summarize
from tests.unit.test_render import make_ctx

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQ_COLUMNS = ["tenant", "model", "deployment", "scheduled_s", "sent_s", "done_s"]
REQ_COLUMNS += ["latency_ms", "service_ms", "ok", "error", "warmup"]
TEL_COLUMNS = ["t_s", "source", "metric", "labels", "value", "deployment"]


def labels(**kw) -> str:
    return json.dumps(kw, sort_keys=True)


def triton_rows(dep: str, tenant: str, t: float, version: str = "1", **counters) -> list[tuple]:
    """One scrape of a tenant's counters (keyword = cost.COUNTERS column)."""
    return [
        (t, "triton", cost.COUNTERS[k], labels(model=tenant, version=version), float(v), dep)
        for k, v in counters.items()
    ]


def scrape(dep, tenant, t, inferences, executions, requests, queue_us, cin, cinf, cout, version="1"):
    return triton_rows(
        dep,
        tenant,
        t,
        version,
        inferences=inferences,
        executions=executions,
        requests=requests,
        queue_us=queue_us,
        compute_input_us=cin,
        compute_infer_us=cinf,
        compute_output_us=cout,
    )


def shared_telemetry() -> pd.DataFrame:
    """Shared deployment, tenants a and b; scrapes at -2 (warm-up), 0.1 (start) and 10.1 (end).

    Between 0.1 and 10.1 (10 s):
      a: +200 inferences, +100 executions (batch 2), +200 requests, +200 ms queue, +0.6 s compute
      b (two model versions, summed): +100 inferences, +100 executions, +100 requests, +0.2 s compute
    Warm-up traffic (-2 -> 0.1) must not count.
    """
    rows = []
    rows += scrape("shared", "a", -2.0, 0, 0, 0, 0, 0, 0, 0)
    rows += scrape("shared", "a", 0.1, 40, 20, 40, 40_000, 10_000, 100_000, 10_000)
    rows += scrape("shared", "a", 10.1, 240, 120, 240, 240_000, 60_000, 600_000, 60_000)
    for version, share in (("1", 0.6), ("2", 0.4)):
        rows += scrape("shared", "b", -2.0, 0, 0, 0, 0, 0, 0, 0, version=version)
        rows += scrape("shared", "b", 0.1, 50 * share, 50 * share, 50 * share, 0, 0, 100_000 * share, 0, version)
        rows += scrape(
            "shared", "b", 10.1, 150 * share, 150 * share, 150 * share, 50_000 * share, 0, 300_000 * share, 0, version
        )
    rows.append((0.1, "triton", "nv_cpu_utilization", labels(), 0.5, "shared"))  # not a per-model counter
    return pd.DataFrame(rows, columns=TEL_COLUMNS)


def nvml_rows(dep: str, energy: dict[float, float], gpu: str = "0", **extra) -> list[tuple]:
    lab = labels(gpu=gpu, name="NVIDIA H100", **extra)
    rows = [(t, "nvml", "energy_j", lab, e, dep) for t, e in energy.items()]
    for t in energy:
        rows += [
            (t, "nvml", "gpu_util_percent", lab, 40.0 if t >= 0 else 5.0, dep),
            (t, "nvml", "power_w", lab, 100.0, dep),
            (t, "nvml", "memory_used_bytes", lab, 2e9 if t < 5 else 3e9, dep),
        ]
    return rows


def gpu_telemetry() -> pd.DataFrame:
    """Shared telemetry plus NVML: GPU 0 (used by the server: it has a process row) gains 1000 J from t=0 to 10;
    GPU 1 (another process's) and a MIG instance must be ignored."""
    rows = nvml_rows("shared", {-2.0: 0.0, 0.0: 50.0, 5.0: 550.0, 10.0: 1050.0})
    rows += nvml_rows("shared", {-2.0: 0.0, 0.0: 100.0, 10.0: 9000.0}, gpu="1")
    rows += nvml_rows("shared", {-2.0: 0.0, 0.0: 1.0, 10.0: 7777.0}, mig="0")
    rows.append((5.0, "nvml", "process_sm_util_percent", labels(gpu="0", name="NVIDIA H100", pid="42"), 30.0, "shared"))
    return pd.concat([shared_telemetry(), pd.DataFrame(rows, columns=TEL_COLUMNS)], ignore_index=True)


def records(tenant: str, deployment: str, n: int, rate: float, latency_ms: float) -> pd.DataFrame:
    t = np.arange(n) / rate
    return pd.DataFrame(
        {
            "tenant": tenant,
            "model": "m",
            "deployment": deployment,
            "scheduled_s": t,
            "sent_s": t,
            "done_s": t + latency_ms / 1e3,
            "latency_ms": latency_ms,
            "service_ms": latency_ms,
            "ok": True,
            "error": None,
            "warmup": False,
        },
        columns=REQ_COLUMNS,
    )


SCENARIO = {
    "name": "c",
    "tenants": [
        {"name": "a", "model": "m", "sla_ms": 50, "sla_percentile": 99, "load": {"arrival": "poisson", "rate": 20}},
        {"name": "b", "model": "m", "sla_ms": 50, "sla_percentile": 99, "load": {"arrival": "poisson", "rate": 10}},
    ],
}


def run(
    telemetry: pd.DataFrame | None, usd_per_hour: float | None = 3.6, shared_latency: float = 5.0, solo: bool = True
):
    reqs = [records("a", "shared", 200, 20, shared_latency), records("b", "shared", 200, 20, 5.0)]
    deps = {"shared": {"tenants": ["a", "b"], "duration_s": 10.0, "status": "completed", "kind": "shared"}}
    if solo:
        for t in ("a", "b"):
            reqs.append(records(t, f"solo-{t}", 200, 20, 5.0))
            deps[f"solo-{t}"] = {"tenants": [t], "duration_s": 10.0, "status": "completed", "kind": "solo"}
    requests = pd.concat(reqs, ignore_index=True)
    return requests, summarize(requests, SCENARIO, deps, usd_per_hour, telemetry=telemetry)


def at(frame: pd.DataFrame, deployment: str, tenant: str) -> pd.Series:
    return frame[(frame["deployment"] == deployment) & (frame["tenant"] == tenant)].iloc[0]


# -- counters and windows --------------------------------------------------------------------------------------
def test_counter_increase_and_resets():
    assert cost.counter_increase([0, 5, 10]) == 10
    assert cost.counter_increase([3, 5, 2, 4]) == 2 + 2 + 2  # reset to 0 between 5 and 2
    assert math.isnan(cost.counter_increase([7]))
    assert cost.counter_increase([1, np.nan, 4]) == 3


def test_window_starts_at_the_sample_nearest_measurement_start():
    assert cost.window([-3.0, -1.0, 0.2, 5.0, 10.0]) == (0.2, 10.0)
    assert cost.window([-3.0, -0.1, 0.2, 10.0]) == (-0.1, 10.0)
    assert cost.window([4.0]) is None


def test_server_rates_by_hand():
    rates = cost.server_rates(cost.triton_counters(shared_telemetry()))
    a, b = at(rates, "shared", "a"), at(rates, "shared", "b")
    assert a["window_s"] == pytest.approx(10.0)
    assert a["inferences"] == 200  # warm-up (-2 -> 0.1) excluded
    assert a["inferences_per_s"] == pytest.approx(20.0)
    assert a["executions_per_s"] == pytest.approx(10.0)
    assert a["avg_batch"] == pytest.approx(2.0)
    assert a["queue_ms"] == pytest.approx(200_000 / 200 / 1e3)  # 1 ms per request
    assert a["compute_ms"] == pytest.approx((50_000 + 500_000 + 50_000) / 200 / 1e3)  # 3 ms
    assert a["compute_s"] == pytest.approx(0.6)
    # b's two model versions are summed per scrape
    assert b["inferences"] == pytest.approx(100)
    assert b["avg_batch"] == pytest.approx(1.0)
    assert b["queue_ms"] == pytest.approx(50_000 / 100 / 1e3)
    assert b["compute_s"] == pytest.approx(0.2)
    assert set(rates["tenant"]) == {"a", "b"}


def test_chargeback_by_compute_and_by_requests():
    c = cost.chargeback("shared", 1.0, ["a", "b"], [300, 100], [0.6, 0.2])
    a, b = c.iloc[0], c.iloc[1]
    assert a["compute_share"] == pytest.approx(0.75)
    assert a["request_share"] == pytest.approx(0.75)
    assert b["cost_by_compute_usd"] == pytest.approx(0.25)
    assert a["cost_per_million_by_compute_usd"] == pytest.approx(0.75 / 300 * 1e6)
    assert c["cost_by_compute_usd"].sum() == pytest.approx(1.0)
    assert c["cost_by_requests_usd"].sum() == pytest.approx(1.0)
    unknown = cost.chargeback("shared", 1.0, ["a", "b"], [1, 3], [math.nan, math.nan])
    assert unknown["compute_share"].isna().all()
    assert unknown["request_share"].tolist() == pytest.approx([0.25, 0.75])


def test_shares():
    assert cost.shares([1, 3]) == pytest.approx([0.25, 0.75])
    assert all(math.isnan(v) for v in cost.shares([0, 0]))
    assert all(math.isnan(v) for v in cost.shares([1, math.nan]))


# -- energy -------------------------------------------------------------------------------------------------
def test_gpu_energy_only_counts_the_servers_gpus():
    e = cost.gpu_energy(gpu_telemetry()).set_index("deployment").loc["shared"]
    assert e["gpus"] == 1  # GPU 1 had no process of ours; the MIG instance is not a whole GPU
    assert e["energy_j"] == pytest.approx(1000.0)  # 1050 - 50 between t=0 and t=10
    assert e["window_s"] == pytest.approx(10.0)
    assert e["mean_power_w"] == pytest.approx(100.0)
    assert e["gpu_util_percent"] == pytest.approx(40.0)  # measured part only
    assert e["memory_max_gb"] == pytest.approx(3.0)
    assert cost.per_inference(1000.0, 400) == 2.5
    assert math.isnan(cost.per_inference(1000.0, 0))
    assert cost.gpu_energy(shared_telemetry()).empty


# -- through summarize ----------------------------------------------------------------------------------------
def test_summary_server_chargeback_and_energy():
    _, s = run(gpu_telemetry())
    assert s.gpu_note is None
    assert list(s.server.columns) == SERVER_COLUMNS
    assert len(s.server) == 4  # every (deployment, tenant), with or without counters
    a = at(s.server, "shared", "a")
    assert a["avg_batch"] == pytest.approx(2.0)
    assert a["compute_share"] == pytest.approx(0.75)
    assert a["completed"] == 200
    assert a["energy_j"] == pytest.approx(750.0)  # split by compute share
    assert a["j_per_inference"] == pytest.approx(750.0 / 200)
    assert at(s.server, "shared", "b")["j_per_inference"] == pytest.approx(250.0 / 200)
    assert math.isnan(at(s.server, "solo-a", "a")["avg_batch"])  # no counters for the solo deployments here

    shared_cost = float(s.deployments.set_index("deployment").loc["shared", "cost_usd"])
    assert shared_cost == pytest.approx(3.6 * 10 / 3600)
    cb = s.chargeback
    assert set(cb["deployment"]) == {"shared"}  # single-tenant deployments have nothing to split
    assert at(cb, "shared", "a")["cost_by_compute_usd"] == pytest.approx(0.75 * shared_cost)
    assert at(cb, "shared", "a")["cost_by_requests_usd"] == pytest.approx(0.5 * shared_cost)

    e = s.energy.set_index("deployment").loc["shared"]
    assert e["completed"] == 400
    assert e["j_per_inference"] == pytest.approx(2.5)


def test_summary_without_telemetry():
    _, s = run(None)
    assert s.gpu_note == cost.NO_GPU
    assert s.energy.empty
    assert s.server["avg_batch"].isna().all()
    assert s.chargeback["compute_share"].isna().all()
    assert s.chargeback["request_share"].tolist() == pytest.approx([0.5, 0.5])


def test_shared_missing_an_sla_is_never_shown_as_cheaper():
    _, s = run(shared_telemetry(), shared_latency=80.0)  # a's SLA is 50 ms in shared
    c = s.comparison
    assert not c.shared_slas_met and c.solo_slas_met
    assert c.shared_cost_per_million_good_usd > 0  # the measured cost stays in the data ...
    md = render_markdown(s, make_ctx())
    verdict = md[: md.index("## Validity")]
    assert "cheaper" not in verdict and "saved" not in verdict  # ... but no saving is claimed


# -- report sections and plots ---------------------------------------------------------------------------------------
def test_report_sections_with_gpu(tmp_path: Path):
    telemetry = gpu_telemetry()
    requests, s = run(telemetry)
    out = plots.make_plots(requests, s, tmp_path / "plots", telemetry)
    assert set(out) == {"latency_cdf", "throughput_p99", "cost_per_million", "gpu_timeline"}
    for path in out.values():
        assert path.read_bytes().startswith(PNG_MAGIC)
    md = render_markdown(s, make_ctx(), out)
    order = ["## Verdict", "## Validity", "## Tenants", "## Deployments", "## Chargeback"]
    order += ["## Server-side breakdown", "## GPU and energy", "## Plots", "## How this was measured"]
    assert [md.index(h) for h in order] == sorted(md.index(h) for h in order)
    assert "| shared | a | 200 | 75.0% | 50.0% |" in md
    assert "| shared | a | 20.0 | 10.0 | 2.00 | 1.00 | 3.00 |" in md
    assert "| shared | 1 | 10.0 s | 1,000 | 100 | 40.0% | 3.00 | 400 | 2.50 |" in md
    assert "(plots/gpu_timeline.png)" in md
    assert "(plots/cost_per_million.png)" in md
    assert cost.NO_GPU not in md
    html = render_html(s, make_ctx(), out)
    for h in ("Chargeback", "Server-side breakdown", "GPU and energy"):
        assert f"<h2>{h}</h2>" in html
    assert html.count("data:image/png;base64,") == 4


def test_report_sections_without_gpu_or_price(tmp_path: Path):
    requests, s = run(None, usd_per_hour=None, solo=False)
    out = plots.make_plots(requests, s, tmp_path / "plots", None)
    assert set(out) == {"latency_cdf", "throughput_p99"}  # no price: no cost plot; no NVML: no timeline
    md = render_markdown(s, make_ctx(usd_per_hour=None), out)
    assert "## Chargeback" in md
    assert "no NVIDIA GPU: GPU metrics not collected" in md
    assert "gpu_timeline" not in md
    assert "cost_per_million" not in md
    assert render_markdown(s, make_ctx(usd_per_hour=None)) == md  # without plots: links what make_plots would draw
    html = render_html(s, make_ctx(usd_per_hour=None), out)
    assert "no NVIDIA GPU: GPU metrics not collected" in html
