"""Plots of a run, drawn from the Summary and the raw request records. Nothing is decided here.

Every statistic (throughput, SLA latency, whether an SLA was met) is read from ``Summary.rows``;
only the latency CDF needs the raw records, as it shows every measured request.

Each plot has a ``_*_figure`` builder that returns the drawn Figure (tests inspect its legends, ticks and
labels) and a public function that saves it as a PNG. The builders make a plain ``Figure``, not a pyplot
one: pyplot keeps every figure it made until it is closed, a plain one is freed with its last reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from perseus.analysis import cost, span_plots
from perseus.analysis.summary import Comparison, Summary

SHARED, SOLO_PREFIX = "shared", "solo-"  # replaced by the recorded kinds once the panels are split

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
BY_REQUESTS_ALPHA = 0.55  # the by-requests chargeback bar: paler than the by-compute one beside it


def _text(s: object) -> str:
    """Plain text for matplotlib: a ``$`` would otherwise start mathtext."""
    return str(s).replace("$", r"\$")


def _kind_label(kind: str) -> str:
    return {"shared": "shared (one server)", "solo": "solo (own server)"}.get(kind, kind)


@dataclass(frozen=True)
class Palette:
    """A colour per deployment, by the part it plays (read from the kind the manifest recorded): the
    shared server and the solo baselines have one colour each; any other deployment (a group, a
    probe) has its own."""

    roles: dict[str, str]  # deployment -> "shared", "solo", or its own name
    colors: Palette  # role -> colour

    def of(self, deployment: str) -> str:
        return self.colors[self.role(deployment)]

    def role(self, deployment: str) -> str:
        return self.roles.get(deployment, deployment)

    def color(self, role: str) -> str:
        return self.colors[role]


def _colors(summary: Summary) -> Palette:
    kinds = dict(zip(summary.deployments["deployment"], summary.deployments["kind"], strict=True))
    deployments = _deployments(summary)
    roles = {d: kinds[d] if kinds.get(d) in KIND_COLORS else d for d in deployments}
    colors, others = dict(KIND_COLORS), iter(OTHER_COLORS * (1 + len(deployments)))
    for role in dict.fromkeys(roles.values()):
        if role not in colors:
            colors[role] = next(others)
    return Palette(roles, colors)


def _deployments(summary: Summary) -> list[str]:
    return list(dict.fromkeys(summary.rows["deployment"]))


def _tenants(summary: Summary) -> list[str]:
    return list(dict.fromkeys(summary.rows["tenant"]))


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


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


# --- latency CDF ----------------------------------------------------------------------------------------------


def latency_cdf(requests: pd.DataFrame, summary: Summary, path: Path) -> Path:
    """One panel per tenant: CDF of successful measured latencies per deployment, SLA as a dashed line."""
    return _save(_latency_cdf_figure(requests, summary), path)


def _latency_cdf_figure(requests: pd.DataFrame, summary: Summary) -> Figure:
    tenants = _tenants(summary)
    n = max(len(tenants), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.4 * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    latencies = _measured_latencies(requests)
    colors = _colors(summary)
    for ax, tenant in zip(axes.flat, tenants, strict=False):
        _cdf_panel(ax, tenant, summary.rows[summary.rows["tenant"] == tenant], latencies, colors)
    for ax in list(axes.flat)[len(tenants) :]:
        ax.set_visible(False)
    fig.suptitle(_text(f"{summary.scenario}: latency CDF (measured, successful requests)"), fontsize=12)
    fig.tight_layout()
    return fig


def _measured_latencies(requests: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Latencies of the successful measured requests, per (tenant, deployment)."""
    if not len(requests):
        return {}
    measured = requests[~requests["warmup"].astype(bool) & requests["ok"].astype(bool)]
    groups = measured.groupby(["tenant", "deployment"], sort=False)
    return {key: g["latency_ms"].to_numpy(dtype=float) for key, g in groups}


