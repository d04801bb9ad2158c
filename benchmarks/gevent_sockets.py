"""The transports over gevent's cooperative socket, as the engine was before ``perseus.load.sockets``.

Kept for benchmarks that set the engine before that change beside the engine now, in one process
(``benchmarks.transport``'s ``wire-gevent`` and ``grpc-gevent``, ``benchmarks.dispatch``'s
``DESIGN@gevent-socket``). Only the socket differs: the HTTP transport's remembered response heads,
which came in the same change, are in both. Not used by perseus itself.
"""

from __future__ import annotations

import contextlib

from gevent import socket

from perseus.load import grpc_wire, wire


class GeventSocket:
    """The transports' connection before ``LoopSocket``: gevent's socket, one ``send`` where it takes all."""

    def __init__(self, address, timeout_s: float, connect_timeout_s: float):
        self.sock = socket.create_connection(address, timeout=connect_timeout_s)
        self.sock.settimeout(timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data) -> None:
        sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(memoryview(data)[sent:])

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def gevent_sockets():
    """The HTTP and gRPC transports over ``GeventSocket`` while inside."""
    kept = wire.LoopSocket, grpc_wire.LoopSocket
    wire.LoopSocket = grpc_wire.LoopSocket = GeventSocket
    try:
        yield
    finally:
        wire.LoopSocket, grpc_wire.LoopSocket = kept
