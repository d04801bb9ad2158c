"""`perseus plan`'s loop: measure adaptively, solve for the cheapest packing, verify it by a run.

A loop over the ordinary flow, not a second pipeline: every measurement is a deployment run by
``run.Runner`` into the plan folder and summarised by ``report.summary_of``.

<plan>/manifest.json        kind "plan"; the deployments of every probe and of the verification
<plan>/probes/<name>.json   one committed probe (a group at a scale, and whether it passed): resume skips it
<plan>/<deployment>/        each probe's and each verification group's records
<plan>/plan.csv, plan.toml, plan.md, plan.html, probes.csv, plots/packing.png
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perseus import results
from perseus.analysis.bracket import Search, find_capacity
from perseus.checks import Prepared, prepare_run_dir
from perseus.errors import InputError
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, Manifest, Status
from perseus.packing.predict import predicted_scale, subsets
from perseus.packing.solve import Option, Packing, replicas_needed, solve
from perseus.plan import Deployment, probe_scenario, scenario_for
from perseus.progress import Progress
from perseus.report import summary_of
from perseus.run import Runner, new_manifest, save_inputs
from perseus.scenario import GroupSpec, Scenario

PROBES = "probes"
VERIFY_PREFIX = "verify-"
DEFAULT_HEADROOM = 0.25


@dataclass(frozen=True)
class Settings:
    headroom: float = DEFAULT_HEADROOM
    max_probes: int = 60  # in all, over every search (each probe is a full measured deployment)
    probes_per_search: int = 6
    precision: float = 0.15  # a search stops when its bracket is this narrow (relative)


# Seconds-long probes and wide brackets: checks the machinery, or plans a small fleet in minutes.
QUICK = Settings(max_probes=40, probes_per_search=4, precision=0.25)


class Interrupted(Exception):
    """A probe was interrupted: stop, keep what was measured."""


@dataclass
class Measured:
    """What the loop knows: every group's capacity search, and the probes in order."""

    searches: dict[frozenset[str], Search] = field(default_factory=dict)
    predicted: dict[frozenset[str], float] = field(default_factory=dict)  # the prediction made before measuring
    probes: list[dict] = field(default_factory=list)  # one row per (probe, tenant)
    spent: int = 0  # probes run or replayed

    def scale(self, group: frozenset[str]) -> float:
        """The measured capacity scale (0 when the group fits at no scale tried)."""
        return self.searches[group].capacity or 0.0


def group_label(group: frozenset[str] | tuple[str, ...]) -> str:
    return "+".join(sorted(group))


def probe_name(group: frozenset[str], k: float) -> str:
    return f"probe-{group_label(group)}-x{k:.3f}"


@dataclass(frozen=True)
class Outcome:
    manifest: Manifest
    measured: Measured
    packing: Packing | None
    infeasible: tuple[str, ...]  # tenants that meet their SLA alone at no scale tried
    verification: dict[str, dict]  # group name -> {tenant: summary row}
    interrupted: bool
    usd_per_hour: float
    instance: str

    @property
    def verified(self) -> bool:
        rows = [r for group in self.verification.values() for r in group.values()]
        return bool(rows) and all(bool(r["valid"]) and bool(r["sla_met"]) for r in rows)


# -- the folder --------------------------------------------------------------------------------------------
def open_dir(out: Path | None, ready: Prepared, settings: Settings, command: str) -> tuple[Path, Manifest]:
    """A new plan folder, or an earlier one of the same plan (scenario, settings, machine), to resume."""
    fresh = new_manifest(ready, [], command, kind=CommandKind.PLAN)
    fresh.plan = asdict(settings)
    if out is not None and Path(out).is_dir() and any(Path(out).iterdir()):
        run_dir, hint = Path(out), "use a new or empty --out folder"
        try:
            manifest = Manifest.load(run_dir)
        except (OSError, ValueError):
            raise InputError("--out", None, f"{run_dir} is not empty and is not a plan folder; {hint}") from None
        if manifest.kind != CommandKind.PLAN:
            raise InputError("--out", None, f"{run_dir} is not empty and is not a plan folder; {hint}")
        if manifest.scenario.effective != fresh.scenario.effective or manifest.plan != fresh.plan:
            raise InputError("--out", None, f"{run_dir} holds a plan of another scenario or settings; {hint}")
        differs = fresh.machine_difference(manifest)
        if differs:
            raise InputError("--out", None, f"{run_dir} was measured elsewhere ({differs}); {hint}")
        manifest.reopen(results.utc_now(), command)
        manifest.save(run_dir)
        return run_dir, manifest
    run_dir = prepare_run_dir(out, f"{ready.scenario.name}-plan")
    save_inputs(run_dir, ready.file, fresh)
    return run_dir, fresh


def _probe_file(run_dir: Path, name: str) -> Path:
    return run_dir / PROBES / f"{name}.json"


