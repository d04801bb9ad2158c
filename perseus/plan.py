"""Scenario -> deployments: the shared server, then one solo baseline per tenant."""

from __future__ import annotations

from dataclasses import dataclass

from perseus.scenario import Scenario

SHARED = "shared"
SOLO_PREFIX = "solo-"
EMBEDDED_PREFIX = "embedded-"


@dataclass(frozen=True)
class Deployment:
    name: str
    tenants: tuple[str, ...]
    base: str | None = None  # for a repeated trial: the deployment it repeats
    trial: int = 1
    strategy: str = "external"  # external: through Triton; embedded: in the load generator's process


def plan(scenario: Scenario) -> list[Deployment]:
    """``shared`` first, then ``solo-<tenant>`` when baselines are on; then any repeated trials.

    With a single tenant, the shared deployment *is* its solo baseline, so no copy is run.
    Trials 2..N are named ``<deployment>-t<N>`` and interleaved (all deployments once, then again),
    so slow drift on the machine spreads over every deployment instead of biasing one.
    """
    names = tuple(t.name for t in scenario.tenants)
    first = [Deployment(SHARED, names)]
    if scenario.run.baselines and len(names) > 1:
        first += [Deployment(f"{SOLO_PREFIX}{n}", (n,)) for n in names]
    if "embedded" in scenario.run.strategies:
        first += [Deployment(f"{EMBEDDED_PREFIX}{n}", (n,), strategy="embedded") for n in names]
    if "external" not in scenario.run.strategies:
        first = [d for d in first if d.strategy != "external"]
    trials = [
        Deployment(f"{d.name}-t{k}", d.tenants, base=d.name, trial=k, strategy=d.strategy)
        for k in range(2, scenario.run.repeat + 1)
        for d in first
    ]
    return first + trials
