"""Cost per million inferences: instance $/h x measured time / completed requests."""

from __future__ import annotations

import math

SECONDS_PER_HOUR = 3600.0


def cost_usd(usd_per_hour: float, seconds: float, servers: int = 1) -> float:
    return usd_per_hour * servers * seconds / SECONDS_PER_HOUR


def per_million(total_usd: float, completed: int) -> float:
    return total_usd / completed * 1e6 if completed > 0 else math.nan


def savings(shared_per_million: float, solo_per_million: float) -> float:
    """Fraction saved by sharing: 1 - shared / solo (negative means sharing costs more)."""
    if not (solo_per_million > 0) or math.isnan(shared_per_million):
        return math.nan
    return 1.0 - shared_per_million / solo_per_million
