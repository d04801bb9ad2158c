"""Triton's gRPC inference call as prebuilt HTTP/2 frames on pooled connections (the engine's gRPC transport).

A gRPC unary call is one HTTP/2 stream: a HEADERS frame (the method and a few fixed headers), the
length-prefixed request message in DATA, then the server's HEADERS, DATA and trailing HEADERS with
``grpc-status`` (gRPC over HTTP/2: github.com/grpc/grpc, doc/PROTOCOL-HTTP2.md). A tenant sends the
same message every time, so its frames are built once per tenant and a call writes only the stream id
into their headers: one ``sendall``, then the reads of the reply, as ``perseus.load.wire`` does for
HTTP/1.1.

Why not grpcio: in gevent mode its call path cost 239-559 us of client CPU per request on the no-work
model, against perf_analyzer's 41-69 us (docs/benchmarks.md, "Transports against perf_analyzer"), and
that CPU is taken from the server being measured.

Each connection carries one call at a time (a pool, as the HTTP transport's keep-alive sockets), so the
caller reads its own reply: no reader greenlet and no hand-over between greenlets. The request's header
block uses only HPACK's static table and never-indexed literals, so its bytes do not depend on any
connection's dynamic table; replies are decoded by the ``hpack`` library, one decoder per connection as
HPACK requires. Framing follows RFC 9113: the frame header (section 4.1), SETTINGS and their ACK
(6.5), PING (6.7), GOAWAY (6.8), flow control (5.2, 6.9) and padding (6.1, 6.2).
"""

from __future__ import annotations

import struct
from urllib.parse import unquote

import gevent.lock
import grpc
import hpack

from perseus.load.sockets import LoopSocket

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types (RFC 9113, section 6) and the flags used here.
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x2, 0x4, 0x5
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
# Give the server its connection window back once this much is used: rare enough to cost nothing
# per call, early enough that the server never waits for it.
REPLENISH_AT = 2**30
RECV_BYTES = 65536
_FRAME = struct.Struct(">BHBBI")  # length (1 + 2 bytes), type, flags, stream id (R bit masked off)
_GRPC_PREFIX = struct.Struct(">BI")  # compressed flag, message length
_SETTING = struct.Struct(">HI")
_U32 = struct.Struct(">I")
GRPC_CODES = {code.value[0]: code.name for code in grpc.StatusCode}


class ConnectionClosed(OSError):
    """The server closed the connection (or went away on it) before this call was processed."""


class GrpcError(Exception):
    """A call the server answered with a failure: its text is what the engine records."""


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME.pack(n >> 16, n & 0xFFFF, kind, flags, stream) + payload


def header_block(authority: str, method: str, timeout_s: float) -> bytes:
    """The call's HPACK header block, the same for every call. ``grpc-timeout`` lets the server drop a call
    that the client gave up on, as grpcio sends it."""
    fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", method),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", f"{max(1, round(timeout_s * 1000))}m"),
        ("user-agent", "perseus"),
    ]
    # Never-indexed literals add nothing to the encoder's table, so only static-table entries are
    # referenced: the block is valid on any connection, whatever its table holds.
    return hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(k, v) for k, v in fields], huffman=False)


def message_frames(stream: int, headers: bytes, message: bytes) -> bytes:
    """HEADERS and one DATA frame carrying the whole length-prefixed message, ending the stream."""
    body = _GRPC_PREFIX.pack(0, len(message)) + message
    return frame(HEADERS, END_HEADERS, stream, headers) + frame(DATA, END_STREAM, stream, body)


class ReplyDecoder:
    """HPACK decoding of the server's header blocks, with each block's fields remembered while they hold.

    After the first calls on a connection the server's reply headers and trailers are the same bytes on
    every call (references to its dynamic table), and a block of references means the same fields for
    as long as the table is unchanged. Decoding them again costs more than the rest of a call's reply
    handling (hpack's decoder is pure Python and logs each field at debug level), so a block that left
    the table as it was is remembered, and any block that changes the table (an insert, or an eviction
    by a size update) forgets them all, since indices may now name other entries (RFC 7541, 2.3.3)."""

    LIMIT = 64  # distinct blocks remembered: replies differ only in error messages

    def __init__(self):
        self.decoder = hpack.Decoder()
        self.known: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        fields = self.known.get(block)
        if fields is not None:
            return fields
        entries = self.decoder.header_table.dynamic_entries
        before = (len(entries), entries[0] if entries else None)
        fields = self.decoder.decode(block, raw=True)
        if len(entries) != before[0] or (entries[0] if entries else None) is not before[1]:
            self.known.clear()
        elif len(self.known) < self.LIMIT:
            self.known[block] = fields
        return fields


