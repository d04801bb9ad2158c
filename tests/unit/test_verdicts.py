"""The verdict printed in the terminal: every figure comes from the analysis, formatted, nothing recomputed."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from perseus import verdicts
from tests.unit.test_render import make_run


def _text(view) -> str:
    out = Console(record=True, width=140, color_system=None)
    out.print(view)
    return out.export_text()


def test_run_view_shows_the_verdict_and_each_tenant():
    _, summary = make_run()
    text = _text(verdicts.run_view(summary.rows, summary.comparison.verdict))
    assert " ".join(text.split()).startswith(summary.comparison.verdict)  # the headline (wrapped) comes first
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("deployment")).split()
    assert header == ["deployment", "tenant", "p50", "ms", "p99", "ms", "SLA", "SLA", "met", "valid", "$/1M", "req"]
    shared_a = next(line for line in lines if line.split()[:2] == ["shared", "a"])
    row = summary.rows.set_index(["deployment", "tenant"]).loc[("shared", "a")]
    assert f"{row.p50_ms:.1f}" in shared_a and f"{row.p99_ms:.1f}" in shared_a
    assert "p99 ≤ 150 ms" in shared_a and "MISSED" in shared_a  # tenant a misses its SLA when shared
    assert f"${row.cost_per_million_usd:.3g}" in shared_a
    # The long reason of each invalid measurement is under the table, not in it.
    assert f"shared/a: {row.verdict}" in text and row.verdict.startswith("INVALID")


def test_calibration_view_fails_when_one_check_fails():
    table = pd.DataFrame(
        {
            "deployment": ["rho-050", "rho-050"],
            "check": ["p50 latency", "p99 latency"],
            "measured": [10.0, 30.0],
            "expected": [10.0, 20.0],
            "error": [0.0, 0.5],
            "passed": [True, False],
        }
    )
    assert _text(verdicts.calibration_view(table)).startswith("FAIL")
    assert _text(verdicts.calibration_view(table.assign(passed=True))).startswith("PASS")
    assert "+50.0%" in _text(verdicts.calibration_view(table))


def test_sweep_view_names_the_best_point():
    table = pd.DataFrame(
        {
            "point": ["p001", "p002"],
            "status": ["completed", "completed"],
            "worst_p99_ms": [12.5, 80.0],
            "throughput_rps": [40.0, 40.0],
            "slas_met": [True, False],
            "valid": [True, False],
            "cost_per_million_usd": [1.234, 0.9],
        }
    )
    text = _text(verdicts.sweep_view(table, table.iloc[0], "worst_p99_ms", "p99"))
    best = "cheapest point where every tenant is VALID: p001, $1.23 per 1M requests, worst p99 12.5 ms"
    assert text.splitlines()[0] == best
    assert "missed" in text
    assert _text(verdicts.sweep_view(table, None, "worst_p99_ms", "p99")).startswith("no point is VALID")
