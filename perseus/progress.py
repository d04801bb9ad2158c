"""How the core reports progress: a small protocol that the command layer implements.

The core (run, session, experiment) calls these methods and never knows how they are drawn; the
commands pass ``perseus.display.RunDisplay`` (a live table on stderr) or ``Quiet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Progress(Protocol):
    """What the core tells the screen: one-off messages, and the live state of a deployment."""

    def message(self, text: str) -> None: ...

    def position(self, index: int) -> str:
        """How the index-th deployment is named in messages ("3/5")."""
        ...

    def update(
        self, index: int, deployment: str, phase: str, now_s: float, duration_s: float, loads: Sequence[Any]
    ) -> None:
        """``now_s`` seconds into ``phase``, which lasts ``duration_s`` ("warm-up": the warm-up's length;
        "measuring" and "draining": the measured duration). ``loads``: the tenants' live counters
        (``perseus.load.engine.TenantLoad``)."""
        ...


class Quiet:
    """Progress that goes nowhere (tests, library use)."""

    def message(self, text: str) -> None:
        pass

    def position(self, index: int) -> str:
        return str(index)

    def update(self, *args, **kwargs) -> None:
        pass


def phase_of(now_s: float, duration_s: float) -> str:
    return "warm-up" if now_s < 0 else ("measuring" if now_s < duration_s else "draining")


def phase_clock(now_s: float, warmup_s: float, duration_s: float) -> tuple[str, float, float]:
    """(phase, seconds into it, its length) for the display. The warm-up runs from ``-warmup_s`` to 0 on the
    measurement's clock, so it reads "warm-up 0.4/1 s", not "0.0/3 s" (the measured duration); the drain
    after the measurement has no fixed length and keeps the measurement's clock ("draining 3.2/3 s")."""
    phase = phase_of(now_s, duration_s)
    if phase == "warm-up":
        return phase, max(0.0, warmup_s + now_s), warmup_s
    return phase, now_s, duration_s
