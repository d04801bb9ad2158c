"""The gRPC transport's HTTP/2 framing against a real HTTP/2 implementation on loopback.

The peer is the ``h2`` library's server-side connection (a strict RFC 9113 state machine: a frame out
of place, a window overrun or a malformed header block is a protocol error there) behind a gevent
StreamServer, answering as a gRPC server does. Triton's own gRPC server, which uses a few of these
framings only under conditions hard to force (small windows, a PING mid-call, GOAWAY, CONTINUATION),
is exercised by tests/integration/test_grpc.py through the same transport."""

from __future__ import annotations

import struct

import gevent
import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from gevent.server import StreamServer

from perseus.load.grpc_wire import GrpcError, GrpcWireTransport, ReplyDecoder

METHOD = "/inference.GRPCInferenceService/ModelInfer"


def grpc_message(data: bytes) -> bytes:
    return struct.pack(">BI", 0, len(data)) + data


class Peer:
    """An HTTP/2 server answering each call with ``answer(conn, stream_id, message)``."""

    def __init__(self, answer, settings: dict | None = None):
        self.answer = answer
        self.settings = settings or {}
        self.calls: list[tuple[dict, bytes]] = []  # (request headers, request message)
        self.connections = 0
        self.ping_acks = 0
        self.conns: list[h2.connection.H2Connection] = []
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def _serve(self, sock, _address) -> None:
        self.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conns.append(conn)
        conn.initiate_connection()
        if self.settings:
            conn.update_settings(self.settings)
        sock.sendall(conn.data_to_send())
        headers: dict[int, dict] = {}
        bodies: dict[int, bytes] = {}
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers[event.stream_id] = dict(event.headers)
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.PingAckReceived):
                    self.ping_acks += 1
                elif isinstance(event, h2.events.StreamEnded):
                    body = bodies.pop(event.stream_id)
                    assert struct.unpack(">BI", body[:5]) == (0, len(body) - 5)  # one length-prefixed message
                    self.calls.append((headers.pop(event.stream_id), body[5:]))
                    if self.answer(conn, event.stream_id, body[5:]) == "close":
                        sock.sendall(conn.data_to_send())
                        sock.close()
                        return
            sock.sendall(conn.data_to_send())

    def stop(self) -> None:
        self.server.stop()


def reply(conn, stream_id: int, data: bytes, *, pad: int | None = None, status: str = "0", text: str = "") -> None:
    conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
    message = grpc_message(data)
    chunk = conn.max_outbound_frame_size - (pad + 1 if pad else 0)
    for start in range(0, len(message), chunk):
        conn.send_data(stream_id, message[start : start + chunk], pad_length=pad)
    trailers = [("grpc-status", status)] + ([("grpc-message", text)] if text else [])
    conn.send_headers(stream_id, trailers, end_stream=True)


def echo(conn, stream_id, message):
    reply(conn, stream_id, b"re:" + message)


def transport(peer: Peer, message: bytes = b"REQUEST", connections: int = 2) -> GrpcWireTransport:
    return GrpcWireTransport(peer.address, METHOD, message, connections, 5.0, 5.0)


@pytest.fixture
def peers():
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.stop()


def test_a_call_sends_the_grpc_request_and_returns_the_reply_message(peers):
    peers.append(peer := Peer(echo))
    wire = transport(peer)
    try:
        assert wire.send() == b"re:REQUEST"
        assert wire.send(b"OTHER") == b"re:OTHER"
        assert wire.send() == b"re:REQUEST"
    finally:
        wire.close()
    assert peer.connections == 1  # one call at a time, on the kept connection
    headers, message = peer.calls[0]
    assert message == b"REQUEST"
    assert headers[":method"] == "POST" and headers[":scheme"] == "http" and headers[":path"] == METHOD
    assert headers[":authority"] == peer.address
    assert headers["content-type"] == "application/grpc" and headers["te"] == "trailers"
    assert headers["grpc-timeout"] == "5000m"
    assert [m for _, m in peer.calls] == [b"REQUEST", b"OTHER", b"REQUEST"]


def test_each_call_gets_the_next_odd_stream_id_in_the_prebuilt_frames(peers):
    # Client streams are odd and rise by two (RFC 9113, 5.1.1); h2 refuses a reused or even id.
    seen = []
    peers.append(peer := Peer(lambda conn, sid, m: (seen.append(sid), echo(conn, sid, m))))
    wire = transport(peer)
    try:
        for _ in range(4):
            wire.send()
    finally:
        wire.close()
    assert seen == [1, 3, 5, 7]


