"""Waiting for an arrival's scheduled time on the gevent loop: exact, without burning CPU between arrivals.

gevent's own timers wake up to about 1 ms late: libev's epoll backend waits in whole milliseconds
(``epoll_wait`` takes its timeout in ms, and libev rounds up), so an arrival timed with
``gevent.sleep`` is sent late by up to a millisecond, and that lag is charged to latency. The engine
used to sleep until 1.5 ms before each arrival and then yield in a tight loop until it was due
(``SpinWait``): exact, but it held a core for 1.5 ms per arrival (about 5% of a core at 40 req/s).

``TimerFdWait`` instead arms a Linux timerfd at the arrival's absolute CLOCK_MONOTONIC time
(``TFD_TIMER_ABSTIME``; ``time.perf_counter`` reads the same clock) and waits for the fd on the
loop. The kernel's high-resolution timer makes the fd readable at the deadline, which ends the
loop's ``epoll_wait`` within microseconds, whatever libev's own timer rounding. No thread and no GIL
hand-over are involved, and nothing runs between arrivals. Measured against the spin, gevent's timer
alone, the timerfd with a short spin, and a native timer thread that wakes the loop through an async
watcher (benchmarks/dispatch.py, docs/benchmarks.md "Dispatch without a spin"): see ``deadline_waiter``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from collections.abc import Callable

import gevent
import gevent.hub

# The spin's lead: sleep until this long before an arrival, then yield until it is due. gevent's
# timers wake up to ~1 ms late, so 1.5 ms covers them (measured by the engine's author: lag p50
# 0.8 ms -> 0.002 ms). Used only where there is no timerfd (not Linux).
SPIN_S = 0.0015

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_READ = 1  # libev's EV_READ


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
        lib.timerfd_settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        return lib
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


class SpinWait:
    """Sleep on gevent's timer until ``SPIN_S`` before the arrival, then yield in a loop until it is due."""

    def __init__(self, origin: float):
        self.origin = origin  # perf_counter() at the measurement start: arrival times count from it

    def wait_until(self, t: float) -> None:
        """Return once ``time.perf_counter() - origin >= t``; other greenlets run meanwhile."""
        delay = t - (time.perf_counter() - self.origin) - SPIN_S
        if delay > 0:
            gevent.sleep(delay)
        while time.perf_counter() - self.origin < t:
            gevent.sleep(0)

    def close(self) -> None:
        pass


class TimerFdWait:
    """A timerfd armed at each arrival's absolute time, waited for by the gevent loop (one per dispatcher)."""

    def __init__(self, origin: float):
        self.origin = origin
        self._fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._spec = _Itimerspec()  # it_interval stays 0: one shot per arming
        self._spec_ref = ctypes.byref(self._spec)
        self._hub = gevent.hub.get_hub()
        self._watcher = self._hub.loop.io(self._fd, _READ)

    def wait_until(self, t: float) -> None:
        """Return once ``time.perf_counter() - origin >= t``; other greenlets run meanwhile."""
        origin = self.origin
        if time.perf_counter() - origin >= t:
            return
        ns = int((origin + t) * 1e9)
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = divmod(ns, 1_000_000_000)
        if _LIBC.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._hub.wait(self._watcher)
        try:  # noqa: SIM105 - once per arrival: cheaper than contextlib.suppress
            os.read(self._fd, 8)  # the expiry count: clears the fd's readiness for the next arming
        except BlockingIOError:
            pass
        # At most a few yields, where the whole nanoseconds armed above or float rounding land a hair
        # before t: a request is never recorded as sent before its time.
        while time.perf_counter() - origin < t:
            gevent.sleep(0)

    def close(self) -> None:
        self._watcher.close()
        os.close(self._fd)


