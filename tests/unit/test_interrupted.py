"""A run cut short: its deployments are never VALID, its target rate is the one asked for, and the verdict
says which deployment stopped and which never started."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from perseus.analysis.render import fmt_pct, render_markdown
from perseus.analysis.summary import Minimums, TenantSpec, summarize, tenant_row
from tests.unit.test_render import COLUMNS, _records, make_ctx

SPEC = TenantSpec(name="a", model="m1", sla_ms=100, sla_percentile=99, open_loop=True, rate=25.0)


def _frame(n: int = 1000, rate: float = 100.0) -> pd.DataFrame:
    frame = pd.DataFrame(_records("a", "m1", "shared", rate, np.full(n, 10.0), warmup=0), columns=COLUMNS)
    return frame.assign(send_lag_ms=0.0)


def test_a_deployment_cut_short_is_never_valid():
    complete = tenant_row("shared", SPEC, _frame(), 10.0, Minimums(1.0, 10))
    assert complete["valid"] and complete["verdict"] == "VALID" and complete["evidence_ok"]
    cut = tenant_row("shared", SPEC, _frame(), 10.0, Minimums(1.0, 10), status="interrupted")
    assert not cut["valid"] and not cut["evidence_ok"]
    assert cut["verdict"] == "INVALID: the deployment was interrupted before its schedule completed"
    failed = tenant_row("shared", SPEC, _frame(), 10.0, Minimums(1.0, 10), status="failed")
    assert failed["verdict"].startswith("INVALID: the deployment failed before")


def test_the_target_of_a_deployment_cut_short_is_the_rate_asked_for():
    # 247 requests in the 10 s it ran: over that window the arrivals equal the throughput by construction.
    cut = tenant_row("shared", SPEC, _frame(247, 24.7), 10.0, Minimums(1.0, 10), status="interrupted")
    assert cut["target_rps"] == 25.0 and abs(cut["throughput_rps"] - 24.7) < 0.1
    complete = tenant_row("shared", SPEC, _frame(247, 24.7), 10.0, Minimums(1.0, 10))
    assert complete["target_rps"] == 24.7  # a completed run: the schedule's measured arrivals


SCENARIO = {
    "name": "t",
    "tenants": [
        {"name": "a", "model": "m1", "sla_ms": 150, "sla_percentile": 99, "load": {"arrival": "poisson", "rate": 10}},
        {"name": "b", "model": "m2", "sla_ms": 50, "sla_percentile": 99, "load": {"arrival": "poisson", "rate": 20}},
    ],
}


def _summary(deployments: dict, not_started=()):
    rows = []
    for name, meta in deployments.items():
        for t in meta["tenants"]:
            rows += _records(t, "m1", name, 10, np.arange(1, 101))
    requests = pd.DataFrame(rows, columns=COLUMNS)
    return summarize(requests, copy.deepcopy(SCENARIO), deployments, 3.6, not_started=not_started)


def test_no_comparison_says_which_deployment_stopped_and_which_never_started():
    summary = _summary(
        {
            "shared": {"tenants": ["a", "b"], "duration_s": 10, "status": "completed", "kind": "shared"},
            "solo-a": {"tenants": ["a"], "duration_s": 4, "status": "interrupted", "kind": "solo"},
        },
        not_started=["solo-b"],
    )
    assert summary.comparison is None
    assert summary.no_comparison == "no shared-vs-dedicated comparison: solo-a was interrupted; solo-b never started"
    off = _summary({"shared": {"tenants": ["a", "b"], "duration_s": 10, "status": "completed", "kind": "shared"}})
    assert off.no_comparison.endswith("baselines are off (no solo-<tenant> deployment for every tenant)")


def test_the_report_of_an_interrupted_run_reads_right():
    summary = _summary(
        {
            "shared": {"tenants": ["a", "b"], "duration_s": 4, "status": "interrupted", "kind": "shared"},
        },
        not_started=["solo-a", "solo-b"],
    )
    ctx = make_ctx(status="interrupted", deployment_status={"shared": "interrupted: stopped by Ctrl-C or SIGTERM"})
    text = render_markdown(summary, ctx)
    header = text.splitlines()[2]
    assert f"measured on {ctx.hardware}, priced as {ctx.instance} ({ctx.region}, {ctx.market})" in header
    assert "**Warning: this run was interrupted;" in text
    assert "interrupted: interrupted" not in text
    assert "solo-a never started" in text and "shared was interrupted" in text


def test_a_negative_saving_at_capacity_reads_as_a_cost():
    from tests.unit.test_honest_cost import CAPACITY

    worse = CAPACITY.assign(scale=[4.0, 2.0, 0.5, 0.5], upper=[5.0, 2.5, 0.6, 0.6])  # shared holds little
    deployments = {
        "shared": {"tenants": ["a", "b"], "duration_s": 10, "status": "completed", "kind": "shared"},
        "solo-a": {"tenants": ["a"], "duration_s": 10, "status": "completed", "kind": "solo"},
        "solo-b": {"tenants": ["b"], "duration_s": 10, "status": "completed", "kind": "solo"},
    }
    rows = [r for name, meta in deployments.items() for t in meta["tenants"]
            for r in _records(t, "m1", name, 10, np.arange(1, 101))]  # fmt: skip
    summary = summarize(pd.DataFrame(rows, columns=COLUMNS), copy.deepcopy(SCENARIO), deployments, 3.6, capacity=worse)
    assert summary.at_capacity.savings < 0
    text = render_markdown(summary, make_ctx())
    assert f"sharing costs **{fmt_pct(-summary.at_capacity.savings)}** more" in text
    assert "saved by sharing" not in text
