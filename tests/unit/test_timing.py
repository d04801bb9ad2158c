"""The arrival waiters on the gevent loop: never early, never blocking the loop (perseus/load/timing.py).

How late they wake is a benchmark (benchmarks/dispatch.py), not a test."""

from __future__ import annotations

import os
import sys
import time

import gevent
import pytest

from perseus.load import timing

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")


def _waiters():
    return [timing.SpinWait, pytest.param(timing.TimerFdWait, marks=linux_only)]


@pytest.mark.parametrize("waiter_class", _waiters())
def test_never_returns_before_the_arrival_and_the_loop_runs_meanwhile(waiter_class):
    origin = time.perf_counter()
    waiter = waiter_class(origin)
    ticks = []

    def other():  # another greenlet (a request in flight) must keep running during the wait
        for _ in range(5):
            ticks.append(time.perf_counter() - origin)
            gevent.sleep(0.002)

    g = gevent.spawn(other)
    try:
        for t in (0.005, 0.0051, 0.02, 0.0205):  # two close arrivals: the fd re-arms after each expiry
            waiter.wait_until(t)
            assert time.perf_counter() - origin >= t
    finally:
        waiter.close()
        g.join()
    assert len(ticks) == 5 and ticks[1] < 0.02  # it ran while the waiter waited for 0.02 s


@pytest.mark.parametrize("waiter_class", _waiters())
def test_an_arrival_already_due_returns_at_once(waiter_class):
    origin = time.perf_counter() - 10.0
    waiter = waiter_class(origin)
    started = time.perf_counter()
    waiter.wait_until(5.0)  # due 5 s ago (a dispatcher that fell behind catches up without waiting)
    waiter.close()
    assert time.perf_counter() - started < 0.5


@linux_only
def test_the_engine_waits_on_a_timerfd_on_linux_and_closes_it():
    waiter = timing.deadline_waiter(time.perf_counter())
    assert isinstance(waiter, timing.TimerFdWait)
    fd = waiter._fd
    os.fstat(fd)
    waiter.close()
    with pytest.raises(OSError):
        os.fstat(fd)
