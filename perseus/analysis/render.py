"""Reports of a run (report.md, report.html): the Summary, formatted. Nothing is computed here.

Templates live in ``perseus/analysis/templates``; the filters below are the only formatting rules:
NaN reads "n/a", infinity (every request of a tail failed) reads "failed".
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from perseus.analysis.stats import PERCENTILES
from perseus.analysis.summary import Summary
from perseus.analysis.validity import STOPPED

# Relative to the run folder; the same names plots.make_plots writes (kept here so rendering needs no matplotlib).
PLOT_FILES = {
    "latency_cdf": "plots/latency_cdf.png",
    "throughput_p99": "plots/throughput_p99.png",
    "cost_per_million": "plots/cost_per_million.png",
    "gpu_timeline": "plots/gpu_timeline.png",
    "latency_breakdown": "plots/latency_breakdown.png",
    "slowest_requests": "plots/slowest_requests.png",
}
PLOT_TITLES = {
    "latency_cdf": "Latency CDF per tenant",
    "throughput_p99": "Throughput and SLA-percentile latency per tenant",
    "cost_per_million": "Cost per million requests: shared vs solo, and per tenant",
    "gpu_timeline": "GPU utilisation, power and memory over time, with each tenant's request rate",
    "latency_breakdown": "Where the latency went at p50 and p99 (traced requests)",
    "slowest_requests": "The slowest traced requests as timelines",
}


@dataclass(frozen=True)
class ReportContext:
    run_dir: str
    status: str  # completed | failed | interrupted
    started: str  # UTC ISO
    ended: str  # UTC ISO
    instance: str
    region: str
    market: str
    usd_per_hour: float | None
    price_source: str
    price_date: str
    hardware: str  # e.g. "CPU: AMD EPYC ... (2 cores); no NVIDIA GPU"
    versions: dict[str, str]  # package -> version
    deployment_status: dict[str, str]  # deployment -> "completed" or "failed: <reason>"
    command: str  # how the run was invoked


# --- formatting: jinja filters -------------------------------------------------------------------

NAN_TEXT = "n/a"
INF_TEXT = "failed"


def _special(v: object) -> str | None:
    """The text for a missing, NaN or infinite number; None for an ordinary one."""
    if v is None:
        return NAN_TEXT
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return NAN_TEXT
    if math.isnan(f):
        return NAN_TEXT
    if math.isinf(f):
        return INF_TEXT
    return None


def fmt_ms(v: object) -> str:
    """Milliseconds, 1 decimal (12.3); 2 below 10 ms (4.96), so a miss of a small SLA never reads as equal to it."""
    if (s := _special(v)) is not None:
        return s
    f = float(v)  # type: ignore[arg-type]
    return f"{f:,.1f}" if abs(f) >= 10 else f"{f:.2f}"


def fmt_usd(v: object) -> str:
    """Dollars, 4 significant digits: $0.01234, $12.35, $1,235."""
    if (s := _special(v)) is not None:
        return s
    f = float(v)  # type: ignore[arg-type]
    if f == 0:
        return "$0"
    decimals = max(0, 3 - math.floor(math.log10(abs(f))))
    text = f"{abs(round(f, decimals)):,.{decimals}f}"
    return f"-${text}" if f < 0 else f"${text}"


def fmt_pct(v: object, digits: int = 1) -> str:
    """A fraction as a percentage: 0.4213 -> 42.1%."""
    return _special(v) or f"{float(v) * 100:.{digits}f}%"  # type: ignore[arg-type]


def fmt_num(v: object) -> str:
    """A plain number, shortest form: 150, 2.5, 1,000."""
    if (s := _special(v)) is not None:
        return s
    f = float(v)  # type: ignore[arg-type]
    return f"{f:,.0f}" if f.is_integer() and abs(f) < 1e15 else f"{f:,.6g}"


def fmt_int(v: object) -> str:
    return _special(v) or f"{int(v):,}"  # type: ignore[call-overload]


def fmt_rps(v: object) -> str:
    """Requests per second: 2 decimals below 10, 1 above."""
    if (s := _special(v)) is not None:
        return s
    f = float(v)  # type: ignore[arg-type]
    return f"{f:,.1f}" if abs(f) >= 10 else f"{f:.2f}"


def fmt_sig(v: object, digits: int = 3) -> str:
    """A measured quantity to ``digits`` significant digits: 1.12, 39.6, 1,234."""
    if (s := _special(v)) is not None:
        return s
    f = float(v)  # type: ignore[arg-type]
    if f == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(f))))
    return f"{round(f, decimals):,.{decimals}f}"


def fmt_secs(v: object) -> str:
    return _special(v) or f"{float(v):,.1f} s"  # type: ignore[arg-type]


def fmt_yesno(v: object) -> str:
    return "yes" if bool(v) else "NO"


def fmt_pctl(v: object) -> str:
    """An SLA percentile as a name: 99 -> p99, 99.9 -> p99.9."""
    return _special(v) or f"p{float(v):g}"  # type: ignore[arg-type]


def md_escape(v: object) -> str:
    """Text safe inside a markdown table cell: no column breaks, no raw HTML, one line."""
    s = str(v).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(s.splitlines())


def run_was(status: object) -> str:
    """A run's status as the end of "this run ...": "was interrupted", "failed", "stopped without finishing"."""
    return STOPPED.get(str(status), str(status))


