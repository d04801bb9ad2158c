"""Rendering of a hand-made run: summary numbers checked by hand, plots, markdown and HTML reports."""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import plots, render
from perseus.analysis.render import ReportContext, render_html, render_markdown
from perseus.analysis.summary import summarize
from tests.unit.test_breakdown import make_spans

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOTE = "priced instance has a GPU, but this machine has no NVIDIA GPU"


def _records(tenant: str, model: str, deployment: str, rate: float, latencies, errors: int = 0, warmup: int = 3):
    """Measured requests at ``rate`` (latencies in ms; the last ``errors`` fail), preceded by warm-up ones."""
    rows = []
    for i in range(warmup):  # absurd latencies: they must not count
        t = -1.0 + i * 0.1
        rows.append((tenant, model, deployment, t, t, t + 9.0, 9000.0, 8000.0, True, "", True))
    n = len(latencies)
    for i, lat in enumerate(latencies):
        t = i / rate
        if i >= n - errors:
            rows.append((tenant, model, deployment, t, t, t + 0.01, math.nan, math.nan, False, "timeout", False))
        else:
            rows.append((tenant, model, deployment, t, t, t + lat / 1000, float(lat), lat * 0.8, True, "", False))
    return rows


COLUMNS = ["tenant", "model", "deployment", "scheduled_s", "sent_s", "done_s"]
COLUMNS += ["latency_ms", "service_ms", "ok", "error", "warmup"]


def make_run(b: str = "b", notes: tuple[str, ...] = (NOTE,), usd_per_hour: float | None = 3.6):
    """Tenant a (100 requests, SLA p99 <= 150 ms) misses its SLA in shared; tenant b (200 requests) meets it."""
    solo_a = np.arange(1, 101)  # p50 = 50.5
    shared_a = np.arange(101, 201)  # p99 > 150: miss
    b_lat = 10 + np.arange(200) % 20  # 10..29 ms, SLA 50 ms
    rows = (
        _records("a", "m1", "shared", 10, shared_a, errors=3)
        + _records(b, "m2", "shared", 20, b_lat, errors=1)
        + _records("a", "m1", "solo-a", 10, solo_a)
        + _records(b, "m2", f"solo-{b}", 20, b_lat)
    )
    requests = pd.DataFrame(rows, columns=COLUMNS)
    scenario = {
        "name": "t",
        "tenants": [
            {
                "name": "a",
                "model": "m1",
                "sla_ms": 150,
                "sla_percentile": 99,
                "load": {"arrival": "poisson", "rate": 10},
            },
            {"name": b, "model": "m2", "sla_ms": 50, "sla_percentile": 99, "load": {"arrival": "poisson", "rate": 20}},
        ],
    }
    deployments = {
        "shared": {"tenants": ["a", b], "duration_s": 10, "status": "completed", "kind": "shared"},
        "solo-a": {"tenants": ["a"], "duration_s": 10, "status": "completed", "kind": "solo"},
        f"solo-{b}": {"tenants": [b], "duration_s": 10, "status": "completed", "kind": "solo"},
    }
    return requests, summarize(requests, scenario, deployments, usd_per_hour, notes=notes)


def make_ctx(**overrides) -> ReportContext:
    fields = {
        "run_dir": "results/t-20250101T000000",
        "status": "completed",
        "started": "2025-01-01T00:00:00Z",
        "ended": "2025-01-01T00:01:00Z",
        "instance": "g5.xlarge",
        "region": "us-east-1",
        "market": "on-demand",
        "usd_per_hour": 3.6,
        "price_source": "catalog.toml",
        "price_date": "2025-01-01",
        "hardware": "CPU: AMD EPYC (2 cores); no NVIDIA GPU",
        "versions": {"perseus": "0.1.0", "tritonserver": "2.50.0"},
        "deployment_status": {"shared": "completed", "solo-a": "completed", "solo-b": "completed"},
        "command": "perseus run scenarios/t.toml",
    }
    return ReportContext(**{**fields, **overrides})


def row(summary, deployment: str, tenant: str) -> pd.Series:
    r = summary.rows
    return r[(r["deployment"] == deployment) & (r["tenant"] == tenant)].iloc[0]