# -- measuring ---------------------------------------------------------------------------------------------
class Prober:
    """Runs (or, on resume, replays) the probes of capacity searches."""

    def __init__(self, scenario: Scenario, run_dir: Path, run_one: Callable[[Scenario, Deployment], Status]):
        self.scenario, self.run_dir, self.run_one = scenario, run_dir, run_one

    def probe(self, group: frozenset[str], k: float, measured: Measured) -> bool:
        name = probe_name(group, k)
        committed = _probe_file(self.run_dir, name)
        # A committed probe is replayed from its file (resume); any other is run now.
        record = json.loads(committed.read_text(encoding="utf-8")) if committed.is_file() else self._run(group, k, name)
        measured.spent += 1
        measured.probes.extend({**row, "group": group_label(group)} for row in record["rows"])
        return bool(record["passed"])

    def _run(self, group: frozenset[str], k: float, name: str) -> dict:
        tenants = tuple(sorted(group))
        scaled = probe_scenario(self.scenario, k, tenants)
        partial = self.run_dir / name
        if partial.exists():  # left by an interrupted attempt; a committed probe has its JSON
            shutil.rmtree(partial)
        deployment = Deployment(name, tenants, kind=DeploymentKind.PROBE, scale=k)
        status = self.run_one(scaled, deployment)
        if status == Status.INTERRUPTED:
            raise Interrupted
        rows = summary_of(self.run_dir, [name]).rows.to_dict("records") if status == Status.COMPLETED else []
        keep = ("deployment", "tenant", "requests", "errors", "good", "throughput_rps", "p99_ms", "sla_latency_ms")
        flags = ("sla_ms", "sla_met", "valid", "evidence_ok", "verdict")
        rows = [
            {
                **{c: results.json_value(r[c]) for c in (*keep, *flags)},
                "over_sla": int(r["requests"] - r["good"]),
                "scale": k,
            }
            for r in rows
        ]
        record = {"group": list(tenants), "scale": k, "status": str(status), "rows": rows}
        record["passed"] = bool(rows) and all(holds(r) for r in rows)
        (self.run_dir / PROBES).mkdir(exist_ok=True)
        results.write_json_atomic(_probe_file(self.run_dir, name), record)
        return record

    def search(self, group: frozenset[str], start: float, settings: Settings, measured: Measured) -> Search:
        budget = max(1, min(settings.probes_per_search, settings.max_probes - measured.spent))
        return find_capacity(
            lambda k: self.probe(group, k, measured), start=start, precision=settings.precision, max_probes=budget
        )


def holds(row: dict) -> bool:
    """Does a tenant hold at a probe's scale? VALID; or too little traffic to gather the evidence within the
    probe's longest duration while not one of its requests failed or missed the SLA. A light tenant in a
    group probed far below its rate would otherwise veto every low scale for want of requests, not for
    any miss. The verification run still requires every tenant VALID."""
    if row["valid"]:
        return True
    clean = row["errors"] == 0 and row["requests"] > 0 and row["sla_latency_ms"] <= row["sla_ms"]
    return clean and not row["evidence_ok"] and row["over_sla"] == 0


def _start(scale: float) -> float:
    """Where a search starts: the predicted scale, rounded to 2 significant digits so that a resumed
    plan replays the same probes (and the probe names stay short)."""
    if not (scale > 0 and math.isfinite(scale)):
        return 1.0
    return float(f"{scale:.2g}")


def options(
    tenants: list[str], measured: Measured, price: float, instance: str, with_predictions: bool
) -> list[Option]:
    """Every group that may be used: the measured ones, and (to choose what to measure) predicted ones."""
    solo = {t: measured.scale(frozenset([t])) for t in tenants}
    known = {g: measured.scale(g) for g in measured.searches}
    out = [Option(g, k, price, instance, True) for g, k in known.items() if g <= set(tenants)]
    if with_predictions:
        for group in subsets(tenants, min_size=2):
            if group not in known:
                k = predicted_scale(group, solo, known)
                out.append(Option(group, k, price, instance, False))
    return out


def measure(
    scenario: Scenario, settings: Settings, prober: Prober, price: float, instance: str, progress: Progress
) -> tuple[Measured, list[str], bool]:
    """Solo searches first, then the unmeasured groups of the best predicted packing, most promising first,
    until the best packing is made of measured groups only (or the probe budget is spent).

    Returns what was measured, the tenants that fit at no scale, and whether an interrupt stopped it."""
    measured = Measured()
    tenants = [t.name for t in scenario.tenants]
    try:
        for t in tenants:
            group = frozenset([t])
            progress.message(f"plan: measuring {t} alone")
            measured.predicted[group] = math.nan
            measured.searches[group] = prober.search(group, 1.0, settings, measured)
        feasible = [t for t in tenants if measured.scale(frozenset([t])) > 0]
        while measured.spent < settings.max_probes and len(feasible) > 1:
            best = solve(feasible, options(feasible, measured, price, instance, True), settings.headroom)
            pending = [g for g in best.groups if not g.option.measured] if best else []
            if not pending:
                break
            # Most promising first: the group whose packing saves the most over its tenants' own servers.
            group = max(pending, key=lambda g: _saving(g, measured, settings.headroom, price))
            tenants_of = frozenset(group.tenants)
            measured.predicted[tenants_of] = group.option.scale
            progress.message(
                f"plan: measuring {group_label(tenants_of)} (predicted {group.option.scale:.3g}x); best so far "
                + describe(solve(feasible, options(feasible, measured, price, instance, False), settings.headroom))
            )
            start = _start(group.option.scale)
            measured.searches[tenants_of] = prober.search(tenants_of, start, settings, measured)
    except Interrupted:
        return measured, _infeasible(measured, tenants), True
    return measured, _infeasible(measured, tenants), False


