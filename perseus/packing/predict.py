"""Predicting a group's capacity from what is measured already (pure).

The model (docs/architecture.md, "perseus plan"): additive utilisation with measured slow-downs.
- Tenant t alone carries k_t x its target rate within its SLA, so at its target rate it uses
  u_t = 1 / k_t of a server.
- Tenants that share a server add their utilisations: at scale k a group uses k x sum(u_t), so the
  additive prediction of its capacity scale is 1 / sum(u_t).
- Co-located models slow each other down (they compete for the same cores, memory bandwidth, or GPU),
  so every measured group G' gives a factor f = measured k_G' / additive k_G'. A group's prediction is
  scaled by the smallest factor among the measured groups inside it (the worst interference seen
  among its tenants); with none measured inside it, by the median factor measured so far, or 1.
This is the Perseus study's "linear baseline" corrected by what the run has seen.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping


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
    group: frozenset[str], solo: Mapping[str, float], measured: Mapping[frozenset[str], float]
) -> float:
    """The predicted capacity scale of ``group`` at its tenants' target rates."""
    if group in measured:
        return measured[group]
    factors = {g: interference(g, solo, k) for g, k in measured.items() if len(g) > 1}
    factors = {g: f for g, f in factors.items() if math.isfinite(f)}
    inside = [f for g, f in factors.items() if g <= group]
    factor = min(inside) if inside else (statistics.median(factors.values()) if factors else 1.0)
    return additive_scale(group, solo) * factor
