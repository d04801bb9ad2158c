"""An open-loop tenant's sender greenlets, kept from one request to the next (used by the engine's dispatcher)."""

from __future__ import annotations

from collections.abc import Callable

import gevent.queue
from gevent.pool import Group


class Senders:
    """The greenlets that send an open-loop tenant's requests, kept from one request to the next.

    Each arrival goes to an idle sender, or to a new one when all are busy, so a slow server never
    delays the next arrival, as with a greenlet per request. But a fresh greenlet gets a fresh 16 KiB
    Python frame stack: an mmap, its page faults and a munmap for every request (strace -k of the 40
    req/s dispatch on the no-work model), on an interpreter whose caches went cold since the last
    arrival. A kept sender reuses its stack."""

    def __init__(self, send: Callable[[float], None]):
        self.send = send
        self.queue: gevent.queue.SimpleQueue = gevent.queue.SimpleQueue()
        self.group = Group()
        self.idle = 0  # senders waiting on the queue and not yet given an arrival
        self.closing = False

    def submit(self, scheduled: float) -> None:
        if self.idle:
            self.idle -= 1  # claimed now, so a second arrival before it wakes goes to another sender
            self.queue.put(scheduled)
        else:
            self.group.spawn(self._run, scheduled)

    def _run(self, scheduled: float) -> None:
        while True:
            self.send(scheduled)
            if self.closing:
                return
            self.idle += 1
            scheduled = self.queue.get()
            if scheduled is None:
                return

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the requests in flight; idle senders end at once."""
        self.closing = True
        for _ in range(self.idle):
            self.queue.put(None)
        self.idle = 0
        self.group.join(timeout=timeout)

    def kill(self) -> None:
        self.group.kill(block=True)