# The head start's start, step and ceiling (HeadStart). Without one, the lag p50 (scheduled to sent) on
# the 2-core VM was 0.27-0.30 ms at 40 req/s, from an idle loop, and 0.08-0.14 ms at 400 and 2,000 req/s,
# where the loop is seldom idle (benchmarks/results/dispatch-head-start-2026-12-08*.json, the
# ``timerfd-at-due`` runs). At STEP_S a step, the head start climbs from INITIAL_HEAD_START_S to the
# slowest of those in about 50 arrivals, inside any warm-up.
INITIAL_HEAD_START_S = 0.0001
HEAD_START_STEP_S = 0.000005
# A ceiling, so that a dispatcher kept late by other work (a saturated loop) cannot grow a head start
# that the senders then yield away whenever it is not late: at most this much CPU per arrival.
MAX_HEAD_START_S = 0.0005


class HeadStart:
    """How long before each arrival's time its dispatcher wakes, so that the hand-off is over by then.

    Between a timer's expiry and the moment a sender stamps a request as sent lie the wake-up of an
    idle vCPU, the loop's turn, the hand-off to a sender greenlet and that greenlet's own turn: a
    median 0.27-0.30 ms of lag at 40 req/s (benchmarks/dispatch.py), which lands whole on a low
    percentile such as rho 0.5's p50 (about 3% of a 10 ms service time). The dispatcher therefore
    wakes ``s`` early and hands the arrival over at once; the sender yields (``gevent.sleep(0)``) until
    the arrival is due, then sends, so nothing is ever sent early and only what is left of the head
    start is spent yielding.

    ``s`` tracks the hand-off's running median by Frugal-1U (Ma, Muthukrishnan & Sandler 2013,
    "Frugal Streaming for Estimating Quantiles", LNCS 8066): one step up when a sender arrives late,
    one step down when it arrives early. Half the requests then leave on time to the microsecond and
    the rest late by less than before; the yielding costs the early half what is left of ``s``: 33-39 us
    of CPU a request at 40 req/s, 9-14 us at 400 and 2,000 (docs/benchmarks.md, "The head start"). One
    per dispatcher: each tenant's hand-off is its own.
    """

    def __init__(self, initial_s: float = INITIAL_HEAD_START_S):
        self.s = initial_s

    def wake_at(self, t: float) -> float:
        """When the dispatcher should wake for an arrival due at ``t`` (same clock as ``t``)."""
        return t - self.s

    def until_due(self, t: float, now: Callable[[], float]) -> None:
        """In the sender: note how far the hand-off beat ``t``, then yield until ``now() >= t``."""
        self.note(t - now())
        while now() < t:
            gevent.sleep(0)

    def note(self, ahead_s: float) -> None:
        """One Frugal-1U step: a sender reached its arrival ``ahead_s`` before it was due (< 0: late)."""
        step = -HEAD_START_STEP_S if ahead_s > 0 else HEAD_START_STEP_S
        self.s = min(MAX_HEAD_START_S, max(0.0, self.s + step))


def deadline_waiter(origin: float) -> TimerFdWait | SpinWait:
    """The engine's waiter: a timerfd on Linux, the spin elsewhere.

    Measured (benchmarks/dispatch.py, 2 rounds interleaved, the shared 2-core VM with 0.5 to 2 cores of
    other load; docs/benchmarks.md, "Dispatch without a spin"), Poisson on the no-work model: the
    generator's CPU at 40 req/s fell from 6.6-6.8% of a core (spin) to 3.6-3.9%, and at 400 req/s from
    35% to 15-16%; gevent's timer alone used 2.9-3.2% at 40, so the timerfd's own cost is small. Lag p50
    rose from 0.15 ms to 0.33-0.36 ms (an idle vCPU waking); a native timer thread was no better (0.35-
    0.41 ms, and it hands the GIL over on every arrival), and a 0.3 ms spin after the timerfd bought the
    p50 back for a third more CPU at 400 req/s. Lag p99 was 2.5-16 ms for every design, set by the
    machine's other load, not by the waiting.
    """
    return TimerFdWait(origin) if _LIBC is not None else SpinWait(origin)
