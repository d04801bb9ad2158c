"""The HTTP/1.1 wire transport against a scripted HTTP peer on loopback (real sockets, real gevent).

Triton answers every request the same way (Content-Length, keep-alive), so the framings it does not
use (chunked bodies, "Connection: close", a server that drops an idle connection) are scripted here
by a small gevent StreamServer; tests/integration (test_dispatch.py, test_grpc.py, the smoke run)
send through the same transport to a real tritonserver."""

from __future__ import annotations

import gevent
import pytest
from gevent.server import StreamServer

from perseus.load.wire import ConnectionClosed, WireTransport


class Peer:
    """Reads each request (head + Content-Length body) and answers with the next scripted response.

    A response of ``None`` closes the connection without answering."""

    def __init__(self, responses: list[bytes | None]):
        self.responses = list(responses)
        self.requests: list[bytes] = []
        self.connections = 0
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _serve(self, sock, _address) -> None:
        self.connections += 1
        buf = b""
        while self.responses:
            while b"\r\n\r\n" not in buf:
                more = sock.recv(65536)
                if not more:
                    return
                buf += more
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = int(
                next(v for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k == b"Content-Length")
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest[:length])
            buf = rest[length:]
            response = self.responses.pop(0)
            if response is None:
                sock.close()
                return
            sock.sendall(response)
            if b"Connection: close" in response:
                sock.close()
                return

    def stop(self) -> None:
        self.server.stop()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def transport(url: str, connections: int = 4) -> WireTransport:
    return WireTransport(
        url, "/v2/models/m/infer", b"BODY", {"Content-Type": "application/octet-stream"}, connections, 5.0, 5.0
    )


def test_the_prebuilt_request_is_sent_as_is_and_the_connection_kept():
    peer = Peer([ok(b"first"), ok(b"second")])
    wire = transport(peer.url)
    try:
        assert wire.send() == (200, b"first")
        assert wire.send() == (200, b"second")
    finally:
        wire.close()
        peer.stop()
    host = peer.url.removeprefix("http://").encode()
    expected = (
        b"POST /v2/models/m/infer HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 4\r\n"
        b"Content-Type: application/octet-stream\r\n\r\nBODY"
    )
    assert peer.requests == [expected, expected]
    assert peer.connections == 1  # keep-alive: one socket for both


def test_a_chunked_body_is_reassembled():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n"
    peer = Peer([chunked, ok(b"next")])
    wire = transport(peer.url)
    try:
        assert wire.send() == (200, b"hello, world")
        assert wire.send() == (200, b"next")  # the chunked response was consumed exactly
    finally:
        wire.close()
        peer.stop()
    assert peer.connections == 1


def test_connection_close_is_honoured_and_an_error_status_returned():
    peer = Peer([ok(b'{"error":"bad"}', b"Connection: close\r\n").replace(b"200 OK", b"400 Bad Request"), ok(b"x")])
    wire = transport(peer.url)
    try:
        assert wire.send() == (400, b'{"error":"bad"}')
        assert wire.send() == (200, b"x")
    finally:
        wire.close()
        peer.stop()
    assert peer.connections == 2


def test_a_kept_connection_the_server_dropped_is_retried_once_on_a_fresh_one():
    peer = Peer([ok(b"a"), None, ok(b"b")])  # the second request finds its socket closed by the server
    wire = transport(peer.url)
    try:
        assert wire.send() == (200, b"a")
        assert wire.send() == (200, b"b")
    finally:
        wire.close()
        peer.stop()
    assert peer.connections == 2


def test_a_fresh_connection_closed_without_an_answer_is_an_error():
    peer = Peer([None])
    wire = transport(peer.url)
    try:
        with pytest.raises(ConnectionClosed):
            wire.send()
    finally:
        wire.close()
        peer.stop()


def test_requests_wait_for_a_free_connection_beyond_the_pool():
    peer = Peer([ok(b"r")] * 6)
    wire = transport(peer.url, connections=2)
    try:
        results = [g.get() for g in [gevent.spawn(wire.send) for _ in range(6)]]
    finally:
        wire.close()
        peer.stop()
    assert results == [(200, b"r")] * 6
    assert peer.connections <= 2


def test_a_remembered_head_frames_each_body_and_a_different_head_is_parsed_afresh(monkeypatch):
    """Heads are remembered by their bytes: the same head gives the same framing for a new body, a new
    head (here "Connection: close") is parsed, and past HEADS_KEPT heads are parsed every time."""
    monkeypatch.setattr("perseus.load.wire.HEADS_KEPT", 2)
    closing = ok(b"cccc", b"Connection: close\r\n")
    peer = Peer([ok(b"aaaa"), ok(b"bbbb"), ok(b"dd"), closing, ok(b"eeeee"), ok(b"ffff")])
    wire = transport(peer.url)
    try:
        got = [wire.send() for _ in range(6)]
        kept = dict(wire._heads)
    finally:
        wire.close()
        peer.stop()
    assert got == [(200, b"aaaa"), (200, b"bbbb"), (200, b"dd"), (200, b"cccc"), (200, b"eeeee"), (200, b"ffff")]
    assert peer.connections == 2  # the fourth response closed the first connection
    assert len(kept) == 2  # the heads of "aaaa" and "dd"; later ones were parsed and not kept
