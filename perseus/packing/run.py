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
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, Manifest, Status
from perseus.packing.imported import Imported
from perseus.packing.predict import predicted_scale, subsets
from perseus.packing.probes import group_label, holds, probe_name
from perseus.packing.solve import Option, Packing, infeasible, solve
from perseus.packing.variants import Member, best_members, members, models_of, of_tenant, rank, tenants_of
from perseus.plan import Deployment, probe_scenario, scenario_for
from perseus.pricing.catalog import Price
from perseus.progress import Progress
from perseus.report import summary_of
from perseus.run import Runner, new_manifest, resume, save_inputs
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


@dataclass(frozen=True)
class Space:
    """What a plan chooses among: each tenant's model variants (members, packing/variants.py), served on the
    instance measured here or on the instances measured in --from folders."""

    tenants: tuple[str, ...]
    table: dict[str, Member]  # member label -> (tenant, model)
    instance: str  # measured here
    usd_per_hour: float
    imported: tuple[Imported, ...] = ()

    @classmethod
    def of(cls, scenario: Scenario, price: Price, imported: tuple[Imported, ...] = ()) -> Space:
        tenants = tuple(t.name for t in scenario.tenants)
        return cls(tenants, members(scenario), price.name, price.usd_per_hour, imported)


@dataclass
class Measured:
    """What the loop knows: every group's capacity search here (by its members), and the probes in order."""

    searches: dict[frozenset[str], Search] = field(default_factory=dict)
    predicted: dict[frozenset[str], float] = field(default_factory=dict)  # the prediction made before measuring
    probes: list[dict] = field(default_factory=list)  # one row per (probe, tenant)
    spent: int = 0  # probes run or replayed

    def scale(self, group: frozenset[str]) -> float:
        """The measured capacity scale (0 when the group fits at no scale tried)."""
        return self.searches[group].capacity or 0.0


def brackets(space: Space, measured: Measured) -> dict[tuple[str, frozenset[str]], Search]:
    """Every search a measured option comes from, by (source, members): source "" is here."""
    out = {("", g): s for g, s in measured.searches.items()}
    for imp in space.imported:
        out.update({(imp.source, g): s for g, s in imp.searches.items()})
    return out


@dataclass(frozen=True)
class Outcome:
    manifest: Manifest
    measured: Measured
    packing: Packing | None
    infeasible: tuple[str, ...]  # tenants that meet their SLA alone at no scale tried
    verification: dict[str, dict]  # group name -> {tenant: summary row}; none for a group imported (--from)
    interrupted: bool
    space: Space

    @property
    def verified(self) -> bool:
        """Every group of the plan ran here and every tenant was VALID within its SLA."""
        if self.packing is None:
            return False
        checked = [self.verification.get(name) for name in group_names(self.packing)]
        return all(group and all(bool(r["valid"]) and bool(r["sla_met"]) for r in group.values()) for group in checked)


# -- the folder --------------------------------------------------------------------------------------------
def open_dir(
    out: Path | None, ready: Prepared, settings: Settings, command: str, sources: list[str] | None = None
) -> tuple[Path, Manifest]:
    """A new plan folder, or an earlier one of the same plan (scenario, settings, --from folders, machine), to
    resume."""
    fresh = new_manifest(ready, [], command, kind=CommandKind.PLAN)
    fresh.plan = asdict(settings) | ({"from": list(sources)} if sources else {})
    if out is not None and Path(out).is_dir() and any(Path(out).iterdir()):

        def differs(manifest: Manifest) -> str | None:
            same = manifest.scenario.effective == fresh.scenario.effective and manifest.plan == fresh.plan
            return None if same else "a plan of another scenario, other settings or other --from folders"

        return Path(out), resume(Path(out), fresh, "plan", differs)
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
        self.table = members(scenario)

    def probe(self, group: frozenset[str], k: float, measured: Measured) -> bool:
        name = probe_name(group, k)
        committed = _probe_file(self.run_dir, name)
        # A committed probe is replayed from its file (resume); any other is run now.
        record = json.loads(committed.read_text(encoding="utf-8")) if committed.is_file() else self._run(group, k, name)
        measured.spent += 1
        measured.probes.extend({**row, "group": group_label(group)} for row in record["rows"])
        return bool(record["passed"])

    def _run(self, group: frozenset[str], k: float, name: str) -> dict:
        """Run the group's members (each tenant serving its chosen variant) at scale k; commit the probe."""
        tenants = tuple(sorted(tenants_of(group, self.table)))
        scaled = probe_scenario(self.scenario.with_models(models_of(group, self.table)), k, tenants)
        partial = self.run_dir / name
        if partial.exists():  # left by an interrupted attempt; a committed probe has its JSON
            shutil.rmtree(partial)
        deployment = Deployment(name, tenants, kind=DeploymentKind.PROBE, scale=k)
        status = self.run_one(scaled, deployment)
        if status == Status.INTERRUPTED:
            raise Interrupted
        rows = summary_of(self.run_dir, [name]).rows.to_dict("records") if status == Status.COMPLETED else []
        keep = ("deployment", "tenant", "model", "requests", "errors", "good", "throughput_rps", "p99_ms")
        keep += ("sla_latency_ms",)
        flags = ("sla_ms", "sla_met", "valid", "evidence_ok", "verdict")
        rows = [
            {
                **{c: results.json_value(r[c]) for c in (*keep, *flags)},
                "over_sla": int(r["requests"] - r["good"]),
                "scale": k,
            }
            for r in rows
        ]
        record = {"group": sorted(group), "scale": k, "status": str(status), "rows": rows}
        record["passed"] = bool(rows) and all(holds(r) for r in rows)
        (self.run_dir / PROBES).mkdir(exist_ok=True)
        results.write_json_atomic(_probe_file(self.run_dir, name), record)
        return record

    def search(self, group: frozenset[str], start: float, settings: Settings, measured: Measured) -> Search:
        budget = max(1, min(settings.probes_per_search, settings.max_probes - measured.spent))
        return find_capacity(
            lambda k: self.probe(group, k, measured), start=start, precision=settings.precision, max_probes=budget
        )


