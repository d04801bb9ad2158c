"""A TCP socket that waits on gevent's loop with its own watchers: the transports' connection.

gevent's cooperative socket is the standard library's socket rebuilt in Python. Each ``recv`` first
tries the read, and a reply that has not come yet (always, in a closed loop: the read follows the
send by microseconds) raises ``EWOULDBLOCK``, which gevent catches before it waits. The wait then
builds a ``Timeout`` object, starts its timer and closes it again. Closed loop on the no-work model
at concurrency 1, that cost 108-116 us of client CPU per request over HTTP through gevent's socket
and 77 us through this one; over gRPC 151-152 and 116-120 us (benchmarks.transport, alternated in one
run; docs/benchmarks.md, "The socket under the transports"). The generator's CPU is the server's.

Here a connection owns one read watcher, one write watcher and one timer for its whole life. A read
waits for the socket to be readable first and then reads, so the common case is one ``epoll`` wake
and one ``recv`` without an exception. The timer is armed for each wait, so a read or write that
gets nothing for ``timeout_s`` raises ``TimeoutError("timed out")``, as gevent's socket did.
"""

from __future__ import annotations

import _socket

import gevent
from gevent import socket as gsocket
from gevent.hub import get_hub


class LoopSocket:
    """A connected, non-blocking TCP socket whose reads and writes yield to gevent's loop.

    One greenlet at a time may use it (the transports' pools hand a connection to one request)."""

    def __init__(self, address: tuple[str, int], timeout_s: float, connect_timeout_s: float):
        # gevent's create_connection resolves and connects cooperatively; the connected descriptor is
        # then taken over by a plain socket, so nothing of gevent's socket stays on the request path.
        connected = gsocket.create_connection(address, timeout=connect_timeout_s)
        connected.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self.sock = _socket.socket(fileno=connected.detach())
        self.sock.setblocking(False)
        self.hub = get_hub()
        fd = self.sock.fileno()
        self._readable = self.hub.loop.io(fd, 1)
        self._writable = self.hub.loop.io(fd, 2)
        self._timer = self.hub.loop.timer(timeout_s)

    def _wait(self, watcher) -> None:
        # The timer throws into this greenlet if the wait lasts timeout_s; update=True counts from now.
        self._timer.start(gevent.getcurrent().throw, TimeoutError, "timed out", update=True)
        try:
            self.hub.wait(watcher)
        finally:
            self._timer.stop()

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes once some have come; b"" when the peer closed the connection."""
        while True:
            self._wait(self._readable)
            try:
                return self.sock.recv(size)
            except BlockingIOError:  # woken without data (rare): wait again
                continue

    def sendall(self, data) -> None:
        """All of ``data``: one ``send`` when the kernel takes it whole, as it does a request of a few KB."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                self._wait(self._writable)

    def close(self) -> None:
        self._readable.close()
        self._writable.close()
        self._timer.close()
        self.sock.close()