def test_summary_numbers_by_hand():
    _, s = make_run()
    solo_a = row(s, "solo-a", "a")
    assert solo_a["requests"] == 100  # warm-up excluded
    assert solo_a["p50_ms"] == pytest.approx(50.5)  # median of 1..100
    assert solo_a["sla_met"]
    shared_a = row(s, "shared", "a")
    assert shared_a["errors"] == 3
    assert shared_a["requests"] == 100
    assert not shared_a["sla_met"]
    assert row(s, "shared", "b")["errors"] == 1
    assert row(s, "shared", "b")["sla_met"]  # 1 failure in 200 stays out of the p99
    c = s.comparison
    assert c is not None
    assert not c.shared_slas_met
    assert c.solo_slas_met
    # shared: one server; solo: two servers of the same time, so more dollars per good inference at this load.
    assert c.shared_cost_per_million_good_usd < c.solo_cost_per_million_good_usd
    # 100 and 200 requests cannot show a p99 at 99% confidence: no verdict stands on them.
    assert not c.conclusive and c.verdict.startswith("inconclusive")
    assert "would need at least" in c.verdict and len(c.reasons) == 3


def test_plots_are_valid_pngs(tmp_path: Path):
    requests, s = make_run()
    out = plots.make_plots(requests, s, tmp_path / "plots")
    # priced, no NVML telemetry: the cost plot, no GPU timeline
    assert set(out) == {"latency_cdf", "throughput_p99", "cost_per_million"}
    for key, path in out.items():
        assert path.name == Path(render.PLOT_FILES[key]).name
        data = path.read_bytes()
        assert len(data) > 1000
        assert data.startswith(PNG_MAGIC)


def test_cdf_from_quantiles_when_large():
    values = np.random.default_rng(0).exponential(10.0, 25_000)
    x, y = plots._cdf(values, from_quantiles=True)
    assert len(x) == len(y) == plots.CDF_QUANTILES
    assert x[0] == values.min()
    assert x[-1] == values.max()
    x, y = plots._cdf(values[:100], from_quantiles=False)
    assert len(x) == 100
    assert y[-1] == 1.0


def test_markdown_verdict_first_and_tables():
    _, s = make_run()
    md = render_markdown(s, make_ctx())
    assert md.startswith("# perseus report: t (completed)")
    verdict = s.comparison.verdict
    assert verdict in md
    assert md.index(verdict) < md.index("\n|")  # before the first table
    for tenant in ("a", "b", "m1", "m2"):
        assert f"| {tenant} |" in md
    assert "**NO**" in md
    assert "p99 <= 150 ms" in md
    assert "50.5" in md  # p50 of solo-a
    assert "(plots/latency_cdf.png)" in md
    assert "(plots/throughput_p99.png)" in md
    assert NOTE in md
    assert md.index("## Warnings") < md.index("## Plots") < md.index("## How this was measured")
    assert "perseus run scenarios/t.toml" in md


def test_html_self_contained_and_escaped(tmp_path: Path):
    evil = "<script>alert(1)</script>"
    requests, s = make_run(b=evil, notes=(f"note {evil}",))
    out = plots.make_plots(requests, s, tmp_path / "plots")
    html = render_html(s, make_ctx(), out)
    assert html.count("data:image/png;base64,") == len(out) == 3
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html
    assert "https://" not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    verdict = escape(s.comparison.verdict, quote=False)
    assert verdict in html
    assert html.index(verdict) < html.index("<table")
    md = render_markdown(s, make_ctx())
    assert "<script" not in md


