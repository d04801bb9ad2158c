"""Plots of a run, drawn from the Summary and the raw request records. Nothing is decided here.

Every statistic (throughput, SLA latency, whether an SLA was met) is read from ``Summary.rows``;
only the latency CDF needs the raw records, as it shows every measured request.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from perseus.analysis.summary import SHARED, SOLO_PREFIX, Summary

DPI = 110
LATENCY_CDF_PNG = "latency_cdf.png"
THROUGHPUT_P99_PNG = "throughput_p99.png"

CDF_MAX_POINTS = 20_000  # above this many points per tenant, draw the CDF from quantiles
CDF_QUANTILES = 1_000

SLA_COLOR = "#c0392b"
KIND_COLORS = {"shared": "#2e86c1", "solo": "#f39c12"}
OTHER_COLORS = ["#27ae60", "#8e44ad", "#7f8c8d", "#16a085", "#d35400"]
LOG_SPREAD = 30.0  # switch the latency panel to a log axis when values span more than this factor


def _text(s: object) -> str:
    """Plain text for matplotlib: a ``$`` would otherwise start mathtext."""
    return str(s).replace("$", r"\$")


def _kind(deployment: str) -> str:
    if deployment == SHARED:
        return "shared"
    if deployment.startswith(SOLO_PREFIX):
        return "solo"
    return deployment


def _kind_label(kind: str) -> str:
    return {"shared": "shared (one server)", "solo": "solo (own server)"}.get(kind, kind)


def _colors(deployments: list[str]) -> dict[str, str]:
    colors, others = dict(KIND_COLORS), iter(OTHER_COLORS * (1 + len(deployments)))
    for d in deployments:
        if _kind(d) not in colors:
            colors[_kind(d)] = next(others)
    return colors


def _tenants(summary: Summary) -> list[str]:
    return list(dict.fromkeys(summary.rows["tenant"]))


def _cdf(values: np.ndarray, from_quantiles: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the empirical CDF; from ``CDF_QUANTILES`` evenly spaced quantiles when asked."""
    if from_quantiles:
        y = np.linspace(0.0, 1.0, CDF_QUANTILES)
        return np.quantile(values, y), y
    x = np.sort(values)
    return x, np.arange(1, len(x) + 1) / len(x)


def _pctl(p: float) -> str:
    return f"p{p:g}"


