"""`perseus plan`'s files: plan.csv, probes.csv, plan.toml, plan.md, plan.html and the packing picture.

Formatting only: every figure comes from the PlanSummary (perseus/packing/analysis.py).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import pandas as pd
import tomli_w
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from perseus import results
from perseus.checks import Prepared
from perseus.packing.analysis import PlanSummary, summarize_plan
from perseus.packing.run import VERIFY_PREFIX, Outcome, Settings, brackets, group_names, options, planned_scenario
from perseus.report import summary_of
from perseus.scenario import Scenario

PLAN_CSV = "plan.csv"
PLAN_TOML = "plan.toml"
PLAN_MD = "plan.md"
PLAN_HTML = "plan.html"
PROBES_CSV = "probes.csv"
PREDICTIONS_CSV = "predictions.csv"
PACKING_PNG = "packing.png"
TEMPLATES = Path(__file__).with_name("templates")
LOAD_CMAP = "YlOrRd"  # light = idle, dark = busy


def write_plan(run_dir: Path, ready: Prepared, settings: Settings, outcome: Outcome) -> PlanSummary:
    """The plan's figures, from the outcome and its verification run's folders; then every file."""
    scenario, packing = ready.scenario, outcome.packing
    names = group_names(packing) if packing else []
    busy, shares = verification_figures(run_dir, names, outcome)
    space = outcome.space
    summary = summarize_plan(
        tenants=list(space.tenants),
        rates={t.name: t.load.mean_rate() for t in scenario.tenants},
        table=space.table,
        options=options(space, outcome.measured, list(space.tenants), False),
        searches=brackets(space, outcome.measured),
        predicted=outcome.measured.predicted,
        packing=packing,
        names=names,
        headroom=settings.headroom,
        verification=outcome.verification,
        busy=busy,
        shares=shares,
        infeasible=list(outcome.infeasible),
        interrupted=outcome.interrupted,
    )
    planned = planned_scenario(scenario, packing, space.instance) if packing else None
    write(run_dir, summary, planned, outcome.measured.probes, ready.repository)
    return summary


def verification_figures(run_dir: Path, names: list[str], outcome: Outcome) -> tuple[dict, dict]:
    """Each verified group's busy fraction and its tenants' execution-time shares, from its own folder."""
    busy, shares = {}, {}
    for name in names:
        if name not in outcome.verification or not outcome.verification[name]:
            continue
        summary = summary_of(run_dir, [f"{VERIFY_PREFIX}{name}"])
        busy[name] = float(summary.deployments["busy_fraction"].iloc[0])
        rows = summary.rows.set_index("tenant")
        charge = summary.chargeback.set_index("tenant") if len(summary.chargeback) else None
        if charge is not None:
            shares[name] = {t: float(charge.loc[t, "compute_share"]) for t in charge.index}
        else:  # a group of one tenant pays its whole server
            shares[name] = {t: 1.0 for t in rows.index}
    return busy, shares


def write(run_dir: Path, summary: PlanSummary, planned: Scenario | None, probes: list[dict], repository: Path) -> str:
    """Every file of the plan folder; returns plan.md's text."""
    summary.plan.to_csv(run_dir / PLAN_CSV, index=False, float_format="%.6g")
    pd.DataFrame(probes).to_csv(run_dir / PROBES_CSV, index=False, float_format="%.6g")
    summary.predictions.to_csv(run_dir / PREDICTIONS_CSV, index=False, float_format="%.6g")
    if planned is not None:
        (run_dir / PLAN_TOML).write_text(plan_toml(planned, repository), encoding="utf-8")
    plots = run_dir / results.PLOTS
    plots.mkdir(exist_ok=True)
    picture = packing_figure(summary, plots / PACKING_PNG)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=_usd, pct=_pct, num=_num)
    context = {
        "s": summary,
        "plan": summary.plan.to_dict("records"),
        "chargeback": summary.chargeback.to_dict("records"),
        "shapley": summary.shapley.to_dict("records") if summary.shapley is not None else None,
        "predictions": summary.predictions.to_dict("records"),
        "picture": f"{results.PLOTS}/{PACKING_PNG}" if picture else None,
        "picture_uri": _data_uri(picture) if picture else None,
        "has_toml": planned is not None,
    }
    text = env.get_template("plan.md.j2").render(**context)
    (run_dir / PLAN_MD).write_text(text, encoding="utf-8")
    (run_dir / PLAN_HTML).write_text(env.get_template("plan.html.j2").render(**context), encoding="utf-8")
    return text


def plan_toml(planned: Scenario, repository: Path) -> str:
    """A scenario `perseus run` accepts: the packing's groups as [[deployments]], the models where they are."""
    data = planned.model_dump(mode="json", exclude_none=True)
    data["server"]["model_repository"] = str(Path(repository).resolve())
    data.pop("sweep", None)
    header = "# Written by `perseus plan`: run it with `perseus run plan.toml` to measure the packing again.\n"
    return header + tomli_w.dumps(data)


def packing_figure(summary: PlanSummary, path: Path) -> Path | None:
    """Servers as boxes (one per replica), each tenant a band as wide as its share of the server's cost,
    shaded by how busy the server was in the verification run."""
    plan = summary.plan
    if plan.empty:
        return None
    shares = {(c["group"], c["tenant"]): c["share"] for c in summary.chargeback.to_dict("records")}
    boxes = [(r, i) for r in plan.to_dict("records") for i in range(int(r["replicas"]))]
    fig = Figure(figsize=(max(6.0, 1.6 * len(boxes) + 1.5), 3.4))
    ax = fig.subplots()
    cmap = matplotlib.colormaps[LOAD_CMAP]
    for x, (r, replica) in enumerate(boxes):
        busy = r["busy_fraction"]
        shade = cmap(0.15 + 0.8 * min(busy, 1.0)) if math.isfinite(busy) else "0.9"
        bottom = 0.0
        for tenant in r["tenants"].split():
            height = shares.get((r["group"], tenant), 1 / len(r["tenants"].split()))
            ax.add_patch(Rectangle((x + 0.05, bottom), 0.9, height, facecolor=shade, edgecolor="0.3"))
            ax.text(x + 0.5, bottom + height / 2, tenant, ha="center", va="center", fontsize=8)
            bottom += height
        ax.add_patch(Rectangle((x + 0.05, 0), 0.9, 1.0, fill=False, edgecolor="black", lw=1.6))
        label = r["group"] + (f"\nreplica {replica + 1}/{r['replicas']}" if r["replicas"] > 1 else "")
        busy_text = f"{busy:.0%} busy" if math.isfinite(busy) else "busy n/a"
        ax.text(x + 0.5, -0.08, f"{label}\n{busy_text}", ha="center", va="top", fontsize=7)
    ax.set_xlim(0, len(boxes))
    ax.set_ylim(-0.45, 1.05)
    ax.axis("off")
    verdict = "verified" if summary.verified else "not verified"
    ax.set_title(f"the plan: {len(boxes)} servers ({verdict}); bands = share of the server's cost", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _usd(v) -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else f"${float(v):.3g}"


def _pct(v) -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else f"{float(v):.0%}"


def _num(v) -> str:
    if v is None:
        return "n/a"
    v = float(v)
    return "none failed" if math.isinf(v) else ("n/a" if math.isnan(v) else f"{v:.3g}")