def _cdf_panel(ax, tenant: str, trows: pd.DataFrame, latencies: dict, colors: Palette) -> None:
    """One tenant: a CDF per deployment, its SLA latency dashed and its SLA percentile dotted."""
    first = trows.iloc[0]
    sla_ms, sla_pct = float(first["sla_ms"]), float(first["sla_percentile"])
    series = _loggable_latencies(tenant, trows["deployment"], latencies)
    _cdf_lines(ax, series, colors)
    if not any(len(v) for v in series.values()):
        ax.text(0.5, 0.5, "no successful requests", transform=ax.transAxes, ha="center", va="center")
        ax.set_xlim(sla_ms / 10, sla_ms * 10)
    ax.axvline(sla_ms, ls="--", color=SLA_COLOR, lw=1.3, label=f"SLA: {_pctl(sla_pct)} ≤ {sla_ms:g} ms")
    ax.axhline(sla_pct / 100, ls=":", color="#7f8c8d", lw=0.9, label=f"{_pctl(sla_pct)} (SLA percentile)")
    _cdf_axes_style(ax, f"{tenant} ({first['model']})")


def _loggable_latencies(tenant: str, deployments: pd.Series, latencies: dict) -> dict[str, np.ndarray]:
    """Per deployment, the tenant's latencies that a log axis can show: finite and above 0."""
    series = {}
    for dep in deployments:
        lat = latencies.get((tenant, dep), np.empty(0))
        series[dep] = lat[np.isfinite(lat) & (lat > 0)]
    return series


def _cdf_lines(ax, series: dict[str, np.ndarray], colors: Palette) -> None:
    # Large runs are drawn from quantiles: the same curve, far fewer points to render.
    from_quantiles = sum(len(v) for v in series.values()) > CDF_MAX_POINTS
    for dep, lat in series.items():
        color = colors.of(dep)
        if len(lat) == 0:
            ax.plot([], [], color=color, ls=":", label=f"{_text(dep)}: no successful requests")
            continue
        x, y = _cdf(lat, from_quantiles)
        ax.step(x, y, where="post", color=color, lw=1.6, label=f"{_text(dep)} (n={len(lat):,})")


def _cdf_axes_style(ax, title: str) -> None:
    ax.set_xscale("log")
    _plain_log_ticks(ax, "x")
    ax.set_ylim(0, 1.02)
    ax.set_title(_text(title), fontsize=11)
    ax.set_xlabel("latency from scheduled send (ms, log scale)", fontsize=9)
    ax.set_ylabel("fraction of requests", fontsize=9)
    ax.tick_params(which="both", labelsize=8)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


# --- throughput and SLA latency -------------------------------------------------------------------------------


def _bar_x(group: int, j: int, n: int, width: float) -> float:
    """Centre of bar ``j`` of the ``n`` bars side by side in group ``group``."""
    return group + (j - (n - 1) / 2) * width


def _layout(rows: pd.DataFrame, tenants: list[str]) -> tuple[list[tuple[float, float, dict]], float]:
    """Bar positions: one group per tenant, one bar per deployment the tenant appears in."""
    groups = [rows[rows["tenant"] == t].to_dict("records") for t in tenants]
    width = min(0.8 / max((len(g) for g in groups), default=1), 0.36)
    bars = []
    for i, group in enumerate(groups):
        for j, r in enumerate(group):
            bars.append((_bar_x(i, j, len(group), width), float(i), r))
    return bars, width


def _group_span(bars: list[tuple[float, float, dict]], center: float, width: float) -> tuple[float, float]:
    xs = [x for x, c, _ in bars if c == center]
    return min(xs) - width / 2, max(xs) + width / 2


def _bar_style(r: dict, color: str) -> dict:
    if r["sla_met"]:
        return {"color": color, "edgecolor": "white", "linewidth": 0.8}
    return {"color": color, "edgecolor": SLA_COLOR, "linewidth": 1.6, "hatch": "///"}


def _misses_sla_handle() -> Patch:
    return Patch(facecolor="white", edgecolor=SLA_COLOR, hatch="///", label="misses SLA")


