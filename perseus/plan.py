"""Scenario -> deployments: the shared server, then one solo baseline per tenant (or the scenario's groups).

A deployment's kind is decided here, where it is made, and recorded in the manifest; nothing
downstream parses it back out of the name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from perseus.analysis.validity import CONFIDENCE
from perseus.kinds import DeploymentKind
from perseus.scenario import Scenario

SHARED = "shared"
SOLO_PREFIX = "solo-"
EMBEDDED_PREFIX = "embedded-"
SERVER_SEPARATOR = "@"  # [run] servers: `<deployment>@<kind>`


@dataclass(frozen=True)
class Deployment:
    name: str
    tenants: tuple[str, ...]
    base: str | None = None  # for a repeated trial: the deployment it repeats
    trial: int = 1
    strategy: str = "external"  # external: through Triton; embedded: in the load generator's process
    kind: DeploymentKind = DeploymentKind.SHARED
    replicas: int = 1  # measured as one replica carrying each tenant's rate / replicas
    instance: str | None = None  # priced as this instance type (None: the scenario's [pricing] instance)
    scale: float | None = None  # a capacity probe's load scale
    server: str | None = None  # [run] servers: the serving framework it runs on (None: server.kind)
    layout: str | None = None  # [run] servers: the deployment it is on that framework (`shared` of `shared@bentoml`)


def shared(scenario: Scenario) -> Deployment:
    return Deployment(SHARED, tuple(t.name for t in scenario.tenants), kind=DeploymentKind.SHARED)


def solo(tenant: str) -> Deployment:
    return Deployment(f"{SOLO_PREFIX}{tenant}", (tenant,), kind=DeploymentKind.SOLO)


def embedded(tenant: str) -> Deployment:
    return Deployment(f"{EMBEDDED_PREFIX}{tenant}", (tenant,), strategy="embedded", kind=DeploymentKind.EMBEDDED)


def group(scenario: Scenario, name: str) -> Deployment:
    spec = scenario.group(name)
    return Deployment(
        spec.name, tuple(spec.tenants), kind=DeploymentKind.GROUP, replicas=spec.replicas, instance=spec.instance
    )


def scenario_for(scenario: Scenario, deployment: Deployment) -> Scenario:
    """The scenario one deployment runs: a replicated group's replica carries each rate / replicas; a
    deployment of a framework comparison runs on its own kind."""
    if deployment.server is not None:
        scenario = scenario.on(deployment.server)
    return scenario if deployment.replicas == 1 else scenario.scaled(1 / deployment.replicas)


def plan(scenario: Scenario) -> list[Deployment]:
    """The scenario's ``[[deployments]]`` groups, if any; then ``shared`` and ``solo-<tenant>`` (without groups,
    ``shared`` always, the solos when baselines are on; with groups, both only when baselines are on);
    then, with ``[run] servers``, each external one once per kind as ``<deployment>@<kind>``; then any
    repeated trials.

    With a single tenant, the shared deployment *is* its solo baseline, so no copy is run.
    Trials 2..N are named ``<deployment>-t<N>`` and interleaved (all deployments once, then again),
    so slow drift on the machine spreads over every deployment instead of biasing one.
    """
    names = tuple(t.name for t in scenario.tenants)
    groups = [group(scenario, g.name) for g in scenario.deployments]
    first = groups + ([shared(scenario)] if scenario.run.baselines or not groups else [])
    if scenario.run.baselines and len(names) > 1:
        first += [solo(n) for n in names]
    if "embedded" in scenario.run.strategies:
        first += [embedded(n) for n in names]
    if "external" not in scenario.run.strategies:
        first = [d for d in first if d.strategy != "external"]
    first = on_each_server(scenario, first)
    trials = [
        replace(d, name=f"{d.name}-t{k}", base=d.name, trial=k)
        for k in range(2, scenario.run.repeat + 1)
        for d in first
    ]
    return first + trials


def on_each_server(scenario: Scenario, deployments: list[Deployment]) -> list[Deployment]:
    """With ``[run] servers``, each deployment on a server once per kind, as ``<deployment>@<kind>``;
    without, the deployments as they are.

    Interleaved like trials (each deployment on every kind in turn), so drift spreads over the kinds.
    Embedded deployments have no server: they stay once, under their own name.
    """
    if not scenario.run.servers:
        return list(deployments)
    return [
        replace(d, name=f"{d.name}{SERVER_SEPARATOR}{kind}", server=kind, layout=d.name)
        if d.strategy == "external"
        else d
        for d in deployments
        for kind in (scenario.run.servers if d.strategy == "external" else [None])
    ]


# A probe lengthens itself (up to this many times the scenario's duration) so that even at a low
# scale it can gather the requests validity needs; otherwise low-load probes would fail for lack
# of evidence, and bracketing downwards would never find a passing scale.
MAX_STRETCH = 8.0
EVIDENCE_MARGIN = 1.2


def probe_scenario(scenario: Scenario, k: float, tenants: tuple[str, ...]) -> Scenario:
    """The scenario with rates x k and a measured duration long enough for a VALID verdict."""
    scaled = scenario.scaled(k)
    run = scaled.run
    need = run.duration_s
    for name in tenants:
        tenant = scaled.tenant(name)
        rate = tenant.load.mean_rate()
        # With none over the SLA, early stopping needs n >= ln(1 - confidence) / ln(percentile).
        evidence = math.log(1 - CONFIDENCE) / math.log(tenant.sla_percentile / 100)
        count = max(run.min_requests, math.ceil(evidence)) * EVIDENCE_MARGIN
        need = max(need, run.min_duration_s, count / rate)
    duration = min(need, run.duration_s * MAX_STRETCH)
    return scaled.model_copy(update={"run": run.model_copy(update={"duration_s": duration})})