def is_finite(v: object) -> bool:
    return _special(v) is None


FORMATTING: dict[str, Callable[..., str]] = {
    "ms": fmt_ms,
    "usd": fmt_usd,
    "pct": fmt_pct,
    "num": fmt_num,
    "int": fmt_int,
    "rps": fmt_rps,
    "secs": fmt_secs,
    "sig": fmt_sig,
    "yesno": fmt_yesno,
    "pctl": fmt_pctl,
    "md": md_escape,
    "run_was": run_was,
}
TESTS: dict[str, Callable[[object], bool]] = {"finite": is_finite}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("perseus.analysis", "templates"),
        # report.html.j2 is escaped; report.md.j2 is not (markdown cells go through the `md` filter).
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FORMATTING)
    env.tests.update(TESTS)
    return env


def plot_keys(summary: Summary) -> list[str]:
    """The plots plots.make_plots draws for this summary: cost only with a price, the GPU timeline only
    with NVML telemetry."""
    keys = ["latency_cdf", "throughput_p99"]
    if summary.deployments["cost_usd"].notna().any():
        keys.append("cost_per_million")
    if summary.gpu_note is None:
        keys.append("gpu_timeline")
    if len(summary.breakdown):
        keys += ["latency_breakdown", "slowest_requests"]
    return keys


def _server_rows(summary: Summary) -> list[dict]:
    """Triton's server-side rows, each beside the same tenant's client-side p50/p99 (a lookup, no arithmetic)."""
    client = {(r["deployment"], r["tenant"]): r for r in summary.rows.to_dict("records")}
    out = []
    for r in summary.server.to_dict("records"):
        c = client.get((r["deployment"], r["tenant"]), {})
        out.append({**r, "client_p50_ms": c.get("p50_ms"), "client_p99_ms": c.get("p99_ms")})
    return out


def _variables(summary: Summary, ctx: ReportContext) -> dict:
    return {
        "summary": summary,
        "ctx": ctx,
        "comparison": summary.comparison,
        "rows": summary.rows.to_dict("records"),
        "deployments": summary.deployments.to_dict("records"),
        "notes": list(summary.notes),
        "percentiles": PERCENTILES,
        "server": _server_rows(summary),
        "chargeback": summary.chargeback.to_dict("records"),
        "energy": summary.energy.to_dict("records"),
        "gpu_note": summary.gpu_note,
        "trials": summary.trials.to_dict("records"),
        "strategies": summary.strategies.to_dict("records"),
        "frameworks": summary.frameworks.to_dict("records"),
        "ramps": summary.ramps.to_dict("records"),
        "pipeline": summary.pipeline.to_dict("records"),
        "breakdown": summary.breakdown.to_dict("records"),
        "attribution": summary.attribution.to_dict("records"),
        "at_capacity": summary.at_capacity,
        "capacity_rows": summary.at_capacity.tenants.to_dict("records") if summary.at_capacity else [],
        "groups": [d for d in summary.deployments.to_dict("records") if d["kind"] == "group"],
        "charge_counter": summary.chargeback["compute_counter"].iloc[0] if len(summary.chargeback) else "",
    }


def render_markdown(summary: Summary, ctx: ReportContext, plots: dict[str, Path] | None = None) -> str:
    """``plots``: what plots.make_plots returned (only its keys are linked); None links the plots it would draw."""
    keys = list(plots) if plots is not None else plot_keys(summary)
    plot_list = [{"key": k, "title": PLOT_TITLES.get(k, k), "file": PLOT_FILES.get(k, f"plots/{k}.png")} for k in keys]
    return environment().get_template("report.md.j2").render(**_variables(summary, ctx), plot_list=plot_list)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_html(summary: Summary, ctx: ReportContext, plots: dict[str, Path]) -> str:
    """A self-contained page: inline CSS, plots embedded as data URIs, no external references."""
    images = [
        {"key": key, "title": PLOT_TITLES.get(key, key.replace("_", " ")), "src": _data_uri(path)}
        for key, path in plots.items()
        if Path(path).is_file()
    ]
    return environment().get_template("report.html.j2").render(**_variables(summary, ctx), images=images)
