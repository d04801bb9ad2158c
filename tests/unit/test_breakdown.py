"""Latency breakdown at p50/p99, the slowest requests, and shared-vs-solo attribution, on hand-made spans."""

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import breakdown, span_plots
from perseus.analysis.spans import COMPONENT_NAMES
from perseus.capacity.analysis import INTERFERENCE_PARTS_COLUMNS, interference_parts


def make_spans(deployment, tenant, n, *, queue_ms, infer_ms, seed, lag_ms=0.1, net_ms=0.3):
    """Traced requests whose parts are known: queue and infer vary per request, the rest is fixed."""
    rng = np.random.default_rng(seed)
    parts = {
        "net_in_ms": np.full(n, net_ms),
        "handling_ms": np.full(n, 0.05),
        "queue_ms": rng.exponential(queue_ms, n),
        "compute_input_ms": np.full(n, 0.02),
        "compute_infer_ms": rng.uniform(0.8, 1.2, n) * infer_ms,
        "compute_output_ms": np.full(n, 0.02),
        "net_out_ms": np.full(n, net_ms),
    }
    scheduled = np.sort(rng.uniform(0, 10, n))
    sent = scheduled + lag_ms / 1e3
    service = sum(parts.values())
    frame = pd.DataFrame(
        {
            "deployment": deployment,
            "tenant": tenant,
            "scheduled_s": scheduled,
            "sent_s": sent,
            "done_s": sent + service / 1e3,
            "latency_ms": lag_ms + service,
            "service_ms": service,
            "ok": True,
            "warmup": False,
            "request_id": [f"{tenant}@{s!r}" for s in scheduled],
            **parts,
        }
    )
    return frame


def test_parts_at_each_percentile_add_up_to_the_near_requests_latency():
    spans = make_spans("shared", "vision", 2000, queue_ms=2.0, infer_ms=5.0, seed=1)
    table = breakdown.breakdown(spans)
    assert list(table["percentile"]) == [50, 99]
    for r in table.to_dict("records"):
        assert sum(r[p] for p in breakdown.PARTS) == pytest.approx(r["near_latency_ms"])
        assert r["near"] == 2 * 10 + 1  # 0.5% of 2000 on each side, and the percentile's own request
        assert r["traced"] == 2000
    p50, p99 = table.to_dict("records")
    assert p50["latency_ms"] == pytest.approx(np.percentile(spans["latency_ms"], 50))
    # The tail is made of queueing: near p99 the queue is far above its mean, infer barely moves.
    assert p99["queue_ms"] > 3 * p50["queue_ms"]
    assert p99["compute_infer_ms"] < 1.3 * p50["compute_infer_ms"]
    assert p99["near_latency_ms"] == pytest.approx(p99["latency_ms"], rel=0.1)


def test_near_takes_at_least_a_few_requests_and_stays_in_range():
    latency = np.arange(10.0)
    assert sorted(breakdown.near(latency, 99)) == [6, 7, 8, 9]
    assert sorted(breakdown.near(latency, 50)) == [1, 2, 3, 4, 5, 6, 7]


def test_warm_up_and_failed_requests_are_left_out():
    spans = make_spans("shared", "vision", 100, queue_ms=1.0, infer_ms=2.0, seed=2)
    spans.loc[:9, "warmup"] = True
    spans.loc[10:19, "ok"] = False
    assert breakdown.breakdown(spans)["traced"].tolist() == [80, 80]


def test_slowest_are_the_k_largest_latencies_per_tenant():
    spans = pd.concat(
        [
            make_spans("shared", "vision", 300, queue_ms=1.0, infer_ms=2.0, seed=3),
            make_spans("shared", "text", 300, queue_ms=1.0, infer_ms=4.0, seed=4),
        ]
    )
    top = breakdown.slowest(spans)
    assert len(top) == 10
    for tenant, group in top.groupby("tenant"):
        mine = spans[spans["tenant"] == tenant]["latency_ms"]
        assert group["latency_ms"].tolist() == sorted(mine, reverse=True)[:5]


