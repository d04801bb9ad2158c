"""Scenario -> deployments: the shared server, then one solo baseline per tenant."""

from __future__ import annotations

from dataclasses import dataclass

from perseus.scenario import Scenario

SHARED = "shared"
SOLO_PREFIX = "solo-"


@dataclass(frozen=True)
class Deployment:
    name: str
    tenants: tuple[str, ...]


def plan(scenario: Scenario) -> list[Deployment]:
    """``shared`` first, then ``solo-<tenant>`` when baselines are on.

    With a single tenant, the shared deployment *is* its solo baseline, so no copy is run.
    """
    names = tuple(t.name for t in scenario.tenants)
    deployments = [Deployment(SHARED, names)]
    if scenario.run.baselines and len(names) > 1:
        deployments += [Deployment(f"{SOLO_PREFIX}{n}", (n,)) for n in names]
    return deployments