_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def _plain_log_ticks(ax, axis: str) -> None:
    """Log-axis ticks as plain numbers (2, 5, 10, 20 ms), minor ones labelled only on a narrow range."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    a.set_major_formatter(_PLAIN)
    narrow = lo > 0 and hi / lo < 12
    a.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "") if narrow else NullFormatter()
    )


def latency_cdf(requests: pd.DataFrame, summary: Summary, path: Path) -> Path:
    """One panel per tenant: CDF of successful measured latencies per deployment, SLA as a dashed line."""
    path = Path(path)
    tenants = _tenants(summary)
    if len(requests):
        measured = requests[~requests["warmup"].astype(bool) & requests["ok"].astype(bool)]
        latencies = {
            key: g["latency_ms"].to_numpy(dtype=float)
            for key, g in measured.groupby(["tenant", "deployment"], sort=False)
        }
    else:
        latencies = {}

    n = max(len(tenants), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 4.0 * nrows), squeeze=False)
    try:
        _draw_cdfs(fig, axes, summary, tenants, latencies)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _draw_cdfs(fig, axes, summary: Summary, tenants: list[str], latencies: dict) -> None:
    rows = summary.rows
    colors = _colors(list(dict.fromkeys(rows["deployment"])))
    for ax, tenant in zip(axes.flat, tenants, strict=False):
        trows = rows[rows["tenant"] == tenant]
        first = trows.iloc[0]
        sla_ms, sla_pct = float(first["sla_ms"]), float(first["sla_percentile"])
        series = {}
        for dep in trows["deployment"]:
            lat = latencies.get((tenant, dep), np.empty(0))
            series[dep] = lat[np.isfinite(lat) & (lat > 0)]  # a log axis cannot show 0
        from_quantiles = sum(len(v) for v in series.values()) > CDF_MAX_POINTS
        for dep, lat in series.items():
            if len(lat) == 0:
                ax.plot([], [], color=colors[_kind(dep)], ls=":", label=f"{_text(dep)}: no successful requests")
                continue
            x, y = _cdf(lat, from_quantiles)
            ax.step(x, y, where="post", color=colors[_kind(dep)], lw=1.6, label=f"{_text(dep)} (n={len(lat):,})")
        if not any(len(v) for v in series.values()):
            ax.text(0.5, 0.5, "no successful requests", transform=ax.transAxes, ha="center", va="center")
            ax.set_xlim(sla_ms / 10, sla_ms * 10)
        ax.axvline(sla_ms, ls="--", color=SLA_COLOR, lw=1.3, label=f"SLA: {_pctl(sla_pct)} ≤ {sla_ms:g} ms")
        ax.axhline(sla_pct / 100, ls=":", color="#7f8c8d", lw=0.9)
        ax.set_xscale("log")
        _plain_log_ticks(ax, "x")
        ax.set_ylim(0, 1.02)
        ax.set_title(_text(f"{tenant} ({first['model']})"), fontsize=11)
        ax.set_xlabel("latency from scheduled send (ms, log scale)", fontsize=9)
        ax.set_ylabel("fraction of requests", fontsize=9)
        ax.tick_params(which="both", labelsize=8)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    for ax in list(axes.flat)[len(tenants) :]:
        ax.set_visible(False)
    fig.suptitle(_text(f"{summary.scenario}: latency CDF (measured, successful requests)"), fontsize=12)
    fig.tight_layout()


def _layout(rows: pd.DataFrame, tenants: list[str]) -> tuple[list[tuple[float, float, dict]], float]:
    """Bar positions: one group per tenant, one bar per deployment the tenant appears in."""
    groups = [rows[rows["tenant"] == t].to_dict("records") for t in tenants]
    width = min(0.8 / max((len(g) for g in groups), default=1), 0.36)
    bars = []
    for i, group in enumerate(groups):
        for j, r in enumerate(group):
            bars.append((i + (j - (len(group) - 1) / 2) * width, float(i), r))
    return bars, width


def _group_span(bars: list[tuple[float, float, dict]], center: float, width: float) -> tuple[float, float]:
    xs = [x for x, c, _ in bars if c == center]
    return min(xs) - width / 2, max(xs) + width / 2


def _bar_style(r: dict, color: str) -> dict:
    if r["sla_met"]:
        return {"color": color, "edgecolor": "white", "linewidth": 0.8}
    return {"color": color, "edgecolor": SLA_COLOR, "linewidth": 1.6, "hatch": "///"}


def throughput_p99(summary: Summary, path: Path) -> Path:
    """(a) throughput vs target rate, (b) SLA-percentile latency vs SLA, per tenant and deployment."""
    path = Path(path)
    tenants = _tenants(summary)
    fig_w = max(11.0, 2 * (1.6 * len(tenants) + 1.5))
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(fig_w, 4.8))
    try:
        _draw_bars(fig, ax_t, ax_l, summary, tenants)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _draw_bars(fig, ax_t, ax_l, summary: Summary, tenants: list[str]) -> None:
    rows = summary.rows
    colors = _colors(list(dict.fromkeys(rows["deployment"])))
    bars, width = _layout(rows, tenants)
    centers = sorted({c for _, c, _ in bars})
    pctls = sorted({_pctl(float(r["sla_percentile"])) for _, _, r in bars})
    pctl_name = pctls[0] if len(pctls) == 1 else "SLA-percentile"

    # (a) throughput
    top_t = max([float(r["throughput_rps"]) for _, _, r in bars if np.isfinite(r["throughput_rps"])] + [0.0])
    top_t = max(top_t, *[float(r["target_rps"]) for _, _, r in bars if np.isfinite(r["target_rps"])], 0.0)
    top_t = top_t * 1.18 if top_t > 0 else 1.0
    for x, _, r in bars:
        v = float(r["throughput_rps"])
        target = float(r["target_rps"])
        if np.isfinite(v):
            ax_t.bar(x, v, width, **_bar_style(r, colors[_kind(r["deployment"])]))
            above = max(v, target) if np.isfinite(target) else v  # keep the label clear of the target line
            ax_t.text(x, above + top_t * 0.012, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
        if np.isfinite(target):
            ax_t.plot([x - width / 2, x + width / 2], [target] * 2, color="black", lw=2.0)
    ax_t.set_ylim(0, top_t)
    ax_t.set_ylabel("throughput (completed requests/s)", fontsize=9)
    ax_t.set_title("(a) throughput vs target rate", fontsize=11)

    # (b) SLA-percentile latency, failures counted as infinitely late
    finite = [float(r["sla_latency_ms"]) for _, _, r in bars if np.isfinite(r["sla_latency_ms"])]
    finite += [float(r["sla_ms"]) for _, _, r in bars]
    positive = [v for v in finite if v > 0]
    log = bool(positive) and max(positive) / min(positive) > LOG_SPREAD
    top_l = max([*finite, 1.0]) * (2.0 if log else 1.18)
    if log:
        ax_l.set_yscale("log")
        ax_l.set_ylim(min(positive) / 2, top_l)
    else:
        ax_l.set_ylim(0, top_l)
    for x, _, r in bars:
        v = float(r["sla_latency_ms"])
        style = _bar_style(r, colors[_kind(r["deployment"])])
        if math.isnan(v):
            ax_l.text(x, ax_l.get_ylim()[0], "n/a", ha="center", va="bottom", fontsize=7, color="#555555")
        elif math.isinf(v):
            ax_l.bar(x, top_l, width, **style)
            y = top_l / 1.15 if log else top_l * 0.97
            ax_l.text(x, y, "failed", ha="center", va="top", fontsize=8, color=SLA_COLOR, fontweight="bold",
                      bbox={"facecolor": "white", "edgecolor": SLA_COLOR, "pad": 1.5, "lw": 0.8})  # fmt: skip
        else:
            ax_l.bar(x, v, width, **style)
            ax_l.text(x, v * 1.04 if log else v + top_l * 0.01, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    sla_of = {c: next(r for _, cc, r in bars if cc == c) for c in centers}  # SLA fields are per tenant
    for c in centers:
        lo, hi = _group_span(bars, c, width)
        ax_l.plot([lo - 0.04, hi + 0.04], [sla_of[c]["sla_ms"]] * 2, color=SLA_COLOR, ls="--", lw=1.6)
    ax_l.set_ylabel(f"{pctl_name} latency (ms{', log scale' if log else ''})", fontsize=9)
    ax_l.set_title(f"(b) {pctl_name} latency vs SLA (failed requests count as late)", fontsize=11)

    if log:
        _plain_log_ticks(ax_l, "y")
    ax_t.set_xticks(centers, [_text(t) for t in tenants], fontsize=9)
    ax_l.set_xticks(
        centers,
        [
            _text(f"{t}\n{_pctl(float(sla_of[c]['sla_percentile']))} ≤ {float(sla_of[c]['sla_ms']):g} ms")
            for t, c in zip(tenants, centers, strict=True)
        ],
        fontsize=9,
    )
    for ax in (ax_t, ax_l):
        ax.set_xlim(-0.6, len(tenants) - 0.4)
        ax.tick_params(axis="y", which="both", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)

    kinds = list(dict.fromkeys(_kind(r["deployment"]) for _, _, r in bars))
    handles = [Patch(color=colors[k], label=_text(_kind_label(k))) for k in kinds]
    handles += [
        Line2D([], [], color="black", lw=2.0, label="target rate"),
        Line2D([], [], color=SLA_COLOR, ls="--", lw=1.6, label="SLA latency target"),
        Patch(facecolor="white", edgecolor=SLA_COLOR, hatch="///", label="misses SLA"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(_text(f"{summary.scenario}: throughput and tail latency per tenant"), fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def make_plots(requests: pd.DataFrame, summary: Summary, plots_dir: Path) -> dict[str, Path]:
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    return {
        "latency_cdf": latency_cdf(requests, summary, plots_dir / LATENCY_CDF_PNG),
        "throughput_p99": throughput_p99(summary, plots_dir / THROUGHPUT_P99_PNG),
    }