@dataclass(frozen=True)
class _Bars:
    """The bars of the throughput figure: (x, group centre, row) each, their width and a colour per kind."""

    bars: list[tuple[float, float, dict]]
    width: float
    colors: Palette

    @property
    def centers(self) -> list[float]:
        return sorted({c for _, c, _ in self.bars})

    def first_rows(self) -> dict[float, dict]:
        """Per group centre, its first row: SLA fields are per tenant, so any row of the group holds them."""
        return {c: next(r for _, cc, r in self.bars if cc == c) for c in self.centers}

    def color(self, r: dict) -> str:
        return self.colors.of(r["deployment"])


def throughput_p99(summary: Summary, path: Path) -> Path:
    """(a) throughput vs target rate, (b) SLA-percentile latency vs SLA, per tenant and deployment."""
    return _save(_throughput_figure(summary), path)


def _throughput_figure(summary: Summary) -> Figure:
    tenants = _tenants(summary)
    fig = Figure(figsize=(max(11.0, 2 * (1.6 * len(tenants) + 1.5)), 4.8))
    ax_t, ax_l = fig.subplots(1, 2)
    bars = _Bars(*_layout(summary.rows, tenants), _colors(summary))
    _throughput_panel(ax_t, bars, tenants)
    _latency_panel(ax_l, bars, tenants)
    _bar_axes_style((ax_t, ax_l), len(tenants))
    _bars_legend(fig, bars)
    fig.suptitle(_text(f"{summary.scenario}: throughput and tail latency per tenant"), fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _throughput_panel(ax, bars: _Bars, tenants: list[str]) -> None:
    """(a) completed requests/s per bar, each bar's target rate as a black line across it."""
    top = _throughput_top(bars.bars)
    for x, _, r in bars.bars:
        _throughput_bar(ax, x, r, bars.width, bars.color(r), top)
    ax.set_ylim(0, top)
    ax.set_ylabel("throughput (completed requests/s)", fontsize=9)
    ax.set_title("(a) throughput vs target rate", fontsize=11)
    ax.set_xticks(bars.centers, [_text(t) for t in tenants], fontsize=9)


def _throughput_top(bars: list[tuple[float, float, dict]]) -> float:
    """Top of the throughput axis: room above the highest bar or target for its label."""
    values = [float(r[k]) for _, _, r in bars for k in ("throughput_rps", "target_rps")]
    top = max([v for v in values if np.isfinite(v)] + [0.0])
    return top * 1.18 if top > 0 else 1.0


def _throughput_bar(ax, x: float, r: dict, width: float, color: str, top: float) -> None:
    v, target = float(r["throughput_rps"]), float(r["target_rps"])
    if np.isfinite(v):
        ax.bar(x, v, width, **_bar_style(r, color))
        above = max(v, target) if np.isfinite(target) else v  # keep the label clear of the target line
        ax.text(x, above + top * 0.012, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    if np.isfinite(target):
        ax.plot([x - width / 2, x + width / 2], [target] * 2, color="black", lw=2.0)


@dataclass(frozen=True)
class _LatencyAxis:
    """The latency panel's y axis: log when the values span more than ``LOG_SPREAD``, with room for labels."""

    log: bool
    bottom: float
    top: float

    def label_y(self, v: float) -> float:
        """Where a value label sits, just above a bar of height ``v``."""
        return v * 1.04 if self.log else v + self.top * 0.01

    def failed_y(self) -> float:
        """Where "failed" sits, just under the top of the full-height bar."""
        return self.top / 1.15 if self.log else self.top * 0.97


def _latency_values(bars: list[tuple[float, float, dict]]) -> list[float]:
    """What the latency axis must show: every measured SLA-percentile latency (not failed) and every SLA."""
    measured = [float(r["sla_latency_ms"]) for _, _, r in bars if np.isfinite(r["sla_latency_ms"])]
    return measured + [float(r["sla_ms"]) for _, _, r in bars]


def _latency_axis(bars: list[tuple[float, float, dict]]) -> _LatencyAxis:
    finite = _latency_values(bars)
    positive = [v for v in finite if v > 0]
    log = bool(positive) and max(positive) / min(positive) > LOG_SPREAD
    top = max([*finite, 1.0]) * (2.0 if log else 1.18)
    return _LatencyAxis(log, min(positive) / 2 if log else 0.0, top)


def _pctl_name(bars: list[tuple[float, float, dict]]) -> str:
    """ "p99" when every tenant's SLA is on the same percentile."""
    pctls = sorted({_pctl(float(r["sla_percentile"])) for _, _, r in bars})
    return pctls[0] if len(pctls) == 1 else "SLA-percentile"


def _latency_panel(ax, bars: _Bars, tenants: list[str]) -> None:
    """(b) SLA-percentile latency per bar, failures counted as infinitely late; each tenant's SLA dashed."""
    axis = _latency_axis(bars.bars)
    if axis.log:
        ax.set_yscale("log")
    ax.set_ylim(axis.bottom, axis.top)
    for x, _, r in bars.bars:
        _latency_bar(ax, x, float(r["sla_latency_ms"]), bars.width, _bar_style(r, bars.color(r)), axis)
    first = bars.first_rows()
    for c, r in first.items():
        lo, hi = _group_span(bars.bars, c, bars.width)
        ax.plot([lo - 0.04, hi + 0.04], [r["sla_ms"]] * 2, color=SLA_COLOR, ls="--", lw=1.6)
    name = _pctl_name(bars.bars)
    ax.set_ylabel(f"{name} latency (ms{', log scale' if axis.log else ''})", fontsize=9)
    ax.set_title(f"(b) {name} latency vs SLA (failed requests count as late)", fontsize=11)
    if axis.log:
        _plain_log_ticks(ax, "y")
    ticks = [_sla_tick(t, first[c]) for t, c in zip(tenants, bars.centers, strict=True)]
    ax.set_xticks(bars.centers, ticks, fontsize=9)


def _latency_bar(ax, x: float, v: float, width: float, style: dict, axis: _LatencyAxis) -> None:
    if math.isnan(v):
        ax.text(x, ax.get_ylim()[0], "n/a", ha="center", va="bottom", fontsize=7, color="#555555")
    elif math.isinf(v):
        ax.bar(x, axis.top, width, **style)
        ax.text(x, axis.failed_y(), "failed", ha="center", va="top", fontsize=8, color=SLA_COLOR, fontweight="bold",
                bbox={"facecolor": "white", "edgecolor": SLA_COLOR, "pad": 1.5, "lw": 0.8})  # fmt: skip
    else:
        ax.bar(x, v, width, **style)
        ax.text(x, axis.label_y(v), f"{v:.3g}", ha="center", va="bottom", fontsize=7)


def _sla_tick(tenant: str, r: dict) -> str:
    return _text(f"{tenant}\n{_pctl(float(r['sla_percentile']))} ≤ {float(r['sla_ms']):g} ms")


def _bar_axes_style(axes, n_groups: int) -> None:
    for ax in axes:
        ax.set_xlim(-0.6, n_groups - 0.4)
        ax.tick_params(axis="y", which="both", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)


def _bars_legend(fig: Figure, bars: _Bars) -> None:
    kinds = list(dict.fromkeys(bars.colors.role(r["deployment"]) for _, _, r in bars.bars))
    handles = [Patch(color=bars.colors.color(k), label=_text(_kind_label(k))) for k in kinds]
    handles += [
        Line2D([], [], color="black", lw=2.0, label="target rate"),
        Line2D([], [], color=SLA_COLOR, ls="--", lw=1.6, label="SLA latency target"),
        _misses_sla_handle(),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)


# --- cost per million -----------------------------------------------------------------------------------------


MONEY_DIGITS = 3


def _money(v: float) -> str:
    """Dollars to three significant digits, trailing zeros kept, so that labels side by side show the same
    precision: $0.0123, $0.600, $1.20, $1.46, $33.8. From $100, whole dollars ($100, $1,234): as precise,
    and never in exponent notation."""
    if not np.isfinite(v):
        return "n/a"
    rounded = float(f"{v:.{MONEY_DIGITS}g}")  # round first: $99.96 is $100, not $100.0
    if rounded == 0:
        return "$0.00"
    if abs(rounded) >= 10 ** (MONEY_DIGITS - 1):
        return f"${v:,.0f}"
    decimals = MONEY_DIGITS - 1 - math.floor(math.log10(abs(rounded)))
    return f"${rounded:.{decimals}f}"


def _cost_top(values) -> float:
    """Top of a cost axis: room above the highest finite bar for its label."""
    return max((float(v) for v in values if np.isfinite(v)), default=1.0) * 1.2 or 1.0


def _cost_bar(ax, x: float, value: float, width: float, style: dict, top: float) -> None:
    if np.isfinite(value):
        ax.bar(x, value, width, **style)
        ax.text(x, value + top * 0.012, _text(_money(value)), ha="center", va="bottom", fontsize=7)
    else:
        ax.text(x, top * 0.01, "n/a", ha="center", va="bottom", fontsize=7, color="#555555")


def cost_per_million(summary: Summary, path: Path) -> Path:
    """(a) $/1M of the shared server vs the solo fleet; (b) per tenant: solo $/1M vs its chargeback in shared."""
    return _save(_cost_figure(summary), path)


def _cost_figure(summary: Summary) -> Figure:
    tenants = _tenants(summary)
    fig = Figure(figsize=(max(11.0, 3.0 + 2.2 * len(tenants) + 4.0), 4.8))
    ax_a, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, max(1.5, 0.9 * len(tenants))]})
    colors = _colors(summary)
    fleet, groups = _fleet_bars(summary, colors), _tenant_cost_bars(summary, tenants)
    _fleet_panel(ax_a, fleet, summary.comparison)
    _tenant_cost_panel(ax_b, groups, tenants, colors)
    _cost_axes_style((ax_a, ax_b))
    _cost_legend(fig, summary, colors, groups, _hatched(fleet, groups))
    fig.suptitle(_text(f"{summary.scenario}: cost per million good requests"), fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _fleet_bars(summary: Summary, colors: Palette) -> list[tuple[str, float, bool, str]]:
    """(label, $/1M, SLAs met, colour) per bar: shared vs the solo fleet when the run compares them,
    else one per deployment."""
    c = summary.comparison
    if c is None:
        return [
            (d["deployment"], d["cost_per_million_good_usd"], d["slas_met"], colors.of(d["deployment"]))
            for d in summary.deployments.to_dict("records")
        ]
    return [
        ("shared\n(1 server)", c.shared_cost_per_million_good_usd, c.shared_slas_met, colors.color("shared")),
        (f"solo\n({c.servers_solo} servers)", c.solo_cost_per_million_good_usd, c.solo_slas_met, colors.color("solo")),
    ]


def _fleet_panel(ax, fleet: list[tuple[str, float, bool, str]], comparison: Comparison | None) -> None:
    """(a) $/1M of the whole mix (or of each deployment), with the savings when the run compares fleets."""
    top = _cost_top(v for _, v, _, _ in fleet)
    for i, (_label, v, ok, color) in enumerate(fleet):
        _cost_bar(ax, i, float(v), 0.6, _bar_style({"sla_met": ok}, color), top)
    ax.set_xticks(range(len(fleet)), [_text(label) for label, _, _, _ in fleet], fontsize=9)
    ax.set_xlim(-0.6, len(fleet) - 0.4)
    ax.set_ylim(0, top)
    ax.set_ylabel("$ per million good requests", fontsize=9)
    ax.set_title("(a) per deployment" if comparison is None else "(a) whole tenant mix", fontsize=11)
    if comparison is not None:
        _savings_note(ax, comparison)


def _savings_note(ax, comparison: Comparison) -> None:
    """A saving is measured at capacity only; at the offered load the bars differ by a count of servers."""
    at = comparison.at_capacity
    if at is not None and np.isfinite(at.savings):
        ax.text(0.5, 0.97, f"at capacity, sharing saves {at.savings:.0%}", transform=ax.transAxes, ha="center",
                va="top", fontsize=9, fontweight="bold")  # fmt: skip
    else:
        ax.text(0.5, 0.97, "at this load: a count of servers;\nthe saving is measured at capacity",
                transform=ax.transAxes, ha="center", va="top", fontsize=8)  # fmt: skip


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
                bars.append({"deployment": d, "how": "by compute", "value": c["cost_per_million_good_by_compute_usd"],
                             "sla_met": r["sla_met"]})  # fmt: skip
                bars.append({"deployment": d, "how": "by requests", "value": c["cost_per_million_good_by_requests_usd"],
                             "sla_met": r["sla_met"]})  # fmt: skip
            else:
                bars.append(
                    {"deployment": d, "how": "", "value": r["cost_per_million_good_usd"], "sla_met": r["sla_met"]}
                )
        groups.append(bars)
    return groups


def _tenant_cost_panel(ax, groups: list[list[dict]], tenants: list[str], colors: Palette) -> None:
    """(b) per tenant: $/1M on its own server beside its chargeback on the shared one."""
    width = min(0.8 / max((len(g) for g in groups), default=1), 0.3)
    top = _cost_top(b["value"] for g in groups for b in g)
    for i, g in enumerate(groups):
        for j, b in enumerate(g):
            _cost_bar(ax, _bar_x(i, j, len(g), width), float(b["value"]), width, _tenant_bar_style(b, colors), top)
    ax.set_xticks(range(len(tenants)), [_text(t) for t in tenants], fontsize=9)
    ax.set_xlim(-0.6, len(tenants) - 0.4)
    ax.set_ylim(0, top)
    ax.set_title("(b) per tenant: own server vs its chargeback on the shared one", fontsize=11)


def _tenant_bar_style(b: dict, colors: Palette) -> dict:
    style = _bar_style(b, colors.of(b["deployment"]))
    return {**style, "alpha": BY_REQUESTS_ALPHA} if b["how"] == "by requests" else style


def _cost_axes_style(axes) -> None:
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _text(f"${v:g}")))