def _start(scale: float) -> float:
    """Where a search starts: the predicted scale, rounded to 2 significant digits so that a resumed
    plan replays the same probes (and the probe names stay short)."""
    if not (scale > 0 and math.isfinite(scale)):
        return 1.0
    return float(f"{scale:.2g}")


def options(space: Space, measured: Measured, tenants: list[str], with_predictions: bool) -> list[Option]:
    """Every group that may serve some of ``tenants``: the measured ones, here and imported (--from), and (to
    choose what to measure next) predictions for the groups not measured here. A prediction takes each tenant's
    variant with the best solo capacity (variants.best_members); only groups here can be measured."""
    allowed = set(tenants)
    out = []
    for (source, group), search in brackets(space, measured).items():
        who = tenants_of(group, space.table)
        if who <= allowed:
            imp = next((i for i in space.imported if i.source == source), None)
            price, instance = (imp.usd_per_hour, imp.instance) if imp else (space.usd_per_hour, space.instance)
            k, r = search.capacity or 0.0, rank(group, space.table)
            out.append(Option(who, k, price, instance, True, members=group, source=source, rank=r))
    if with_predictions:
        solo = {
            g_one: measured.scale(frozenset([g_one]))
            for g_one in space.table
            if frozenset([g_one]) in measured.searches
        }
        known = {g: measured.scale(g) for g in measured.searches}
        failed = {g: s.upper for g, s in measured.searches.items() if s.upper is not None}
        for who in subsets(tenants, min_size=2):
            group = best_members(sorted(who), space.table, solo)
            if group not in known:
                k = predicted_scale(group, solo, known, failed)
                r = rank(group, space.table)
                out.append(Option(who, k, space.usd_per_hour, space.instance, False, members=group, rank=r))
    return out


def measure(
    scenario: Scenario, settings: Settings, prober: Prober, space: Space, progress: Progress
) -> tuple[Measured, list[str], bool]:
    """Solo searches first (each variant of each tenant), then the unmeasured groups of the best predicted
    packing, most promising first, until the best packing is made of measured groups only (or the probe budget
    is spent).

    Returns what was measured, the tenants that fit nowhere (here or in an imported folder), and whether an
    interrupt stopped it."""
    measured = Measured()
    tenants = list(space.tenants)
    try:
        for m in space.table:
            group = frozenset([m])
            progress.message(f"plan: measuring {m} alone")
            measured.predicted[group] = math.nan
            measured.searches[group] = prober.search(group, 1.0, settings, measured)
        feasible = [t for t in tenants if t not in _infeasible(space, measured, settings.headroom)]
        while measured.spent < settings.max_probes and len(feasible) > 1:
            best = solve(feasible, options(space, measured, feasible, True), settings.headroom)
            pending = [g for g in best.groups if not g.option.measured] if best else []
            if not pending:
                break
            # Most promising first: the group whose packing saves the most over its tenants' own servers.
            alone = options(space, measured, feasible, False)
            group = max(pending, key=lambda g: _saving(g, alone, settings.headroom))
            members_of = group.option.members
            measured.predicted[members_of] = group.option.scale
            progress.message(
                f"plan: measuring {group_label(members_of)} (predicted {group.option.scale:.3g}x); best so far "
                + describe(solve(feasible, alone, settings.headroom))
            )
            start = _start(group.option.scale)
            measured.searches[members_of] = prober.search(members_of, start, settings, measured)
    except Interrupted:
        return measured, _infeasible(space, measured, settings.headroom), True
    return measured, _infeasible(space, measured, settings.headroom), False


