"""LoopSocket, the transports' connection, against a real loopback peer on gevent's loop."""

from __future__ import annotations

import time

import gevent
import pytest
from gevent.server import StreamServer

from perseus.load.sockets import LoopSocket


@pytest.fixture
def peer():
    """A loopback server whose handler is set by each test; yields (address, set_handler)."""
    handler = {"serve": lambda sock: None}
    server = StreamServer(("127.0.0.1", 0), lambda sock, _addr: handler["serve"](sock))
    server.start()

    def serve(fn):
        handler["serve"] = fn

    yield ("127.0.0.1", server.server_port), serve
    server.stop()


def test_a_read_that_gets_nothing_times_out_as_a_socket_did(peer):
    address, serve = peer
    serve(lambda sock: gevent.sleep(5))
    conn = LoopSocket(address, timeout_s=0.2, connect_timeout_s=5.0)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="timed out"):
            conn.recv(100)
        assert 0.15 < time.monotonic() - started < 2.0
        # The timer is disarmed after a wait: a later wait gets its full timeout again.
        with pytest.raises(TimeoutError):
            conn.recv(100)
    finally:
        conn.close()


def test_a_closed_peer_reads_as_empty(peer):
    address, serve = peer
    serve(lambda sock: sock.close())
    conn = LoopSocket(address, timeout_s=5.0, connect_timeout_s=5.0)
    try:
        assert conn.recv(100) == b""
    finally:
        conn.close()


def test_a_send_larger_than_the_kernel_buffers_waits_for_the_reader(peer):
    """8 MiB does not fit the socket buffers: sendall must wait for the peer to drain them."""
    address, serve = peer
    got = bytearray()

    def slow_reader(sock):
        gevent.sleep(0.2)  # let the sender fill the buffers and wait
        while len(got) < 8 << 20:
            more = sock.recv(1 << 20)
            if not more:
                return
            got.extend(more)

    serve(slow_reader)
    conn = LoopSocket(address, timeout_s=5.0, connect_timeout_s=5.0)
    payload = bytes(range(256)) * (8 << 12)
    try:
        started = time.monotonic()
        conn.sendall(payload)
        # It could not all fit: sendall returned only after the reader woke up and drained the buffers.
        assert time.monotonic() - started > 0.15
        deadline = time.monotonic() + 5
        while len(got) < len(payload) and time.monotonic() < deadline:
            gevent.sleep(0.01)
    finally:
        conn.close()
    assert bytes(got) == payload


def test_a_reply_is_read_once_it_comes_and_other_greenlets_run_meanwhile(peer):
    address, serve = peer

    def answer_after(sock):
        sock.recv(10)
        gevent.sleep(0.2)
        sock.sendall(b"done")
        gevent.sleep(0.5)  # keep the connection open: the reply, not a close, ends the read

    serve(answer_after)
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.02)) for _ in range(5)])
    conn = LoopSocket(address, timeout_s=5.0, connect_timeout_s=5.0)
    try:
        conn.sendall(b"go")
        assert conn.recv(10) == b"done"
    finally:
        conn.close()
        ticker.kill()
    assert len(ticks) == 5