def _hatched(fleet: list[tuple[str, float, bool, str]], groups: list[list[dict]]) -> bool:
    """Whether a drawn bar misses its SLA (a bar without a value is drawn as "n/a", never hatched)."""
    bars = [(v, ok) for _, v, ok, _ in fleet] + [(b["value"], b["sla_met"]) for g in groups for b in g]
    return any(np.isfinite(v) and not ok for v, ok in bars)


def _cost_legend(fig: Figure, summary: Summary, colors: Palette, groups: list[list[dict]], hatched: bool) -> None:
    kinds = list(dict.fromkeys(colors.role(d) for d in summary.rows["deployment"]))
    split = any(b["how"] == "by compute" for g in groups for b in g)
    handles = [_cost_kind_handle(k, colors, split) for k in kinds]
    if split:
        handles.append(
            Patch(
                facecolor=colors.color("shared"), alpha=BY_REQUESTS_ALPHA, label="shared, per tenant: split by requests"
            )
        )
    if hatched:  # a swatch for hatching no bar shows would read as a missed SLA
        handles.append(_misses_sla_handle())
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)


def _cost_kind_handle(kind: str, colors: Palette, split: bool) -> Patch:
    # With a chargeback split, the solid shared bars of panel (b) are the split by compute time.
    note = "; per tenant: split by compute time" if split and kind == "shared" else ""
    return Patch(color=colors.color(kind), label=_text(_kind_label(kind) + note))