class _Reply:
    __slots__ = ("block", "code", "data", "done", "ends", "status", "text")

    def __init__(self):
        self.status = 0  # HTTP :status
        self.code: int | None = None  # grpc-status
        self.text = ""  # grpc-message
        self.data: list[bytes] = []
        self.done = False
        self.block = b""  # a header block continued in CONTINUATION frames
        self.ends = False  # whether that block's HEADERS frame ended this call's stream


class Connection:
    """One HTTP/2 connection, carrying one call at a time."""

    def __init__(self, address: tuple[str, int], timeout_s: float, connect_timeout_s: float):
        self.sock = LoopSocket(address, timeout_s, connect_timeout_s)  # timeout_s: each read and write
        self.decoder = ReplyDecoder()
        self.buf = b""
        self.next_stream = 1  # client streams are odd (RFC 9113, 5.1.1)
        self.send_window = DEFAULT_WINDOW  # the connection's, for our DATA
        self.initial_window = DEFAULT_WINDOW  # the server's SETTINGS_INITIAL_WINDOW_SIZE: each stream's
        self.stream_window = DEFAULT_WINDOW
        self.max_frame = DEFAULT_MAX_FRAME
        self.received = 0  # DATA bytes since the server last got its connection window back
        self.last_stream: int | None = None  # from GOAWAY: the last stream the server will process
        # No push, and the largest stream and connection windows: the server never waits on us.
        settings = _SETTING.pack(SETTINGS_ENABLE_PUSH, 0) + _SETTING.pack(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW)
        increment = _U32.pack(MAX_WINDOW - DEFAULT_WINDOW)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, increment))

    @property
    def usable(self) -> bool:
        """Whether another call may start here: no GOAWAY seen, and stream ids left."""
        return self.last_stream is None and self.next_stream < MAX_WINDOW

    def call(self, headers: bytes, message: bytes, frames: bytes | None) -> _Reply:
        """One call. ``frames``: ``message_frames`` for stream 0, patched here, or None to build them."""
        stream = self.next_stream
        self.next_stream += 2
        self.stream_window = self.initial_window
        size = _GRPC_PREFIX.size + len(message)
        reply = _Reply()
        if size <= min(self.max_frame, self.send_window, self.stream_window):
            # The common case, one write: the prebuilt frames with this call's stream id in both headers.
            wire = bytearray(frames if frames is not None else message_frames(0, headers, message))
            _U32.pack_into(wire, 5, stream)
            _U32.pack_into(wire, 9 + len(headers) + 5, stream)
            try:
                self.sock.sendall(wire)
            except (BrokenPipeError, ConnectionResetError) as exc:  # closed by the server while idle
                raise ConnectionClosed(f"connection closed before the call: {exc}") from None
            self.send_window -= size
            self.stream_window -= size
        else:
            self.sock.sendall(frame(HEADERS, END_HEADERS, stream, headers))
            self._send_data(stream, memoryview(_GRPC_PREFIX.pack(0, len(message)) + message), reply)
        while not reply.done:
            self._handle(stream, reply)
        return reply

    def _send_data(self, stream: int, body: memoryview, reply: _Reply) -> None:
        """A message larger than a frame or than a window: DATA frames as the windows allow, reading the
        server's frames (its WINDOW_UPDATEs) whenever a window is spent."""
        while body and not reply.done:
            room = min(self.max_frame, self.send_window, self.stream_window)
            if room <= 0:
                self._handle(stream, reply)
                continue
            chunk, body = body[:room], body[room:]
            n = len(chunk)
            head = _FRAME.pack(n >> 16, n & 0xFFFF, DATA, 0 if body else END_STREAM, stream)
            self.sock.sendall(head + chunk)
            self.send_window -= n
            self.stream_window -= n

    def _read_frame(self) -> tuple[int, int, int, bytes]:
        buf = self.buf
        while len(buf) < 9:
            buf += self._recv()
        hi, lo, kind, flags, stream = _FRAME.unpack_from(buf)
        end = 9 + ((hi << 16) | lo)
        while len(buf) < end:
            buf += self._recv()
        self.buf = buf[end:]
        return kind, flags, stream & MAX_WINDOW, buf[9:end]

    def _recv(self) -> bytes:
        more = self.sock.recv(RECV_BYTES)
        if not more:
            raise ConnectionClosed("connection closed before the reply")
        return more

    def _handle(self, stream: int, reply: _Reply) -> None:
        """Read one frame and act on it: this call's reply, or the connection's own business."""
        kind, flags, sid, payload = self._read_frame()
        if kind == DATA:
            self.received += len(payload)
            if self.received >= REPLENISH_AT:
                self.sock.sendall(frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.received)))
                self.received = 0
            if sid == stream:
                reply.data.append(_unpad(flags, payload))
                reply.done = bool(flags & END_STREAM)
        elif kind in (HEADERS, CONTINUATION):
            # Every header block is decoded, this call's or not: HPACK's table is the connection's.
            if kind == HEADERS:
                reply.block = _unpad(flags, payload)
                if flags & PRIORITY:
                    reply.block = reply.block[5:]
                reply.ends = sid == stream and bool(flags & END_STREAM)
            else:
                reply.block += payload
            if flags & END_HEADERS:
                fields = self.decoder.decode(reply.block)
                reply.block = b""
                if sid == stream:
                    _read_fields(fields, reply)
                    reply.done = reply.ends
        elif kind == RST_STREAM and sid == stream:
            (error,) = _U32.unpack_from(payload)
            raise GrpcError(f"gRPC stream reset by the server (HTTP/2 error code {error})")
        elif kind == SETTINGS and not flags & ACK:
            self._settings(payload)
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            self.sock.sendall(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            (increment,) = _U32.unpack_from(payload)
            if sid == 0:
                self.send_window += increment & MAX_WINDOW
            elif sid == stream:
                self.stream_window += increment & MAX_WINDOW
        elif kind == GOAWAY:
            (last,) = _U32.unpack_from(payload)
            self.last_stream = last & MAX_WINDOW
            if stream > self.last_stream:  # never processed: safe to send again elsewhere
                raise ConnectionClosed("the server went away (GOAWAY) before this call")
        # PUSH_PROMISE cannot come (push is off); PRIORITY and unknown frame types are ignored (4.1).

    def _settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - 5, 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:  # applies to open streams too, as a delta (6.9.2)
                self.stream_window += value - self.initial_window
                self.initial_window = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self.max_frame = value

    def close(self) -> None:
        self.sock.close()


def _unpad(flags: int, payload: bytes) -> bytes:
    return payload[1 : len(payload) - payload[0]] if flags & PADDED else payload


def _read_fields(fields: list[tuple[bytes, bytes]], reply: _Reply) -> None:
    for name, value in fields:
        if name == b":status":
            reply.status = int(value)
        elif name == b"grpc-status":
            reply.code = int(value)
        elif name == b"grpc-message":
            reply.text = unquote(value.decode("utf-8", "replace"))  # percent-encoded (PROTOCOL-HTTP2.md)


class GrpcWireTransport:
    """Triton's gRPC inference call with a prebuilt message, over pooled HTTP/2 connections."""

    def __init__(
        self, address: str, method: str, message: bytes, connections: int, timeout_s: float, connect_timeout_s: float
    ):
        host, _, port = address.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.headers = header_block(address, method, timeout_s)
        self.message = message
        self.frames = message_frames(0, self.headers, message)
        self._idle: list[Connection] = []
        # At most ``connections`` connections: a call that finds them all busy waits for one.
        self._slots = gevent.lock.BoundedSemaphore(connections)
        self._closed = False

    def send(self, message: bytes | None = None) -> bytes:
        """One call (``message``: another request, e.g. a traced one); the reply message, without its
        gRPC prefix. A failed call raises ``GrpcError`` with the server's status and message."""
        frames = self.frames if message is None else None
        message = self.message if message is None else message
        with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else Connection(self.address, self.timeout_s, self.connect_timeout_s)
            try:
                reply = conn.call(self.headers, message, frames)
            except ConnectionClosed:
                conn.close()
                if not reused:
                    raise
                # A kept connection the server had closed or given up while idle: once more, fresh.
                conn = Connection(self.address, self.timeout_s, self.connect_timeout_s)
                try:
                    reply = conn.call(self.headers, message, frames)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            if conn.usable and not self._closed:
                self._idle.append(conn)
            else:
                conn.close()
        return _result(reply)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


def _result(reply: _Reply) -> bytes:
    if reply.status != 200:
        raise GrpcError(f"gRPC call answered with HTTP {reply.status}")
    if reply.code != 0:
        name = GRPC_CODES.get(reply.code, str(reply.code)) if reply.code is not None else "no grpc-status"
        raise GrpcError(f"gRPC {name}: {reply.text[:500]}")
    data = b"".join(reply.data)
    return data[_GRPC_PREFIX.size :]
