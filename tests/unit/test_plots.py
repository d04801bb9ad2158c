"""The report's figures, inspected as matplotlib objects (legends, labels, ticks), not as pixels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import plots
from perseus.analysis.summary import summarize

RATE = 20.0  # requests/s per tenant and deployment
N = 200  # measured requests per tenant and deployment: 10 s at RATE
DURATION_S = 10.0
SLA_MS = 50.0
# The price at which one server serving N requests in DURATION_S costs $1.20 per million: a solo server.
# The shared one serves 2 N in the same time, so $0.600 per million.
PRICE_FOR_1_20 = 1.20 * N / 1e6 * 3600 / DURATION_S


def _requests(tenant: str, deployment: str, latency_ms: float) -> pd.DataFrame:
    t = np.arange(N) / RATE
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
        }
    )


def _run(shared_ms: float = 5.0, usd_per_hour: float = 3.6):
    """Tenants a and b on one shared server and each on its own, all at 5 ms but tenant a on the shared server
    (``shared_ms``); every SLA is p99 <= 50 ms."""
    requests = pd.concat(
        [
            _requests("a", "shared", shared_ms),
            _requests("b", "shared", 5.0),
            _requests("a", "solo-a", 5.0),
            _requests("b", "solo-b", 5.0),
        ],
        ignore_index=True,
    )
    load = {"rate": RATE, "arrival": "poisson"}
    tenants = [{"name": t, "model": "m", "sla_ms": SLA_MS, "sla_percentile": 99, "load": load} for t in "ab"]
    deployments = {
        "shared": {"tenants": ["a", "b"], "kind": "shared"},
        "solo-a": {"tenants": ["a"], "kind": "solo"},
        "solo-b": {"tenants": ["b"], "kind": "solo"},
    }
    for meta in deployments.values():
        meta.update(duration_s=DURATION_S, status="completed")
    return requests, summarize(requests, {"name": "p", "tenants": tenants}, deployments, usd_per_hour)


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _money_labels(fig) -> set[str]:
    texts = (t.get_text() for ax in fig.axes for t in ax.texts)
    return {t.replace(r"\$", "$") for t in texts if t.startswith(r"\$")}


def test_cost_legend_has_no_misses_sla_swatch_when_every_sla_is_met():
    _, s = _run()
    assert s.rows["sla_met"].all()
    assert "misses SLA" not in _legend_texts(plots._cost_figure(s))


def test_cost_legend_explains_the_hatching_when_a_bar_misses():
    _, s = _run(shared_ms=500.0)  # tenant a misses its SLA on the shared server
    fig = plots._cost_figure(s)
    assert "misses SLA" in _legend_texts(fig)
    assert any(p.get_hatch() == "///" for ax in fig.axes for p in ax.patches)


@pytest.mark.parametrize(
    ("usd", "label"),
    [
        (1.2, "$1.20"),
        (1.46, "$1.46"),
        (0.6, "$0.600"),
        (0.0123, "$0.0123"),
        (33.8, "$33.8"),
        (50.0, "$50.0"),
        (99.96, "$100"),  # rounded to three digits first
        (1234.5, "$1,234"),
        (0.0, "$0.00"),
        (math.nan, "n/a"),
    ],
)
def test_money_keeps_three_significant_digits(usd: float, label: str):
    assert plots._money(usd) == label


def test_cost_bar_labels_show_the_same_precision():
    _, s = _run(usd_per_hour=PRICE_FOR_1_20)
    assert _money_labels(plots._cost_figure(s)) == {"$0.600", "$1.20"}  # not "$0.6" beside "$1.46"


def test_latency_cdf_labels_the_sla_percentile_line():
    requests, s = _run()
    fig = plots._latency_cdf_figure(requests, s)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2  # tenants a and b
    for ax in panels:
        assert "p99 (SLA percentile)" in [t.get_text() for t in ax.get_legend().get_texts()]
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "p99 (SLA percentile)"]
        assert line.get_linestyle() == ":"
        assert list(line.get_ydata()) == [0.99, 0.99]


def test_throughput_figure_names_each_tenants_sla_and_the_kinds():
    _, s = _run(shared_ms=500.0)
    fig = plots._throughput_figure(s)
    ax_t, ax_l = fig.axes
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax_l.get_xticklabels()] == ["a\np99 ≤ 50 ms", "b\np99 ≤ 50 ms"]
    legend = _legend_texts(fig)
    assert legend[:2] == ["shared (one server)", "solo (own server)"]
    assert "misses SLA" in legend