# --- GPU timeline ---------------------------------------------------------------------------------------------

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
    return _save(_gpu_figure(requests, summary, telemetry), path)


def _gpu_figure(requests: pd.DataFrame, summary: Summary, telemetry: pd.DataFrame) -> Figure:
    nv = telemetry[telemetry["source"] == cost.NVML]
    deployments = [d for d in _deployments(summary) if (nv["deployment"] == d).any()]
    n = max(len(deployments), 1)
    fig = Figure(figsize=(16, 2.9 * n + 0.9))
    axes = fig.subplots(n, 3, squeeze=False)
    tenants = _tenants(summary)
    tcolor = {t: TENANT_COLORS[i % len(TENANT_COLORS)] for i, t in enumerate(tenants)}
    for i, (row, dep) in enumerate(zip(axes, deployments, strict=False)):
        dev = cost.device_rows(nv[nv["deployment"] == dep])
        _gpu_row(row, dep, dev, _request_rates(requests, dep), tcolor, last=i == len(deployments) - 1)
    _gpu_legend(fig, tenants, tcolor)
    fig.suptitle(_text(f"{summary.scenario}: GPU over time, with each tenant's request rate"), fontsize=12)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))
    return fig


def _gpu_row(row, dep: str, dev: pd.DataFrame, rates: dict[str, pd.Series], tcolor: dict, last: bool) -> None:
    """One deployment: a panel per GPU metric, each with the tenants' request rates on a second axis."""
    top_rate = max((float(r.max()) for r in rates.values() if len(r)), default=1.0) * 1.15 or 1.0
    # Warm-up happens before 0 s: shade it from the earliest sample or completion.
    start = min([float(dev["t_s"].min())] + [float(r.index.min()) for r in rates.values() if len(r)])
    for ax, panel in zip(row, GPU_PANELS, strict=True):
        _gpu_panel(ax, dep, dev, panel, start, last)
        _rate_twin(ax, rates, tcolor, top_rate, label=ax is row[-1])


