"""Load shapes over time (pure, standard library only): the scenario imports this at start-up, so it must
not pull in pandas or numpy."""

from __future__ import annotations


def ramp_levels(rate: float, step: float, hold_s: float, duration_s: float) -> list[tuple[float, float, float]]:
    """A ramp's (start, end, rate) levels over the measured window: ``rate``, then ``+step`` every ``hold_s``.

    The one definition of a ramp's shape: the scenario's schedules and this analysis both use it.
    """
    levels, t = [], 0.0
    while t < duration_s:
        levels.append((t, min(t + hold_s, duration_s), rate))
        t, rate = t + hold_s, rate + step
    return levels
