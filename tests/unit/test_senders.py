"""The open-loop dispatcher's kept senders (perseus.load.senders.Senders), on real gevent greenlets."""

from __future__ import annotations

import gevent

from perseus.load.senders import Senders


def test_arrivals_reuse_idle_senders_and_never_wait_behind_a_busy_one():
    started: list[float] = []

    def send(scheduled: float) -> None:
        started.append(scheduled)
        gevent.sleep(0.02 if scheduled < 3 else 0.0)  # the first three are slow requests

    senders = Senders(send)
    for t in range(3):  # a burst with no yield in between: each must get a sender of its own
        senders.submit(float(t))
    assert len(senders.group) == 3
    gevent.sleep(0.05)  # all three done, now idle
    assert senders.idle == 3
    for t in range(3, 9):  # one at a time: an idle sender takes each, no new greenlet
        senders.submit(float(t))
        gevent.sleep(0.001)
    assert len(senders.group) == 3
    senders.join(timeout=1.0)
    assert len(senders.group) == 0  # idle senders end when the dispatcher is done
    assert sorted(started) == [float(t) for t in range(9)]  # every arrival sent once


def test_join_waits_for_requests_in_flight_and_kill_ends_them():
    done: list[float] = []

    def send(scheduled: float) -> None:
        gevent.sleep(scheduled)
        done.append(scheduled)

    senders = Senders(send)
    senders.submit(0.01)
    senders.submit(5.0)
    senders.join(timeout=0.2)
    assert done == [0.01]  # the short one finished; the long one is still in flight
    assert len(senders.group) == 1
    senders.kill()
    assert len(senders.group) == 0 and done == [0.01]
