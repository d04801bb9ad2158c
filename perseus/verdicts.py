"""The answer in the terminal: the verdict and a compact table, printed at the end of a command.

Every figure here was computed by the analysis (``Summary``, ``Capacities``, ``SweepAnalysis``, the
calibration table) and is only formatted: nothing is recomputed. The tables go to stdout, before the
run folder, which stays the last line (scripts take it with ``tail -1``); the live progress is on stderr.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

console = Console(soft_wrap=False)


def show(view: Group, out: Console | None = None) -> None:
    (out or console).print(view)


def _ms(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "n/a"


def _money(value: float) -> str:
    # Three significant digits, as in the report's plots.
    return f"${value:.3g}" if math.isfinite(value) else "n/a"


def _view(
    headline: str, columns: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str] = (), left: int = 2
) -> Group:
    """The headline, a table whose first ``left`` columns are names (left) and the rest figures (right),
    then one line per note."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    return Group(Text(headline, style="bold"), table, *(Text(n) for n in notes))


def run_view(rows: pd.DataFrame, verdict: str) -> Group:
    """``perseus run``: ``Summary.rows`` (summary.csv) and the verdict: ``Summary.comparison.verdict``, or
    ``Summary.no_comparison`` (why there is none) without a comparison."""
    headline = verdict
    body = [
        [
            str(r.deployment),
            str(r.tenant),
            _ms(r.p50_ms),
            _ms(r.p99_ms),
            f"p{r.sla_percentile:g} ≤ {r.sla_ms:g} ms",
            "met" if r.sla_met else "MISSED",
            "yes" if r.valid else "NO",
            _money(r.cost_per_million_usd),
        ]
        for r in rows.itertuples()
    ]
    # The reasons are long ("INVALID: too short; ..."): under the table, one line per measurement.
    notes = [f"{r.deployment}/{r.tenant}: {r.verdict}" for r in rows.itertuples() if not r.valid]
    columns = ["deployment", "tenant", "p50 ms", "p99 ms", "SLA", "SLA met", "valid", "$/1M req"]
    return _view(headline, columns, body, notes)


def capacity_view(table: pd.DataFrame, verdict: str) -> Group:
    """``perseus capacity``: ``Capacities.table`` (capacity.csv) and ``Capacities.verdict``."""
    body = [
        [
            str(r.deployment),
            str(r.tenant),
            f"{r.rate_rps:.4g}",
            f"{r.scale:.3g}" if math.isfinite(r.scale) else "none",
            f"{r.capacity_rps:.4g}",
            "yes" if r.converged else "no",
            str(r.probes),
        ]
        for r in table.itertuples()
    ]
    columns = ["deployment", "tenant", "scenario req/s", "capacity x", "capacity req/s", "converged", "probes"]
    return _view(verdict, columns, body)


def sweep_view(table: pd.DataFrame, best: pd.Series | None, worst: str, label: str) -> Group:
    """``perseus sweep``: ``SweepAnalysis.table`` (sweep.csv) and its ``best`` point; ``worst``: the column of
    the worst tenant's latency at the objective percentile, ``label`` its name ("p99")."""
    if best is not None:
        headline = (
            f"cheapest point where every tenant is VALID: {best['point']}, {_money(best['cost_per_million_usd'])} "
            f"per 1M requests, worst {label} {_ms(best[worst])} ms"
        )
    else:
        headline = "no point is VALID for every tenant"
    body = [
        [
            str(r["point"]),
            str(r["status"]),
            _ms(float(r[worst])),
            f"{float(r['throughput_rps']):.4g}",
            "met" if r["slas_met"] else "missed",
            "VALID" if r["valid"] else "not valid",
            _money(float(r["cost_per_million_usd"])),
        ]
        for _, r in table.iterrows()
    ]
    columns = ["point", "status", f"worst {label} ms", "req/s", "SLAs", "validity", "$/1M req"]
    return _view(headline, columns, body)


def calibration_view(table: pd.DataFrame) -> Group:
    """``perseus calibrate``: the calibration table (calibration.csv), one row per check."""
    if table.empty:
        return _view("FAIL: no calibration deployment completed", [], [])
    passed = bool(table["passed"].all())
    headline = f"{'PASS' if passed else 'FAIL'}: measured latency vs M/D/1 theory, and the harness's own overhead"
    body = [
        [
            str(r.deployment),
            str(r.check),
            f"{r.measured:.3f}",
            f"{r.expected:.3f}",
            "" if math.isnan(r.error) else f"{r.error:+.1%}",
            "yes" if r.passed else "NO",
        ]
        for r in table.itertuples()
    ]
    return _view(headline, ["deployment", "check", "measured", "expected", "error", "pass"], body)


def plan_view(plan: pd.DataFrame, verdict: str, fleets: Sequence) -> Group:
    """``perseus plan``: ``PlanSummary.plan`` (plan.csv), its verdict, and the fleets it is compared with."""
    body = [
        [
            str(r.group),
            str(r.tenants),
            str(r.models),
            str(r.instance),
            str(r.replicas),
            f"{r.capacity_scale:.3g}",
            _money(r.usd_per_hour),
            f"{r.busy_fraction:.0%}" if math.isfinite(r.busy_fraction) else "n/a",
            "yes" if r.verified else ("no: measured in " + str(r.measured_in) if r.measured_in != "here" else "NO"),
        ]
        for r in plan.itertuples()
    ]
    notes = [
        f"{f.name}: " + (f"{f.servers} servers, {_money(f.usd_per_hour)}/h" if f.servers else (f.note or "n/a"))
        for f in fleets
    ]
    columns = ["group", "tenants", "models", "instance", "servers", "capacity x", "$/h", "busy", "verified"]
    return _view(verdict, columns, body, notes, left=4)
