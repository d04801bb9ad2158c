"""Plots of traced runs: where latency went at p50/p99 (stacked), and the slowest requests' timelines.

Drawn from ``Summary.breakdown`` and the spans (``perseus.analysis.breakdown``); nothing is decided
here. Like ``plots``, each ``_*_figure`` builder returns a plain Figure, which the public function saves.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from perseus.analysis import breakdown

LATENCY_BREAKDOWN_PNG = "latency_breakdown.png"
SLOWEST_REQUESTS_PNG = "slowest_requests.png"
DPI = 110
# Inches kept below the axes for the x label and the two-row legend, and above them for the title.
LEGEND_IN = 1.15
TITLE_IN = 0.4
# One colour per part, in time order: client (greys), network (blues), Triton (purple), queue (red),
# compute (greens).
PART_COLORS = {
    "send_lag_ms": "#bdbdbd",
    "net_in_ms": "#6baed6",
    "handling_ms": "#9e9ac8",
    "queue_ms": "#de2d26",
    "compute_input_ms": "#a1d99b",
    "compute_infer_ms": "#31a354",
    "compute_output_ms": "#006d2c",
    "net_out_ms": "#2171b5",
}
PART_LABELS = {
    "send_lag_ms": "send lag (client)",
    "net_in_ms": "network in",
    "handling_ms": "Triton handling",
    "queue_ms": "queue",
    "compute_input_ms": "compute input",
    "compute_infer_ms": "compute infer",
    "compute_output_ms": "compute output",
    "net_out_ms": "network out",
}


def _legend(fig: Figure) -> None:
    handles = [Patch(color=PART_COLORS[p], label=PART_LABELS[p]) for p in breakdown.PARTS]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)


def _breakdown_figure(table: pd.DataFrame) -> Figure:
    """One bar per (deployment, tenant) and percentile, stacked by part (means near the percentile)."""
    height = 1.8 + 0.45 * max(1, len(table))
    fig = Figure(figsize=(9, height))
    ax = fig.add_subplot()
    labels = [f"{r.deployment} / {r.tenant} p{r.percentile}" for r in table.itertuples()]
    y = np.arange(len(table))[::-1]
    left = np.zeros(len(table))
    for part in breakdown.PARTS:
        values = table[part].clip(lower=0).to_numpy()  # a slightly negative network-out reads as 0 wide
        ax.barh(y, values, left=left, color=PART_COLORS[part], height=0.7)
        left += values
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("mean over the requests near the percentile (ms)")
    ax.set_title("Where the latency went (traced requests)")
    fig.subplots_adjust(left=0.3, bottom=LEGEND_IN / height, top=1 - TITLE_IN / height, right=0.97)
    _legend(fig)
    return fig


def latency_breakdown(table: pd.DataFrame, path: Path) -> Path:
    fig = _breakdown_figure(table)
    fig.savefig(path, dpi=DPI)
    return Path(path)


def _slowest_figure(top: pd.DataFrame) -> Figure:
    """Each slow request as a timeline from its scheduled time: its parts in order, end to end."""
    height = 1.8 + 0.3 * max(1, len(top))
    fig = Figure(figsize=(9, height))
    ax = fig.add_subplot()
    y = np.arange(len(top))[::-1]
    labels = [f"{r.deployment} / {r.tenant}  ({r.latency_ms:.1f} ms)" for r in top.itertuples()]
    start = np.zeros(len(top))
    for part in breakdown.PARTS:
        width = top[part].clip(lower=0).to_numpy()
        ax.barh(y, width, left=start, color=PART_COLORS[part], height=0.7)
        start += width
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("ms since the request's scheduled time")
    ax.set_title(f"The {breakdown.SLOWEST} slowest traced requests per deployment and tenant")
    fig.subplots_adjust(left=0.3, bottom=LEGEND_IN / height, top=1 - TITLE_IN / height, right=0.97)
    _legend(fig)
    return fig


def slowest_requests(spans: pd.DataFrame, path: Path) -> Path:
    fig = _slowest_figure(breakdown.slowest(spans))
    fig.savefig(path, dpi=DPI)
    return Path(path)
