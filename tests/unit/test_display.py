"""The progress display: a live table on a terminal, a plain line every 10 s off one, honest phase clocks."""

from __future__ import annotations

import io

from rich.console import Console

from perseus.display import PLAIN_PERIOD_S, RunDisplay
from perseus.progress import phase_clock


class Load:
    tenant, model, arrival, open_loop = "a", "m", "poisson", True
    sent, done, errors, measured_done, concurrency = 7, 5, 1, 5, 0


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_off_a_terminal_a_plain_line_at_each_phase_and_every_ten_seconds():
    out, clock = io.StringIO(), Clock()
    with RunDisplay(2, Console(file=out, force_terminal=False, width=100), clock=clock) as display:
        for step in range(30):  # 3 s of ticks every 0.1 s: one line
            clock.t = 100.0 + step * 0.1
            display.update(1, "shared", "measuring", step * 0.1, 30.0, [Load(), Load()])
        clock.t = 100.0 + PLAIN_PERIOD_S
        display.update(1, "shared", "measuring", 10.0, 30.0, [Load(), Load()])
        clock.t += 1.0
        display.update(1, "shared", "draining", 30.5, 30.0, [Load(), Load()])  # a new phase: at once
        display.update(2, "solo-a", "warm-up", 0.5, 1.0, [Load()])  # a new deployment: at once
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/2] shared: measuring 0.0/30 s, sent 14, done 10, errors 2",
        "[1/2] shared: measuring 10.0/30 s, sent 14, done 10, errors 2",
        "[1/2] shared: draining 30.5/30 s, sent 14, done 10, errors 2",
        "[2/2] solo-a: warm-up 0.5/1 s, sent 7, done 5, errors 1",
    ]
    assert out.getvalue().endswith("\n")  # `tail -1` of a merged log is then the run folder


def test_on_a_terminal_a_live_table():
    out = io.StringIO()
    with RunDisplay(1, Console(file=out, force_terminal=True, width=100, color_system=None)) as display:
        display.update(1, "shared", "measuring", 1.0, 2.0, [Load()])
    text = out.getvalue()
    assert "[1/1] shared: measuring    1.0/2 s" in text and "rate/s" in text


def test_the_warm_up_counts_against_its_own_length():
    # --warmup 1 --duration 3: the warm-up is from -1 s to 0 on the measurement's clock.
    assert phase_clock(-0.6, 1.0, 3.0) == ("warm-up", 0.4, 1.0)
    assert phase_clock(-1.2, 1.0, 3.0) == ("warm-up", 0.0, 1.0)  # the users' spawning lead
    assert phase_clock(2.0, 1.0, 3.0) == ("measuring", 2.0, 3.0)
    assert phase_clock(3.5, 1.0, 3.0) == ("draining", 3.5, 3.0)
