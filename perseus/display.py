"""The progress display, on stderr so stdout's last line stays the run folder: a live table (rich) on a
terminal; off one (CI, nohup, a pipe), a plain line per deployment at each phase and every 10 s.

It implements ``perseus.progress.Progress``; the commands create it and hand it to the core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.table import Table

console = Console(stderr=True)
# Off a terminal (CI, nohup, a pipe) a live table cannot be redrawn: one plain line this often instead.
PLAIN_PERIOD_S = 10.0


class RunDisplay:
    """Redrawn by the experiment's tick; no refresh thread (the load generator runs under gevent)."""

    def __init__(self, total_deployments: int, out: Console = console, clock: Callable[[], float] = time.monotonic):
        self.total = total_deployments
        self.console = out
        self.clock = clock
        self._live: Live | None = None
        self._plain_due: dict[int, float] = {}  # deployment index -> when its next plain line is due
        self._plain_phase: dict[int, str] = {}  # deployment index -> the phase of its last plain line

    def __enter__(self) -> RunDisplay:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    @staticmethod
    def say(text: str) -> None:
        """One line on stderr, outside any live table (e.g. "building model ...")."""
        console.print(text)

    def position(self, index: int) -> str:
        """ "3/5", or just "3" when the number of deployments is not known in advance (searches)."""
        return f"{index}/{self.total}" if self.total else str(index)

    def message(self, text: str) -> None:
        self.console.print(text)

    def update(self, index: int, deployment: str, phase: str, now_s: float, duration_s: float, loads) -> None:
        if not self.console.is_terminal:
            self._plain(index, deployment, phase, now_s, duration_s, loads)
            return
        if self._live is None:
            return
        table = Table(
            title=f"[{self.position(index)}] {deployment}: {phase}  {max(now_s, 0):5.1f}/{duration_s:g} s",
            title_justify="left",
        )
        for col in ("tenant", "model", "load", "sent", "done", "errors", "rate/s"):
            table.add_column(col, justify="left" if col in ("tenant", "model", "load") else "right")
        for load in loads:
            target = load.arrival if load.open_loop else f"closed x{load.concurrency}"
            rate = load.measured_done / now_s if now_s > 0.5 else 0.0
            errors = f"[red]{load.errors}[/]" if load.errors else "0"
            table.add_row(load.tenant, load.model, target, str(load.sent), str(load.done), errors, f"{rate:.1f}")
        self._live.update(table, refresh=True)

    def _plain(self, index: int, deployment: str, phase: str, now_s: float, duration_s: float, loads) -> None:
        """A line when a deployment enters a phase (warm-up, measuring, draining), then one every
        ``PLAIN_PERIOD_S`` (not one per tick)."""
        now = self.clock()
        if now < self._plain_due.get(index, float("-inf")) and self._plain_phase.get(index) == phase:
            return
        self._plain_due[index], self._plain_phase[index] = now + PLAIN_PERIOD_S, phase
        sent, done, errors = (sum(getattr(load, k) for load in loads) for k in ("sent", "done", "errors"))
        self.console.print(
            f"[{self.position(index)}] {deployment}: {phase} {max(now_s, 0):.1f}/{duration_s:g} s, "
            f"sent {sent}, done {done}, errors {errors}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