def _infeasible(space: Space, measured: Measured, headroom: float) -> list[str]:
    """Tenants searched alone here (every variant) that no measured group, here or imported, can serve."""
    searched = [t for t in space.tenants if all(frozenset([m]) in measured.searches for m in of_tenant(t, space.table))]
    nowhere = infeasible(list(space.tenants), options(space, measured, list(space.tenants), False), headroom)
    return [t for t in nowhere if t in searched]


def _saving(group, measured_options: list[Option], headroom: float) -> float:
    """$/h saved by serving the group together rather than each tenant on its cheapest measured own servers."""
    from_solo = 0.0
    for t in group.tenants:
        alone = solve([t], [o for o in measured_options if o.tenants == {t}], headroom)
        from_solo += alone.usd_per_hour if alone is not None else math.inf
    return from_solo - group.usd_per_hour


def describe(packing: Packing | None) -> str:
    if packing is None:
        return "none feasible yet"
    # Braces, not brackets: the display renders [..] as markup.
    groups = ", ".join(
        f"{{{group_label(g.option.members)}}}"
        + (f" on {g.option.instance}" if g.option.source else "")
        + (f" x{g.replicas}" if g.replicas > 1 else "")
        for g in packing.groups
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


def planned_scenario(scenario: Scenario, packing: Packing, here: str) -> Scenario:
    """The scenario that reproduces the packing: its groups as [[deployments]] (a group measured on another
    instance type than ``here`` priced as that one), each tenant serving its chosen variant, no baselines."""
    groups = [
        GroupSpec(
            name=name,
            tenants=list(g.tenants),
            replicas=g.replicas,
            instance=None if g.option.instance in ("", here) else g.option.instance,
        )
        for name, g in zip(group_names(packing), packing.groups, strict=True)
    ]
    run = scenario.run.model_copy(update={"baselines": False, "repeat": 1})
    table = members(scenario)
    chosen = {t: m for g in packing.groups for t, m in models_of(g.option.members, table).items()}
    return scenario.with_models(chosen).model_copy(update={"deployments": groups, "run": run})


def verify(
    scenario: Scenario,
    packing: Packing,
    here: str,
    run_dir: Path,
    run_one: Callable[[Scenario, Deployment], Status],
) -> tuple[dict[str, dict], bool]:
    """Run every group measured here at the tenants' target rates (one replica each, carrying its share), long
    enough for a VALID verdict; returns each group's per-tenant rows and whether it was interrupted. A group
    measured in a --from folder cannot run on this machine: it has no rows, so it is not verified here."""
    planned = planned_scenario(scenario, packing, here)
    out = {}
    for spec, g in zip(planned.deployments, packing.groups, strict=True):
        if g.option.source:
            continue
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
def execute(
    ready: Prepared, settings: Settings, run_dir: Path, manifest: Manifest, progress: Progress, imported=()
) -> Outcome:
    scenario = ready.scenario
    space = Space.of(scenario, ready.price, tuple(imported))
    verification: dict[str, dict] = {}
    packing = None
    with Runner(run_dir, manifest, ready.use_gpu, progress) as runner:

        def run_one(sc: Scenario, dep: Deployment) -> Status:
            return runner.run(sc, dep, ready.repository)

        measured, unservable, interrupted = measure(
            scenario, settings, Prober(scenario, run_dir, run_one), space, progress
        )
        feasible = [t for t in space.tenants if t not in unservable]
        chosen = options(space, measured, feasible, False)
        if feasible and chosen:
            packing = solve(feasible, chosen, settings.headroom)
        if packing is not None and not interrupted:
            progress.message(f"plan: verifying {describe(packing)}")
            verification, interrupted = verify(scenario, packing, space.instance, run_dir, run_one)
    # Probes that fail (an overloaded server, a model that crashes at high load) are measurements, not a
    # failure of the command: the plan's status is whether it ran to its end.
    manifest.close(Status.INTERRUPTED if interrupted else Status.COMPLETED)
    manifest.save(run_dir)
    return Outcome(manifest, measured, packing, tuple(unservable), verification, interrupted, space)