def _infeasible(measured: Measured, tenants: list[str]) -> list[str]:
    return [t for t in tenants if frozenset([t]) in measured.searches and measured.scale(frozenset([t])) <= 0]


def _saving(group, measured: Measured, headroom: float, price: float) -> float:
    from_solo = 0.0
    for t in group.tenants:
        k = measured.scale(frozenset([t]))
        replicas = replicas_needed(k, headroom)
        from_solo += replicas * price if replicas is not None else math.inf
    return from_solo - group.usd_per_hour


def describe(packing: Packing | None) -> str:
    if packing is None:
        return "none feasible yet"
    # Braces, not brackets: the display renders [..] as markup.
    groups = ", ".join(
        f"{{{group_label(g.tenants)}}}" + (f" x{g.replicas}" if g.replicas > 1 else "") for g in packing.groups
    )
    return f"{groups}: {packing.servers} servers, ${packing.usd_per_hour:.3g}/h"


# -- verifying ---------------------------------------------------------------------------------------------
def group_names(packing: Packing) -> list[str]:
    """A scenario name for each group: its tenants joined, made unique and short enough."""
    names, seen = [], set()
    for i, g in enumerate(packing.groups, 1):
        name = "-".join(g.tenants)[:56] or f"group{i}"
        if name in seen:
            name = f"{name[:52]}-g{i}"
        seen.add(name)
        names.append(name)
    return names


def planned_scenario(scenario: Scenario, packing: Packing) -> Scenario:
    """The scenario that reproduces the packing: its groups as [[deployments]], no baselines."""
    groups = [
        GroupSpec(name=name, tenants=list(g.tenants), replicas=g.replicas)
        for name, g in zip(group_names(packing), packing.groups, strict=True)
    ]
    run = scenario.run.model_copy(update={"baselines": False, "repeat": 1})
    return scenario.model_copy(update={"deployments": groups, "run": run})


def verify(
    scenario: Scenario, packing: Packing, run_dir: Path, run_one: Callable[[Scenario, Deployment], Status]
) -> tuple[dict[str, dict], bool]:
    """Run every group of the packing at the tenants' target rates (one replica each, carrying its share),
    long enough for a VALID verdict; returns each group's per-tenant rows and whether it was interrupted."""
    planned = planned_scenario(scenario, packing)
    out = {}
    for spec in planned.deployments:
        name = f"{VERIFY_PREFIX}{spec.name}"
        deployment = Deployment(name, tuple(spec.tenants), kind=DeploymentKind.GROUP, replicas=spec.replicas)
        one_replica = scenario_for(planned, deployment)
        partial = run_dir / name
        if partial.exists():
            shutil.rmtree(partial)
        status = run_one(probe_scenario(one_replica, 1.0, deployment.tenants), deployment)
        if status == Status.INTERRUPTED:
            return out, True
        rows = summary_of(run_dir, [name]).rows if status == Status.COMPLETED else None
        out[spec.name] = {r["tenant"]: r for r in rows.to_dict("records")} if rows is not None else {}
    return out, False


# -- the whole loop ----------------------------------------------------------------------------------------
def execute(ready: Prepared, settings: Settings, run_dir: Path, manifest: Manifest, progress: Progress) -> Outcome:
    scenario, price = ready.scenario, ready.price
    verification: dict[str, dict] = {}
    packing = None
    with Runner(run_dir, manifest, ready.use_gpu, progress) as runner:

        def run_one(sc: Scenario, dep: Deployment) -> Status:
            return runner.run(sc, dep, ready.repository)

        measured, infeasible, interrupted = measure(
            scenario, settings, Prober(scenario, run_dir, run_one), price.usd_per_hour, price.name, progress
        )
        feasible = [t.name for t in scenario.tenants if t.name not in infeasible]
        if feasible and frozenset([feasible[0]]) in measured.searches:
            packing = solve(
                feasible, options(feasible, measured, price.usd_per_hour, price.name, False), settings.headroom
            )
        if packing is not None and not interrupted:
            progress.message(f"plan: verifying {describe(packing)}")
            verification, interrupted = verify(scenario, packing, run_dir, run_one)
    # Probes that fail (an overloaded server, a model that crashes at high load) are measurements, not a
    # failure of the command: the plan's status is whether it ran to its end.
    manifest.close(Status.INTERRUPTED if interrupted else Status.COMPLETED)
    manifest.save(run_dir)
    return Outcome(
        manifest, measured, packing, tuple(infeasible), verification, interrupted, price.usd_per_hour, price.name
    )
