"""Sweep outputs: sweep.csv, pareto.csv, main_effects.csv, the Pareto and main-effect plots, sweep.md.

Everything here formats what ``sweep.analysis`` computed; nothing is decided in the rendering.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from perseus import results
from perseus.sweep import analysis as an
from perseus.sweep.run import MAIN_EFFECTS_CSV, PARETO_CSV, SWEEP_CSV, SWEEP_MD

PARETO_PNG = "pareto.png"
EFFECTS_PNG = "main_effects.png"
# Frontier points are labelled on the plot only when there are few enough to read.
MAX_LABELS = 15
# A latency axis spanning more than this ratio is drawn on a log scale.
LOG_RATIO = 20.0


def _short(point: str) -> str:
    return point.split("-")[0]


def pareto_plot(result: an.SweepAnalysis, path: Path) -> Path | None:
    """Worst-tenant latency against cost per 1M and against total throughput, each frontier highlighted."""
    table, worst = result.table, an.worst_name(result.percentile)
    done = table[table["status"] == an.COMPLETED]
    if done.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    panels = ((an.COST, an.COST_FRONTIER, "cost per 1M requests (USD), lower is better"),
              (an.THROUGHPUT, an.THROUGHPUT_FRONTIER, "total throughput (req/s), higher is better"))  # fmt: skip
    for ax, (x, frontier, xlabel) in zip(axes, panels, strict=True):
        finite = done[np.isfinite(done[x].astype(float)) & np.isfinite(done[worst].astype(float))]
        met = finite[finite["slas_met"].astype(bool)]
        missed = finite[~finite["slas_met"].astype(bool)]
        ax.scatter(met[x], met[worst], s=22, color="tab:blue", alpha=0.6, label="every SLA met")
        ax.scatter(missed[x], missed[worst], s=22, marker="x", color="0.55", alpha=0.8, label="an SLA missed")
        front = result.pareto[result.pareto["frontier"] == frontier]
        if len(front):
            ax.plot(front[x], front[worst], "-o", color="tab:red", ms=6, lw=1.5, label="Pareto frontier", zorder=3)
            if len(front) <= MAX_LABELS:
                for row in front.itertuples(index=False):
                    ax.annotate(_short(row.point), (getattr(row, x), getattr(row, worst)), fontsize=7,
                                xytext=(4, 4), textcoords="offset points")  # fmt: skip
        values = finite[worst].astype(float)
        if len(values) and values.min() > 0 and values.max() / values.min() > LOG_RATIO:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"worst tenant {an.percentile_label(result.percentile)} latency (ms)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"sweep: {len(done)} points, Pareto-optimal points in red")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


OUTCOME_TITLES = {an.THROUGHPUT: "throughput (req/s)", an.COST: "cost per 1M (USD)"}


def main_effects_plot(result: an.SweepAnalysis, path: Path) -> Path | None:
    """One panel per (outcome, factor): the outcome's mean at each level, against the overall mean."""
    effects = result.effects
    if effects.empty or not (effects["points"] > 0).any():
        return None
    outcomes = list(dict.fromkeys(effects["outcome"]))
    factors = result.factor_keys
    # One y scale per outcome (row), so that the factors' effects are compared at a glance.
    fig, axes = plt.subplots(
        len(outcomes),
        len(factors),
        figsize=(1.0 + 3.0 * len(factors), 0.8 + 2.4 * len(outcomes)),
        squeeze=False,
        sharey="row",
    )
    done = result.table[result.table["status"] == an.COMPLETED]
    for r, outcome in enumerate(outcomes):
        values = done[outcome].astype(float)
        overall = float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else math.nan
        for c, key in enumerate(factors):
            ax = axes[r][c]
            part = effects[(effects["factor"] == key) & (effects["outcome"] == outcome)]
            ax.plot(range(len(part)), part["mean"], "-o", color="tab:blue")
            if not math.isnan(overall):
                ax.axhline(overall, ls="--", color="0.5", lw=1)
            ax.set_xticks(range(len(part)), part["level"])
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title(an.factor_label(key), fontsize=10)
            if c == 0:
                title = OUTCOME_TITLES.get(outcome, f"worst {an.percentile_label(result.percentile)} (ms)")
                ax.set_ylabel(title, fontsize=9)
    fig.suptitle("main effects: mean at each factor level\n(dashed: mean over all points)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(value: float, fmt: str = ".4g") -> str:
    value = float(value)
    if math.isnan(value):
        return "n/a"
    return "inf" if math.isinf(value) else format(value + 0.0, fmt).replace("-0.00", "0.00")


def _strength(rho: float) -> str:
    if math.isnan(rho):
        return "not enough points"
    if rho >= 0.7:
        return "strong agreement"
    if rho >= 0.4:
        return "moderate agreement"
    if rho > -0.4:
        return "little relation"
    return "opposite rankings"


def agreement_text(agreement: an.Agreement, tenants: list[str], percentile: float) -> list[str]:
    """The answer to "is the best configuration for model A also best for B?", in words, then the matrix."""
    if len(tenants) < 2:
        return ["Only one tenant: there is no other tenant to compare its ranking with."]
    within = " within each load level" if agreement.stratified else ""
    lines = []
    if agreement.same_best is None:
        lines.append(
            "No server setting varies in this design, so there is no configuration to rank."
            if not agreement.best
            else "Not every tenant has a measured point yet: nothing to compare."
        )
    else:
        best = "; ".join(f"{t}: {agreement.best[t]}" for t in tenants)
        answer = (
            f"**Yes**: the best configuration is the same for every tenant ({agreement.best[tenants[0]]})."
            if agreement.same_best
            else "**No**: the tenants' best configurations differ."
        )
        lines += [
            f"{answer} Best configuration per tenant (lowest mean rank of its "
            f"{an.percentile_label(percentile)} latency{within}): {best}.",
            "",
        ]
    pairs = [(a, b, float(agreement.matrix.loc[a, b])) for i, a in enumerate(tenants) for b in tenants[i + 1 :]]
    lines.append(
        f"Spearman rank correlation of the tenants' rankings of the {agreement.points} measured points{within}: "
        + "; ".join(f"{a}–{b} ρ = {_num(rho, '.2f')} ({_strength(rho)})" for a, b, rho in pairs)
        + "."
    )
    lines += ["", "| ρ | " + " | ".join(tenants) + " |", "|---|" + "---:|" * len(tenants)]
    for a in tenants:
        lines.append(f"| {a} | " + " | ".join(_num(agreement.matrix.loc[a, b], ".2f") for b in tenants) + " |")
    return lines


def _frontier_table(front: pd.DataFrame, result: an.SweepAnalysis) -> list[str]:
    worst = an.worst_name(result.percentile)
    labels = [an.factor_label(k) for k in result.factor_keys]
    head = [
        "point",
        *labels,
        "cost per 1M (USD)",
        f"worst {an.percentile_label(result.percentile)} (ms)",
        "throughput (req/s)",
        "every SLA",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in front.iterrows():
        cells = [row["point"], *(an.level_label(row[k]) for k in result.factor_keys)]
        cells += [
            _num(row[an.COST]),
            _num(row[worst]),
            _num(row[an.THROUGHPUT]),
            "met" if row["slas_met"] else "missed",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(result: an.SweepAnalysis, *, scenario: str, sampling: str, total: int, price, plots: dict) -> str:
    table, worst, label = result.table, an.worst_name(result.percentile), an.percentile_label(result.percentile)
    done = table[table["status"] == an.COMPLETED]
    failed = int((table["status"] != an.COMPLETED).sum())
    lines = [f"# perseus sweep: {scenario}", ""]
    lines.append(
        f"{len(table)} of {total} points committed ({sampling} design), {len(done)} measured"
        + (f", {failed} failed" if failed else "")
        + (f"; {total - len(table)} not yet run: rerun with the same `--out` to resume." if len(table) < total else ".")
    )
    lines += [
        "",
        f"- Latency objective: each tenant's {label} of user-perceived latency (from the scheduled time), "
        "failed requests counted as infinitely late; *worst* is the worst tenant's.",
        f"- Cost per million requests: {price.name} at ${price.usd_per_hour:.4g}/h over the point's measured time, "
        "divided by its completed requests.",
        "",
    ]
    best = result.best
    if best is not None:
        settings = ", ".join(f"{an.factor_label(k)}={an.level_label(best[k])}" for k in result.factor_keys)
        lines.append(
            f"**Cheapest point where every tenant is VALID (SLA met, enough evidence): {best['point']} ({settings}), "
            f"${_num(best[an.COST])} per 1M, worst {label} {_num(best[worst])} ms.**"
        )
    else:
        met = int(done["slas_met"].sum()) if len(done) else 0
        lines.append(
            "**No point is VALID for every tenant**"
            + (f" ({met} meet every SLA, with too little evidence to be VALID)." if met else ".")
        )
    for frontier, title in ((an.COST_FRONTIER, "cost per 1M ↓ vs worst latency ↓"),
                            (an.THROUGHPUT_FRONTIER, "throughput ↑ vs worst latency ↓")):  # fmt: skip
        front = result.pareto[result.pareto["frontier"] == frontier]
        lines += ["", f"## Pareto frontier: {title}", ""]
        lines += _frontier_table(front, result) if len(front) else ["No measured point with finite outcomes."]
    lines += ["", "## Is the best configuration for one tenant also the best for another?", ""]
    lines += agreement_text(result.agreement, result.tenants, result.percentile)
    lines += ["", "## Main effects (mean over measured points at each level)", ""]
    outcomes = list(dict.fromkeys(result.effects["outcome"]))
    lines += ["| factor | level | " + " | ".join(outcomes) + " | points |", "|---|---|" + "---:|" * (len(outcomes) + 1)]
    for (key, level), group in result.effects.groupby(["factor", "level"], sort=False):
        means = dict(zip(group["outcome"], group["mean"], strict=True))
        cells = [an.factor_label(key), level, *(_num(means[o]) for o in outcomes), str(int(group["points"].iloc[0]))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Every point: `{SWEEP_CSV}`; frontiers: `{PARETO_CSV}`; main effects: `{MAIN_EFFECTS_CSV}`."]
    for title, p in plots.items():
        lines += ["", f"![{title}]({results.PLOTS}/{p.name})"]
    return "\n".join(lines) + "\n"


def write(run_dir: Path, result: an.SweepAnalysis, *, scenario: str, sampling: str, total: int, price) -> str:
    """Write the CSVs, plots and sweep.md into the sweep folder; returns the markdown."""
    result.table.to_csv(run_dir / SWEEP_CSV, index=False, float_format="%.6g")
    result.pareto.to_csv(run_dir / PARETO_CSV, index=False, float_format="%.6g")
    result.effects.to_csv(run_dir / MAIN_EFFECTS_CSV, index=False, float_format="%.6g")
    plots_dir = run_dir / results.PLOTS
    plots_dir.mkdir(exist_ok=True)
    plots = {}
    for title, draw, name in (
        ("Pareto frontiers", pareto_plot, PARETO_PNG),
        ("main effects", main_effects_plot, EFFECTS_PNG),
    ):
        path = draw(result, plots_dir / name)
        if path is None:
            (plots_dir / name).unlink(missing_ok=True)  # no stale figure from an earlier, larger analysis
        else:
            plots[title] = path
    text = markdown(result, scenario=scenario, sampling=sampling, total=total, price=price, plots=plots)
    (run_dir / SWEEP_MD).write_text(text, encoding="utf-8")
    return text
