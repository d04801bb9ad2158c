"""Predicting a group's capacity from what is measured already (pure).

The model (docs/architecture.md, "perseus plan"): additive utilisation with measured slow-downs.
- Tenant t alone carries k_t x its target rate within its SLA, so at its target rate it uses
  u_t = 1 / k_t of a server.
- Tenants that share a server add their utilisations: at scale k a group uses k x sum(u_t), so the
  additive prediction of its capacity scale is 1 / sum(u_t).
- Co-located models slow each other down (they compete for the same cores, memory bandwidth, or GPU),
  so every measured group G' gives a factor f = measured k_G' / additive k_G'. A group's prediction is
  scaled by the smallest factor among the measured groups inside it (the worst interference seen
  among its tenants); with none measured inside it, it stays additive: an optimistic guess, which only
  decides what to measure next (a plan is built from measured groups alone).
- Capacity is monotone in the tenants: a group carries at least what a measured group holding it
  carries, and less than any group inside it failed at (those tenants alone had the server to
  themselves), so the prediction lies between the largest measured superset's scale and the smallest
  first-failing scale of a measured subset. (Not a subset's passing scale: capacity lies anywhere in
  [pass, fail), and the fleet sample has {alerts, catalog, forecast} carrying 2.6x where catalog alone
  passed 2x and failed 3x.)
This is the Perseus study's "linear baseline" corrected by what the run has seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence


def utilisation(solo_scale: float) -> float:
    """The share of a server one tenant uses at its target rate; inf when it fits at no scale."""
    return 1.0 / solo_scale if solo_scale > 0 else math.inf


def additive_scale(group: Iterable[str], solo: Mapping[str, float]) -> float:
    total = sum(utilisation(solo[t]) for t in group)
    return 1.0 / total if total > 0 and math.isfinite(total) else 0.0


def interference(group: frozenset[str], solo: Mapping[str, float], measured_scale: float) -> float:
    """measured / additive capacity of a measured group of two or more tenants (1: no interference)."""
    additive = additive_scale(group, solo)
    return measured_scale / additive if additive > 0 else math.nan


def predicted_scale(
    group: frozenset[str],
    solo: Mapping[str, float],
    measured: Mapping[frozenset[str], float],
    failed: Mapping[frozenset[str], float] | None = None,
) -> float:
    """The predicted capacity scale of ``group`` at its tenants' target rates. ``failed``: the first failing
    scale of measured groups (solo ones included) whose search found one."""
    if group in measured:
        return measured[group]
    inside = [interference(g, solo, k) for g, k in measured.items() if len(g) > 1 and g <= group]
    inside = [f for f in inside if math.isfinite(f)]
    floor = max((k for g, k in measured.items() if group <= g), default=0.0)
    ceiling = min((k for g, k in (failed or {}).items() if g <= group), default=math.inf)
    # Two noisy measurements may contradict each other (a superset carrying more than a subset): the
    # superset's measurement wins, because the plan only ever uses measured groups.
    return max(min(additive_scale(group, solo) * min(inside, default=1.0), ceiling), floor)


def subsets(tenants: Sequence[str], min_size: int = 1) -> Iterator[frozenset[str]]:
    """Every group of at least ``min_size`` of ``tenants`` (2^n - 1 of them with the default)."""
    for mask in range(1, 1 << len(tenants)):
        group = frozenset(t for i, t in enumerate(tenants) if mask >> i & 1)
        if len(group) >= min_size:
            yield group
