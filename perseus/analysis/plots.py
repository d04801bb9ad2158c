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

from perseus.analysis import cost
from perseus.analysis.summary import SHARED, SOLO_PREFIX, Summary

DPI = 110
LATENCY_CDF_PNG = "latency_cdf.png"
THROUGHPUT_P99_PNG = "throughput_p99.png"
COST_PER_MILLION_PNG = "cost_per_million.png"
GPU_TIMELINE_PNG = "gpu_timeline.png"
TENANT_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

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


# --- cost per million ---------------------------------------------------------------------------------


def _money(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"${v:,.3g}" if v < 1000 else f"${v:,.0f}"


def _cost_bar(ax, x: float, value: float, width: float, style: dict, top: float) -> None:
    if np.isfinite(value):
        ax.bar(x, value, width, **style)
        ax.text(x, value + top * 0.012, _text(_money(value)), ha="center", va="bottom", fontsize=7)
    else:
        ax.text(x, top * 0.01, "n/a", ha="center", va="bottom", fontsize=7, color="#555555")


def cost_per_million(summary: Summary, path: Path) -> Path:
    """(a) $/1M of the shared server vs the solo fleet; (b) per tenant: solo $/1M vs its chargeback in shared."""
    path = Path(path)
    tenants = _tenants(summary)
    fig_w = max(11.0, 3.0 + 2.2 * len(tenants) + 4.0)
    fig, (ax_a, ax_b) = plt.subplots(
        1, 2, figsize=(fig_w, 4.8), gridspec_kw={"width_ratios": [1.0, max(1.5, 0.9 * len(tenants))]}
    )
    try:
        _draw_cost(fig, ax_a, ax_b, summary, tenants)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _tenant_cost_bars(summary: Summary, tenants: list[str]) -> list[list[dict]]:
    """Per tenant: one bar per single-tenant deployment, two (by compute, by requests) per shared one."""
    charge = {(c["deployment"], c["tenant"]): c for c in summary.chargeback.to_dict("records")}
    groups = []
    for t in tenants:
        bars = []
        for r in summary.rows[summary.rows["tenant"] == t].to_dict("records"):
            d = r["deployment"]
            if (d, t) in charge:
                c = charge[(d, t)]
                bars.append({"deployment": d, "how": "by compute", "value": c["cost_per_million_by_compute_usd"],
                             "sla_met": r["sla_met"]})  # fmt: skip
                bars.append({"deployment": d, "how": "by requests", "value": c["cost_per_million_by_requests_usd"],
                             "sla_met": r["sla_met"]})  # fmt: skip
            else:
                bars.append({"deployment": d, "how": "", "value": r["cost_per_million_usd"], "sla_met": r["sla_met"]})
        groups.append(bars)
    return groups


def _draw_cost(fig, ax_a, ax_b, summary: Summary, tenants: list[str]) -> None:
    colors = _colors(list(dict.fromkeys(summary.rows["deployment"])))
    c = summary.comparison

    # (a) the whole mix
    if c is not None:
        fleet = [
            ("shared\n(1 server)", c.shared_cost_per_million_usd, c.shared_slas_met, colors["shared"]),
            (f"solo\n({c.servers_solo} servers)", c.solo_cost_per_million_usd, c.solo_slas_met, colors["solo"]),
        ]
        title = "(a) whole tenant mix"
    else:
        fleet = [
            (d["deployment"], d["cost_per_million_usd"], d["slas_met"], colors[_kind(d["deployment"])])
            for d in summary.deployments.to_dict("records")
        ]
        title = "(a) per deployment"
    values = [float(v) for _, v, _, _ in fleet if np.isfinite(v)]
    top = max(values, default=1.0) * 1.2 or 1.0
    for i, (_label, v, ok, color) in enumerate(fleet):
        _cost_bar(ax_a, i, float(v), 0.6, _bar_style({"sla_met": ok}, color), top)
    ax_a.set_xticks(range(len(fleet)), [_text(lbl) for lbl, _, _, _ in fleet], fontsize=9)
    ax_a.set_xlim(-0.6, len(fleet) - 0.4)
    ax_a.set_ylim(0, top)
    ax_a.set_ylabel("$ per million inferences", fontsize=9)
    ax_a.set_title(title, fontsize=11)
    if c is not None and np.isfinite(c.savings_counted):
        ax_a.text(0.5, 0.97, f"savings: {c.savings_counted:.0%}", transform=ax_a.transAxes, ha="center", va="top",
                  fontsize=9, fontweight="bold")  # fmt: skip
    elif c is not None:
        ax_a.text(0.5, 0.97, "savings not counted:\nan SLA is missed", transform=ax_a.transAxes, ha="center",
                  va="top", fontsize=8, color=SLA_COLOR)  # fmt: skip

    # (b) per tenant
    groups = _tenant_cost_bars(summary, tenants)
    width = min(0.8 / max((len(g) for g in groups), default=1), 0.3)
    values = [float(b["value"]) for g in groups for b in g if np.isfinite(b["value"])]
    top = max(values, default=1.0) * 1.2 or 1.0
    hows = set()
    for i, g in enumerate(groups):
        for j, b in enumerate(g):
            x = i + (j - (len(g) - 1) / 2) * width
            style = _bar_style(b, colors[_kind(b["deployment"])])
            if b["how"] == "by requests":
                style = {**style, "alpha": 0.55}
            hows.add(b["how"])
            _cost_bar(ax_b, x, float(b["value"]), width, style, top)
    ax_b.set_xticks(range(len(tenants)), [_text(t) for t in tenants], fontsize=9)
    ax_b.set_xlim(-0.6, len(tenants) - 0.4)
    ax_b.set_ylim(0, top)
    ax_b.set_title("(b) per tenant: own server vs its chargeback on the shared one", fontsize=11)
    for ax in (ax_a, ax_b):
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _text(f"${v:g}")))

    kinds = list(dict.fromkeys(_kind(d) for d in summary.rows["deployment"]))
    split = "by compute" in hows
    handles = [
        Patch(
            color=colors[k],
            label=_text(_kind_label(k) + ("; per tenant: split by compute time" if split and k == "shared" else "")),
        )
        for k in kinds
    ]
    if split:
        handles.append(Patch(facecolor=colors["shared"], alpha=0.55, label="shared, per tenant: split by requests"))
    handles.append(Patch(facecolor="white", edgecolor=SLA_COLOR, hatch="///", label="misses SLA"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(_text(f"{summary.scenario}: cost per million inferences"), fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


# --- GPU timeline -------------------------------------------------------------------------------------------

GPU_PANELS = (
    ("gpu_util_percent", "GPU utilisation (%)", 1.0),
    ("power_w", "power (W)", 1.0),
    ("memory_used_bytes", "memory used (GB)", 1e-9),
)


def _request_rates(requests: pd.DataFrame, deployment: str) -> dict[str, pd.Series]:
    """Completed requests per second (by completion time, warm-up included), per tenant."""
    if not len(requests):
        return {}
    done = requests[(requests["deployment"] == deployment) & requests["ok"].astype(bool)]
    out = {}
    for tenant, g in done.groupby("tenant", sort=False, observed=True):
        seconds = np.floor(g["done_s"].to_numpy(dtype=float))
        counts = pd.Series(seconds).value_counts().sort_index()
        full = np.arange(counts.index.min(), counts.index.max() + 1)
        out[tenant] = counts.reindex(full, fill_value=0)
    return out


def gpu_timeline(requests: pd.DataFrame, summary: Summary, telemetry: pd.DataFrame, path: Path) -> Path:
    """Per deployment with NVML telemetry: utilisation, power and memory over time, with each tenant's request
    rate (completed per second) on a second axis."""
    path = Path(path)
    nv = telemetry[telemetry["source"] == cost.NVML]
    deployments = [d for d in dict.fromkeys(summary.rows["deployment"]) if (nv["deployment"] == d).any()]
    n = max(len(deployments), 1)
    fig, axes = plt.subplots(n, 3, figsize=(16, 2.9 * n + 0.9), squeeze=False)
    try:
        _draw_gpu(fig, axes, requests, summary, nv, deployments)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _draw_gpu(fig, axes, requests: pd.DataFrame, summary: Summary, nv: pd.DataFrame, deployments: list[str]) -> None:
    tenants = _tenants(summary)
    tcolor = {t: TENANT_COLORS[i % len(TENANT_COLORS)] for i, t in enumerate(tenants)}
    for i, (row, dep) in enumerate(zip(axes, deployments, strict=False)):
        dev = cost.device_rows(nv[nv["deployment"] == dep])
        rates = _request_rates(requests, dep)
        top_rate = max((float(r.max()) for r in rates.values() if len(r)), default=1.0) * 1.15 or 1.0
        start = min([float(dev["t_s"].min())] + [float(r.index.min()) for r in rates.values() if len(r)])
        for ax, (metric, label, scale) in zip(row, GPU_PANELS, strict=True):
            data = dev[dev["metric"] == metric]
            for gpu, g in data.groupby("gpu", sort=True):
                g = g.sort_values("t_s")
                name = f"GPU {gpu}" if data["gpu"].nunique() > 1 else "GPU"
                ax.plot(g["t_s"], g["value"] * scale, color="black", lw=1.1, label=name)
            if not len(data):
                ax.text(0.5, 0.5, "not reported", transform=ax.transAxes, ha="center", va="center", color="#777777")
            if start < 0:
                ax.axvspan(start, 0, color="#7f8c8d", alpha=0.12, lw=0)
            ax.set_ylim(bottom=0)
            if metric == "gpu_util_percent":
                ax.set_ylim(0, 105)
            ax.set_title(_text(f"{dep}: {label}"), fontsize=10)
            if i == len(deployments) - 1:
                ax.set_xlabel("time since measurement start (s)", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(True, alpha=0.3)
            twin = ax.twinx()
            for tenant, r in rates.items():
                twin.step(r.index + 0.5, r.to_numpy(), where="mid", color=tcolor.get(tenant, "#888888"), lw=0.9,
                          alpha=0.75, ls="--")  # fmt: skip
            twin.set_ylim(0, top_rate)
            twin.tick_params(labelsize=7, colors="#555555")
            if ax is row[-1]:
                twin.set_ylabel("completed requests/s", fontsize=8, color="#555555")
    handles = [Line2D([], [], color="black", lw=1.1, label="GPU metric")]
    handles += [Line2D([], [], color=tcolor[t], ls="--", lw=0.9, label=_text(f"{t} requests/s")) for t in tenants]
    handles.append(Patch(color="#7f8c8d", alpha=0.12, label="warm-up"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(_text(f"{summary.scenario}: GPU over time, with each tenant's request rate"), fontsize=12)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))


def make_plots(
    requests: pd.DataFrame, summary: Summary, plots_dir: Path, telemetry: pd.DataFrame | None = None
) -> dict[str, Path]:
    """Every plot this run supports: cost only with a price, the GPU timeline only with NVML telemetry."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = {
        "latency_cdf": latency_cdf(requests, summary, plots_dir / LATENCY_CDF_PNG),
        "throughput_p99": throughput_p99(summary, plots_dir / THROUGHPUT_P99_PNG),
    }
    if summary.deployments["cost_usd"].notna().any():
        out["cost_per_million"] = cost_per_million(summary, plots_dir / COST_PER_MILLION_PNG)
    if telemetry is not None and cost.has_gpu_metrics(telemetry):
        out["gpu_timeline"] = gpu_timeline(requests, summary, telemetry, plots_dir / GPU_TIMELINE_PNG)
    return out
