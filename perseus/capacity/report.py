"""Capacity report: capacity.md, CSVs, the co-location figure per tenant pair, the interference heatmap."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from perseus import results
from perseus.analysis import breakdown
from perseus.capacity import analysis
from perseus.capacity.analysis import SOLO_KIND, Capacities
from perseus.capacity.run import (
    CAPACITY_CSV,
    CAPACITY_MD,
    INTERFERENCE_CSV,
    INTERFERENCE_PARTS_CSV,
    PROBES_CSV,
    Outcome,
    probes_table,
)
from perseus.pricing.catalog import Price
from perseus.scenario import Scenario


def colocation_figure(caps: Capacities, rates: dict[str, float], path: Path) -> Path | None:
    """Perseus-style figure: for each tenant pair, the shared capacity point against the straight line
    between the two solo capacities (what dedicated servers would give in the same proportions)."""
    table = caps.table
    solo = {r.tenant: r.capacity_rps for r in table.itertuples() if r.kind == SOLO_KIND}
    pairs = list(itertools.combinations(rates, 2))
    if not pairs or not solo:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.2), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs, strict=True):
        ca, cb = solo.get(a, 0.0), solo.get(b, 0.0)
        ax.plot([ca, 0], [0, cb], "--", color="0.4", label="linear baseline (solo peaks)")
        ax.plot([ca], [0], "o", color="tab:orange")
        ax.plot([0], [cb], "o", color="tab:orange", label="solo capacity")
        if caps.shared_scale:
            k = caps.shared_scale
            ax.plot([k * rates[a]], [k * rates[b]], "*", ms=14, color="tab:blue", label="shared capacity")
            ax.plot([0, k * rates[a]], [0, k * rates[b]], ":", color="tab:blue", lw=1)
        top = max(ca, cb, *(caps.shared_scale * rates[t] for t in (a, b))) if caps.shared_scale else max(ca, cb)
        ax.set_xlim(0, max(ca, 1e-9) * 1.15 if top == 0 else top * 1.15)
        ax.set_ylim(0, max(cb, 1e-9) * 1.15 if top == 0 else top * 1.15)
        ax.set_xlabel(f"{a} throughput (req/s)")
        ax.set_ylabel(f"{b} throughput (req/s)")
        ax.set_title(f"{a} + {b}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="upper right", fontsize=8)
    fig.suptitle("co-location vs dedicated servers, at every SLA")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def interference_heatmap(matrix, path: Path) -> Path | None:
    if matrix.shape[0] < 2:
        return None
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * matrix.shape[1], 1.2 + 1.1 * matrix.shape[0]))
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="Reds", vmin=1.0, vmax=max(2.0, float(matrix.max().max())))
    ax.set_xticks(range(matrix.shape[1]), matrix.columns)
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    ax.set_xlabel("co-located with")
    ax.set_ylabel("tenant (p99 slowdown)")
    for i, j in itertools.product(range(values.shape[0]), range(values.shape[1])):
        v = values[i, j]
        ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.2f}x", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("interference: p99 with the other / p99 alone")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def interference_parts(run_dir: Path, outcome: Outcome):
    """The pairs' slow-downs split by cause, from the traced solo and pair deployments (empty untraced)."""
    names = [*outcome.solo_deployments.values(), *outcome.pair_deployments.values()]
    spans = results.read_spans(run_dir, names) if names else None
    table = breakdown.breakdown(spans.to_pandas()) if spans is not None else breakdown.breakdown(None)
    return analysis.interference_parts(table, outcome.solo_deployments, outcome.pair_deployments)