def test_single_tenant_all_failed_no_price(tmp_path: Path):
    requests = pd.DataFrame(_records("x", "m", "solo-x", 10, np.full(50, 5.0), errors=50), columns=COLUMNS)
    scenario = {
        "name": "one",
        "tenants": [
            {
                "name": "x",
                "model": "m",
                "sla_ms": 20,
                "sla_percentile": 99.9,
                "load": {"arrival": "closed", "concurrency": 2},
            }
        ],
    }
    deployments = {"solo-x": {"tenants": ["x"], "duration_s": 5, "status": "failed", "kind": "solo"}}
    s = summarize(requests, scenario, deployments, None)
    assert s.comparison is None
    out = plots.make_plots(requests, s, tmp_path / "plots")
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in out.values())
    ctx = make_ctx(status="failed", usd_per_hour=None, deployment_status={"solo-x": "failed: server crashed"})
    md = render_markdown(s, ctx)
    no_comparison = "no shared-vs-dedicated comparison: a single tenant has nothing to share"
    assert s.no_comparison == no_comparison and no_comparison in md
    assert md.index(no_comparison) < md.index("\n|")
    assert "**Warning: this run failed;" in md
    assert "| failed |" in md  # SLA latency of an all-failed tenant
    assert "p99.9 <= 20 ms" in md
    assert "closed loop" in md
    assert "failed: server crashed" in md
    assert "no price" in md
    assert "n/a" in md
    html = render_html(s, ctx, out)
    assert no_comparison in html
    assert "failed: server crashed" in html


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (render.fmt_ms, 12.345, "12.3"),
        (render.fmt_ms, 5.04, "5.04"),
        (render.fmt_ms, 1234.56, "1,234.6"),
        (render.fmt_ms, math.nan, "n/a"),
        (render.fmt_ms, math.inf, "failed"),
        (render.fmt_usd, 1234.5678, "$1,235"),
        (render.fmt_usd, 12.3456, "$12.35"),
        (render.fmt_usd, 0.00012344, "$0.0001234"),
        (render.fmt_usd, None, "n/a"),
        (render.fmt_pct, 0.4213, "42.1%"),
        (render.fmt_pct, -0.05, "-5.0%"),
        (render.fmt_num, 150.0, "150"),
        (render.fmt_pctl, 99.9, "p99.9"),
        (render.fmt_yesno, False, "NO"),
        (render.md_escape, "a|b<c>", "a\\|b&lt;c&gt;"),
    ],
)
def test_formatting(fn, value, text):
    assert fn(value) == text


def test_traced_runs_get_the_breakdown_and_interference_sections_and_plots(tmp_path: Path):
    requests, plain = make_run()
    spans = pd.concat(
        [
            make_spans("shared", "a", 300, queue_ms=4.0, infer_ms=6.0, seed=1),
            make_spans("solo-a", "a", 300, queue_ms=1.0, infer_ms=5.0, seed=2),
        ]
    )
    scenario = {
        "name": "t",
        "tenants": [
            {
                "name": "a",
                "model": "m1",
                "sla_ms": 150,
                "sla_percentile": 99,
                "load": {"arrival": "poisson", "rate": 10},
            },
            {
                "name": "b",
                "model": "m2",
                "sla_ms": 50,
                "sla_percentile": 99,
                "load": {"arrival": "poisson", "rate": 20},
            },
        ],
    }
    deployments = {
        "shared": {"tenants": ["a", "b"], "duration_s": 10, "status": "completed", "kind": "shared"},
        "solo-a": {"tenants": ["a"], "duration_s": 10, "status": "completed", "kind": "solo"},
        "solo-b": {"tenants": ["b"], "duration_s": 10, "status": "completed", "kind": "solo"},
    }
    traced = summarize(requests, scenario, deployments, 3.6, spans=spans)
    assert plain.breakdown.empty and plain.attribution.empty
    assert set(traced.breakdown["deployment"]) == {"shared", "solo-a"}
    assert traced.attribution["tenant"].tolist() == ["a", "a"]  # b was not traced: no row
    md = render_markdown(traced, make_ctx())
    assert "## Where the time went (traced requests)" in md
    assert "## Interference: shared vs solo, by cause" in md
    assert "## Where the time went" not in render_markdown(plain, make_ctx())
    out = plots.make_plots(requests, traced, tmp_path / "plots", spans=spans)
    assert {"latency_breakdown", "slowest_requests"} <= set(out)
    assert all(out[k].read_bytes().startswith(PNG_MAGIC) for k in ("latency_breakdown", "slowest_requests"))
    assert "plots/latency_breakdown.png" in md