def test_attribution_splits_the_change_into_compute_queue_and_client():
    # Beside a neighbour: infer 5 -> 7 ms (inflation), queue 1 -> 3 ms mean, network 0.3 -> 0.5 ms.
    solo = make_spans("solo-vision", "vision", 3000, queue_ms=1.0, infer_ms=5.0, seed=5)
    shared = make_spans("shared", "vision", 3000, queue_ms=3.0, infer_ms=7.0, seed=6, net_ms=0.5)
    table = breakdown.breakdown(pd.concat([solo, shared]))
    rows = breakdown.attribution(table, {"vision": ("shared", "solo-vision")})
    assert list(rows["percentile"]) == [50, 99]
    for r in rows.to_dict("records"):
        causes = r["compute_ms"] + r["queue_ms"] + r["client_network_ms"]
        assert causes == pytest.approx(r["change_ms"])
        assert r["change_ms"] == pytest.approx(r["shared_ms"] - r["solo_ms"])
        assert r["compute_ms"] == pytest.approx(2.0, abs=0.6)
        assert r["client_network_ms"] == pytest.approx(0.4, abs=1e-9)
    p99 = rows.to_dict("records")[1]
    assert p99["queue_ms"] > p99["compute_ms"]  # the tail moved by queueing most


def test_attribution_needs_both_deployments_and_no_spans_give_empty_tables():
    solo = make_spans("solo-vision", "vision", 100, queue_ms=1.0, infer_ms=5.0, seed=7)
    table = breakdown.breakdown(solo)
    assert breakdown.attribution(table, {"vision": ("shared", "solo-vision")}).empty
    empty = pd.DataFrame(columns=[*solo.columns])
    assert breakdown.breakdown(empty).empty
    assert list(breakdown.attribution(breakdown.breakdown(empty), {}).columns) == list(breakdown.ATTRIBUTION_COLUMNS)
    assert set(COMPONENT_NAMES) < set(breakdown.PARTS)


def test_figures_draw_one_segment_per_part_and_request():
    spans = pd.concat(
        [
            make_spans("shared", "vision", 200, queue_ms=1.0, infer_ms=2.0, seed=8),
            make_spans("solo-vision", "vision", 200, queue_ms=0.5, infer_ms=2.0, seed=9),
        ]
    )
    table = breakdown.breakdown(spans)
    fig = span_plots._breakdown_figure(table)
    ax = fig.axes[0]
    assert len(ax.patches) == len(breakdown.PARTS) * len(table)
    assert "shared / vision p50" in {t.get_text() for t in ax.get_yticklabels()}
    assert len(fig.legends[0].get_texts()) == len(breakdown.PARTS)
    top = breakdown.slowest(spans)
    assert list(top["deployment"]) == ["shared"] * 5 + ["solo-vision"] * 5
    timeline = span_plots._slowest_figure(top).axes[0]
    # Each request's bar ends at its latency: its parts laid end to end from the scheduled time.
    ends = {}
    for patch in timeline.patches:
        ends[patch.get_y()] = max(ends.get(patch.get_y(), 0.0), patch.get_x() + patch.get_width())
    assert sorted(ends.values()) == pytest.approx(sorted(top["latency_ms"]))


def test_capacity_pairs_split_each_tenants_slow_down_by_cause():
    spans = pd.concat(
        [
            make_spans("solo-a-x1.000", "a", 1000, queue_ms=1.0, infer_ms=5.0, seed=10),
            make_spans("solo-b-x1.000", "b", 1000, queue_ms=1.0, infer_ms=3.0, seed=11),
            make_spans("pair-a-b", "a", 1000, queue_ms=2.0, infer_ms=6.0, seed=12),
            make_spans("pair-a-b", "b", 1000, queue_ms=1.0, infer_ms=3.0, seed=13),
        ]
    )
    parts = interference_parts(
        breakdown.breakdown(spans), {"a": "solo-a-x1.000", "b": "solo-b-x1.000"}, {("a", "b"): "pair-a-b"}
    )
    assert list(parts.columns) == list(INTERFERENCE_PARTS_COLUMNS)
    assert [(r["tenant"], r["with"], r["percentile"]) for r in parts.to_dict("records")] == [
        ("a", "b", 50),
        ("a", "b", 99),
        ("b", "a", 50),
        ("b", "a", 99),
    ]
    a50 = parts.iloc[0]
    assert a50["compute_ms"] == pytest.approx(1.0, abs=0.3)  # infer 5 -> 6 ms beside b
    assert a50["compute_ms"] + a50["queue_ms"] + a50["client_network_ms"] == pytest.approx(a50["change_ms"])
    # No solo baseline for a tenant: its rows are left out, not guessed.
    assert set(
        interference_parts(breakdown.breakdown(spans), {"b": "solo-b-x1.000"}, {("a", "b"): "pair-a-b"})["tenant"]
    ) == {"b"}