def test_a_message_larger_than_the_servers_windows_waits_for_its_window_updates(peers):
    # A 4 KiB stream window and 16 KiB frames: a 300 KB message takes many frames and many waits for
    # WINDOW_UPDATE, on the stream and on the connection (65,535 bytes until the server raises it).
    peers.append(peer := Peer(echo, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096}))
    message = bytes(range(256)) * 1200
    wire = transport(peer, message)
    try:
        assert wire.send() == b"re:" + message
        assert wire.send() == b"re:" + message  # the windows are right after the first
    finally:
        wire.close()
    assert [m for _, m in peer.calls] == [message, message]


def test_a_large_padded_reply_in_many_frames_is_joined(peers):
    big = bytes(range(256)) * 2000
    peers.append(peer := Peer(lambda conn, sid, m: reply(conn, sid, big, pad=7)))
    wire = transport(peer)
    try:
        assert wire.send() == big
    finally:
        wire.close()


def test_a_failed_call_raises_the_servers_status_and_message(peers):
    def not_found(conn, sid, _message):  # "trailers-only": one HEADERS frame ends the stream
        conn.send_headers(
            sid,
            [
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "5"),
                ("grpc-message", "Request%20for%20unknown%20model"),
            ],
            end_stream=True,
        )

    peers.append(peer := Peer(not_found))
    wire = transport(peer)
    try:
        with pytest.raises(GrpcError, match=r"^gRPC NOT_FOUND: Request for unknown model$"):
            wire.send()
        with pytest.raises(GrpcError, match="NOT_FOUND"):  # the connection stays usable
            wire.send()
    finally:
        wire.close()
    assert peer.connections == 1


def test_a_reset_stream_is_a_failed_call(peers):
    peers.append(peer := Peer(lambda conn, sid, _m: conn.reset_stream(sid, error_code=2)))
    wire = transport(peer)
    try:
        with pytest.raises(GrpcError, match="reset by the server"):
            wire.send()
    finally:
        wire.close()


def test_trailers_split_into_continuation_frames_are_decoded(peers):
    text = "x" * 40_000  # larger than a 16 KiB frame: h2 sends HEADERS then CONTINUATION frames
    peers.append(peer := Peer(lambda conn, sid, m: reply(conn, sid, b"", status="13", text=text)))
    wire = transport(peer)
    try:
        with pytest.raises(GrpcError) as failed:
            wire.send()
    finally:
        wire.close()
    assert str(failed.value).startswith("gRPC INTERNAL: xxx")


def test_a_ping_in_the_middle_of_a_call_is_acknowledged(peers):
    def ping_first(conn, sid, message):
        conn.ping(b"perseus!")
        echo(conn, sid, message)

    peers.append(peer := Peer(ping_first))
    wire = transport(peer)
    try:
        assert wire.send() == b"re:REQUEST"
        wire.send()  # the ack is read by the server with the next call's frames
    finally:
        wire.close()
    assert peer.ping_acks >= 1


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_call_sent_once(peers):
    def answer_then_go_away(conn, sid, message):
        echo(conn, sid, message)
        conn.close_connection(last_stream_id=sid)  # GOAWAY: nothing after this stream is processed
        return "close"

    peers.append(peer := Peer(answer_then_go_away))
    wire = transport(peer)
    try:
        assert wire.send() == b"re:REQUEST"
        gevent.sleep(0.05)
        assert wire.send() == b"re:REQUEST"
    finally:
        wire.close()
    assert peer.connections == 2
    assert len(peer.calls) == 2  # sent once each: the second on a fresh connection


def test_connections_are_bounded_and_shared(peers):
    def slow(conn, sid, message):
        gevent.sleep(0.05)
        echo(conn, sid, message)

    peers.append(peer := Peer(slow))
    wire = transport(peer, connections=2)
    try:
        group = [gevent.spawn(wire.send) for _ in range(6)]
        gevent.joinall(group, raise_error=True)
    finally:
        wire.close()
    assert all(g.value == b"re:REQUEST" for g in group)
    assert peer.connections == 2


def test_a_remembered_header_block_is_forgotten_when_the_table_moves():
    # The same bytes mean other fields once the dynamic table changes (RFC 7541, 2.3.3): index 62 is the
    # newest entry, whichever that is.
    encoder, decoder = hpack.Encoder(), ReplyDecoder()
    first = encoder.encode([("grpc-status", "0")])  # a literal that inserts the entry
    again = encoder.encode([("grpc-status", "0")])  # a reference to it: index 62
    assert decoder.decode(first) == [(b"grpc-status", b"0")]
    assert decoder.decode(again) == [(b"grpc-status", b"0")]
    assert decoder.known == {again: [(b"grpc-status", b"0")]}  # references only: remembered
    assert decoder.decode(encoder.encode([("grpc-message", "busy")])) == [(b"grpc-message", b"busy")]
    assert decoder.known == {}  # that block inserted an entry: what index 62 meant is forgotten
    newest = encoder.encode([("grpc-message", "busy")])
    assert newest == again  # the very same bytes...
    assert decoder.decode(newest) == [(b"grpc-message", b"busy")]  # ...now name the newer entry