def markdown(
    caps: Capacities, matrix, usd_per_hour: float | None, instance: str, plots: dict[str, Path], parts=None
) -> str:
    lines = ["# perseus capacity", "", f"**{caps.verdict}**", ""]
    if not math.isnan(caps.shared_cost_per_million_usd):
        lines += [
            f"- Cost per million requests at capacity ({instance}, ${usd_per_hour:.4g}/h): shared "
            f"${caps.shared_cost_per_million_usd:.4g}"
            + (f" vs dedicated ${caps.solo_cost_per_million_usd:.4g}" if not math.isnan(caps.savings) else ""),
            "",
        ]
    lines += [
        "Capacity = the largest scale on the scenario's rates at which every tenant of the deployment is VALID "
        "(SLA met, enough requests and time, early stopping passed), by bracketing then bisection.",
        "",
        "| deployment | tenant | scale | first failing scale | scenario rate (req/s) | capacity (req/s) | probes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in caps.table.itertuples():
        lines.append(
            f"| {r.deployment} | {r.tenant} | {r.scale:.3g} | {r.upper:.3g} | {r.rate_rps:.4g} | "
            f"{r.capacity_rps:.4g} | {r.probes} |"
        )
    if matrix is not None and matrix.shape[0] > 1:
        lines += ["", "## Interference (p99 with the other tenant / p99 alone, at the scenario's rates)", ""]
        lines.append("| tenant | " + " | ".join(matrix.columns) + " |")
        lines.append("|---|" + "---:|" * len(matrix.columns))
        for tenant, row in matrix.iterrows():
            cells = ["n/a" if math.isnan(v) else f"{v:.2f}x" for v in row]
            lines.append(f"| {tenant} | " + " | ".join(cells) + " |")
    if parts is not None and len(parts):
        lines += [
            "",
            "## Interference by cause (traced runs)",
            "",
            "Each tenant's change beside the other against alone, at the scenario's rates: means over the "
            "traced requests near p50 and p99 (ms), split into compute inflation, queueing, and the client and "
            f"network, which add up to the change. Table: `{INTERFERENCE_PARTS_CSV}`.",
            "",
            "| tenant | with | pctl | alone | beside | change | compute | queueing | client and network |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in parts.to_dict("records"):
            lines.append(
                f"| {r['tenant']} | {r['with']} | p{r['percentile']} | {r['solo_ms']:.2f} | {r['shared_ms']:.2f} | "
                f"{r['change_ms']:+.2f} | {r['compute_ms']:+.2f} | {r['queue_ms']:+.2f} | "
                f"{r['client_network_ms']:+.2f} |"
            )
    for title, p in plots.items():
        lines += ["", f"![{title}](plots/{p.name})"]
    return "\n".join(lines) + "\n"


def write(run_dir: Path, outcome: Outcome, scenario: Scenario, price: Price) -> analysis.Capacities:
    """capacity.csv, probes.csv, interference.csv, the plots and capacity.md; returns the capacities."""
    rates = {t.name: t.load.mean_rate() for t in scenario.tenants}
    caps = analysis.capacities(outcome.searches, rates, price.usd_per_hour)
    matrix = analysis.interference(outcome.pair_p99, outcome.solo_p99, list(rates))
    caps.table.to_csv(run_dir / CAPACITY_CSV, index=False, float_format="%.6g")
    probes_table(outcome).to_csv(run_dir / PROBES_CSV, index=False, float_format="%.6g")
    matrix.to_csv(run_dir / INTERFERENCE_CSV, float_format="%.4g")
    parts = interference_parts(run_dir, outcome)
    if len(parts):
        parts.to_csv(run_dir / INTERFERENCE_PARTS_CSV, index=False, float_format="%.6g")
    plots_dir = run_dir / results.PLOTS
    plots_dir.mkdir(exist_ok=True)
    plots = {
        "co-location vs linear baseline": colocation_figure(caps, rates, plots_dir / "colocation.png"),
        "interference": interference_heatmap(matrix, plots_dir / "interference.png"),
    }
    plots = {k: v for k, v in plots.items() if v is not None}
    text = markdown(caps, matrix, price.usd_per_hour, price.name, plots, parts)
    (run_dir / CAPACITY_MD).write_text(text, encoding="utf-8")
    return caps
