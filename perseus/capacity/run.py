"""The capacity pipeline: solo and shared capacity searches, then pairwise interference at the scenario's load."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perseus import results
from perseus.analysis.bracket import DEFAULT_PRECISION, MAX_PROBES, Searched, find_capacity
from perseus.checks import Prepared
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, Manifest, Status
from perseus.plan import SHARED, SOLO_PREFIX, Deployment, probe_scenario
from perseus.progress import Progress
from perseus.report import summary_of
from perseus.run import Runner, new_manifest, save_inputs
from perseus.scenario import Scenario

CAPACITY_CSV = results.CAPACITY_CSV
PROBES_CSV = "probes.csv"
INTERFERENCE_CSV = "interference.csv"
INTERFERENCE_PARTS_CSV = "interference_parts.csv"  # traced runs: each pair's slow-down by cause
CAPACITY_MD = "capacity.md"


@dataclass(frozen=True)
class Settings:
    precision: float = DEFAULT_PRECISION
    max_probes: int = MAX_PROBES
    interference: bool = True


@dataclass
class Outcome:
    searches: dict[str, Searched] = field(default_factory=dict)
    probes: list[dict] = field(default_factory=list)  # one row per (probe, tenant)
    pair_p99: dict[tuple[str, str], float] = field(default_factory=dict)
    solo_p99: dict[str, float] = field(default_factory=dict)
    # The deployments behind those p99s, for the traced breakdown of each slow-down.
    solo_deployments: dict[str, str] = field(default_factory=dict)
    pair_deployments: dict[tuple[str, str], str] = field(default_factory=dict)


class Interrupted(Exception):
    """A probe was interrupted: stop searching, keep what was measured."""


def probe_name(prefix: str, k: float) -> str:
    return f"{prefix}-x{k:.3f}"


def measure(run_dir: Path, deployment: Deployment, status: Status, k: float) -> list[dict]:
    """The probe's per-tenant rows (valid, p99, ...) from its own folder; a failed probe has none."""
    if status != Status.COMPLETED:
        return []
    rows = summary_of(run_dir, [deployment.name]).rows.assign(scale=k)
    return rows.to_dict("records")


def execute(
    ready: Prepared, settings: Settings, run_dir: Path, command: str, progress: Progress
) -> tuple[Manifest, Outcome]:
    """Every capacity search, then the interference pairs, into ``run_dir``; returns the manifest and outcome."""
    manifest = new_manifest(ready, [], command, kind=CommandKind.CAPACITY)
    save_inputs(run_dir, ready.file, manifest)
    with Runner(run_dir, manifest, ready.use_gpu, progress) as runner:
        outcome = search_all(ready.scenario, settings, lambda sc, dep: runner.run(sc, dep, ready.repository), run_dir)
    return manifest, outcome


def search_all(
    scenario: Scenario, settings: Settings, run_one: Callable[[Scenario, Deployment], Status], run_dir: Path
) -> Outcome:
    """``run_one(scenario, deployment)`` runs one probe deployment and returns its status."""
    out = Outcome()
    names = [t.name for t in scenario.tenants]

    def prober(prefix: str, tenants: tuple[str, ...], kind: DeploymentKind):
        def probe(k: float) -> bool:
            scaled = probe_scenario(scenario, k, tenants)
            deployment = Deployment(probe_name(prefix, k), tenants, kind=DeploymentKind.PROBE, scale=k)
            status = run_one(scaled, deployment)
            if status == Status.INTERRUPTED:
                raise Interrupted
            rows = measure(run_dir, deployment, status, k)
            out.probes.extend({**r, "search": prefix} for r in rows)
            if k == 1.0 and kind == DeploymentKind.SOLO and rows:
                out.solo_p99[rows[0]["tenant"]] = rows[0]["p99_ms"]
                out.solo_deployments[rows[0]["tenant"]] = deployment.name
            return bool(rows) and all(r["valid"] for r in rows)

        return probe

    plan = [(f"{SOLO_PREFIX}{n}", (n,), DeploymentKind.SOLO) for n in names] if len(names) > 1 else []
    plan.append((SHARED, tuple(names), DeploymentKind.SHARED))
    try:
        for prefix, tenants, kind in plan:
            search = find_capacity(
                prober(prefix, tenants, kind), precision=settings.precision, max_probes=settings.max_probes
            )
            out.searches[prefix] = Searched(tenants, kind, search)
        if settings.interference and len(names) > 1:
            for a, b in itertools.combinations(names, 2):
                deployment = Deployment(f"pair-{a}-{b}", (a, b), kind=DeploymentKind.GROUP)
                status = run_one(scenario, deployment)
                if status == Status.INTERRUPTED:
                    raise Interrupted
                out.pair_deployments[(a, b)] = deployment.name
                for row in measure(run_dir, deployment, status, 1.0):
                    other = b if row["tenant"] == a else a
                    out.pair_p99[(row["tenant"], other)] = row["p99_ms"]
    except Interrupted:
        pass
    return out


def probes_table(out: Outcome) -> pd.DataFrame:
    cols = ["search", "deployment", "tenant", "scale", "requests", "errors", "throughput_rps", "p99_ms"]
    cols += ["sla_ms", "sla_percentile", "sla_latency_ms", "sla_met", "valid", "verdict"]
    return pd.DataFrame(out.probes, columns=cols)
