"""The arrival waiters on the gevent loop: never early, never blocking the loop (perseus/load/timing.py).

How late they wake is a benchmark (benchmarks/dispatch.py), not a test."""

from __future__ import annotations

import os
import sys
import time

import gevent
import numpy as np
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


def test_a_sender_never_sends_before_its_arrival_and_the_loop_runs_meanwhile():
    origin = time.perf_counter()
    head = timing.HeadStart(initial_s=0.05)  # longer than the engine's, to be early even on a busy host
    turns = []
    done = False

    def now() -> float:
        return time.perf_counter() - origin

    def other():  # a response being read while the sender waits out its head start
        while not done:
            turns.append(now())
            gevent.sleep(0)

    waiter = timing.deadline_waiter(origin)
    waiter.wait_until(head.wake_at(0.1))
    woke = now()
    g = gevent.spawn(other)
    try:
        assert woke < 0.1  # woken early ...
        head.until_due(0.1, now)
        assert now() >= 0.1  # ... but sent only once due
    finally:
        done = True
        waiter.close()
        g.join()
    assert any(woke < t < 0.1 for t in turns)  # the other greenlet ran during the head start
    assert head.s < 0.05  # it was early: shorter next time


def test_the_head_start_settles_on_the_hand_offs_median():
    """Frugal-1U on a fake clock: the hand-off (wake-up to sender) drawn lognormal around 0.2 ms."""
    rng = np.random.default_rng(3)
    hand_offs = rng.lognormal(np.log(0.0002), 0.4, size=4000)
    head = timing.HeadStart()
    late = []
    for i, hand_off in enumerate(hand_offs):
        ahead = head.s - hand_off  # woken s early, the sender arrives hand_off later
        if i >= 2000:
            late.append(ahead <= 0)
        head.note(ahead)
    assert head.s == pytest.approx(0.0002, abs=0.00003)
    assert 0.45 < np.mean(late) < 0.55  # half the requests on time, half late


def test_the_head_start_steps_down_when_early_up_when_late_and_stays_within_its_bounds():
    head = timing.HeadStart(initial_s=0.0002)
    head.note(0.00001)  # 10 us early
    assert head.s == pytest.approx(0.0002 - timing.HEAD_START_STEP_S)
    head.note(-0.00001)  # 10 us late
    head.note(0.0)  # exactly due counts as late: it was not early
    assert head.s == pytest.approx(0.0002 + timing.HEAD_START_STEP_S)
    for _ in range(1000):
        head.note(-0.01)  # a saturated loop: every sender 10 ms late
    assert head.s == timing.MAX_HEAD_START_S
    for _ in range(1000):
        head.note(0.01)  # every sender early
    assert head.s == 0.0