def _gpu_panel(ax, dep: str, dev: pd.DataFrame, panel: tuple[str, str, float], start: float, last: bool) -> None:
    metric, label, scale = panel
    data = dev[dev["metric"] == metric]
    _gpu_lines(ax, data, scale)
    if not len(data):
        ax.text(0.5, 0.5, "not reported", transform=ax.transAxes, ha="center", va="center", color="#777777")
    if start < 0:
        ax.axvspan(start, 0, color="#7f8c8d", alpha=0.12, lw=0)
    ax.set_ylim(bottom=0)
    if metric == "gpu_util_percent":
        ax.set_ylim(0, 105)
    ax.set_title(_text(f"{dep}: {label}"), fontsize=10)
    if last:
        ax.set_xlabel("time since measurement start (s)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)


def _gpu_lines(ax, data: pd.DataFrame, scale: float) -> None:
    several = data["gpu"].nunique() > 1
    for gpu, g in data.groupby("gpu", sort=True):
        g = g.sort_values("t_s")
        ax.plot(g["t_s"], g["value"] * scale, color="black", lw=1.1, label=f"GPU {gpu}" if several else "GPU")


def _rate_twin(ax, rates: dict[str, pd.Series], tcolor: dict, top_rate: float, label: bool) -> None:
    twin = ax.twinx()
    for tenant, r in rates.items():
        twin.step(r.index + 0.5, r.to_numpy(), where="mid", color=tcolor.get(tenant, "#888888"), lw=0.9,
                  alpha=0.75, ls="--")  # fmt: skip
    twin.set_ylim(0, top_rate)
    twin.tick_params(labelsize=7, colors="#555555")
    if label:
        twin.set_ylabel("completed requests/s", fontsize=8, color="#555555")


def _gpu_legend(fig: Figure, tenants: list[str], tcolor: dict) -> None:
    handles = [Line2D([], [], color="black", lw=1.1, label="GPU metric")]
    handles += [Line2D([], [], color=tcolor[t], ls="--", lw=0.9, label=_text(f"{t} requests/s")) for t in tenants]
    handles.append(Patch(color="#7f8c8d", alpha=0.12, label="warm-up"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)


def make_plots(
    requests: pd.DataFrame,
    summary: Summary,
    plots_dir: Path,
    telemetry: pd.DataFrame | None = None,
    spans: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Every plot this run supports: cost only with a price, the GPU timeline only with NVML telemetry,
    the latency breakdown and the slowest requests only when the run was traced."""
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
    if len(summary.breakdown) and spans is not None:
        out["latency_breakdown"] = span_plots.latency_breakdown(
            summary.breakdown, plots_dir / span_plots.LATENCY_BREAKDOWN_PNG
        )
        out["slowest_requests"] = span_plots.slowest_requests(spans, plots_dir / span_plots.SLOWEST_REQUESTS_PNG)
    return out
