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
