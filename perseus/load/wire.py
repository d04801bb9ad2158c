"""One prebuilt HTTP/1.1 request, sent as bytes on pooled keep-alive sockets (the engine's HTTP transport).

A tenant sends the same request every time, so its whole wire form (request line, headers and body)
is built once, and a request is one ``sendall`` and the reads of its response. geventhttpclient,
used before, rebuilt the head for every request (header objects, a regex per header) and checked
every pooled socket with a ``select()`` first: that was the largest part of perseus's per-request
CPU (docs/benchmarks.md, "What in perseus's engine costs CPU per request"). A pooled socket that the
server closed while idle is found by its first read coming back empty, and the request is sent once
more on a fresh connection, before any response byte was read.

The response is read only as far as HTTP/1.1 needs: the status code, ``Content-Length`` or chunked
framing, and whether the server keeps the connection. A server answers a tenant's requests with the
same head every time, so a head seen before is not parsed again. Connections are
``perseus.load.sockets.LoopSocket``, so a request waiting for its response yields to gevent's loop.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import gevent.lock

from perseus.load.sockets import LoopSocket

# Read size per recv: a no-work model's response is a few hundred bytes; large outputs take more reads.
RECV_BYTES = 65536
_HEAD_END = b"\r\n\r\n"
# Response heads remembered per transport. Triton sends one head per body length, so a tenant needs a
# few; a server that varies its heads (a Date header) only fills this up and parses as before.
HEADS_KEPT = 64


class ConnectionClosed(OSError):
    """The server closed the connection before the response was complete."""


class WireTransport:
    """Triton's HTTP/REST inference protocol with a prebuilt request, over pooled keep-alive sockets."""

    def __init__(
        self,
        url: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        connections: int,
        timeout_s: float,
        connect_timeout_s: float,
    ):
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port or 80)
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.path, self.netloc = path, parts.netloc
        self.wire = self.frame(body, headers)
        self._idle: list[LoopSocket] = []
        # A response head's bytes -> (status, Content-Length, chunked, keep-alive).
        self._heads: dict[bytes, tuple[int, int | None, bool, bool]] = {}
        # At most ``connections`` sockets: a request that finds them all busy waits for one.
        self._slots = gevent.lock.BoundedSemaphore(connections)
        self._closed = False

    def frame(self, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole HTTP/1.1 request (head and body) for this transport's path: built once per tenant, and
        once more per request only for a request that differs (a traced one carries its id)."""
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.netloc}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    def send(self, wire: bytes | None = None) -> tuple[int, bytes]:
        """Send the request once (``wire``: another request from ``frame``); the response's (status code, body)."""
        wire = self.wire if wire is None else wire
        with self._slots:
            reused = bool(self._idle)
            sock = self._idle.pop() if reused else self._connect()
            try:
                status, body, keep = self._exchange(sock, wire)
            except ConnectionClosed:
                sock.close()
                if not reused:
                    raise
                # A kept-alive socket the server had closed while idle: once more on a fresh one.
                sock = self._connect()
                try:
                    status, body, keep = self._exchange(sock, wire)
                except BaseException:
                    sock.close()
                    raise
            except BaseException:
                sock.close()
                raise
            if keep and not self._closed:
                self._idle.append(sock)
            else:
                sock.close()
            return status, body

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _connect(self) -> LoopSocket:
        # timeout_s bounds each read and write, as geventhttpclient's network_timeout did.
        return LoopSocket(self.address, self.timeout_s, self.connect_timeout_s)

    def _exchange(self, sock: LoopSocket, wire: bytes) -> tuple[int, bytes, bool]:
        sock.sendall(wire)
        buf = sock.recv(RECV_BYTES)
        if not buf:
            raise ConnectionClosed("connection closed before the response")
        end = buf.find(_HEAD_END)
        while end < 0:
            more = sock.recv(RECV_BYTES)
            if not more:
                raise ConnectionClosed("connection closed in the response head")
            buf += more
            end = buf.find(_HEAD_END, max(0, len(buf) - len(more) - 3))
        head = buf[:end]
        parsed = self._heads.get(head)
        if parsed is None:
            parsed = _parse_head(head)
            if len(self._heads) < HEADS_KEPT:
                self._heads[head] = parsed
        status, length, chunked, keep = parsed
        rest = buf[end + 4 :]
        if chunked:
            return status, _read_chunked(sock, rest), keep
        if length is None:  # no framing: the body runs to the end of the connection
            return status, _read_to_close(sock, rest), False
        while len(rest) < length:
            more = sock.recv(max(RECV_BYTES, length - len(rest)))
            if not more:
                raise ConnectionClosed("connection closed in the response body")
            rest += more
        return status, rest[:length], keep


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """A response head's status code, Content-Length (None without one), chunked framing and keep-alive."""
    lines = head.split(b"\r\n")
    status = int(lines[0][9:12])  # "HTTP/1.1 200 OK"
    # HTTP/1.1 keeps the connection unless the server says "close"; HTTP/1.0 only with "keep-alive".
    length, chunked, keep = None, False, lines[0].startswith(b"HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value == b"keep-alive" if value in (b"keep-alive", b"close") else keep
    return status, length, chunked, keep


def _read_chunked(sock: LoopSocket, buf: bytes) -> bytes:
    """A chunked body (RFC 9112, 7.1): size line, data, CRLF, ..., a zero-size chunk, trailers, CRLF."""
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n")
        while line_end < 0:
            buf += _recv_more(sock)
            line_end = buf.find(b"\r\n")
        size = int(buf[:line_end].split(b";", 1)[0], 16)
        buf = buf[line_end + 2 :]
        if size == 0:
            while not (buf.startswith(b"\r\n") or _HEAD_END in buf):  # skip trailers up to the blank line
                buf += _recv_more(sock)
            return bytes(body)
        while len(buf) < size + 2:
            buf += _recv_more(sock)
        body += buf[:size]
        buf = buf[size + 2 :]


def _read_to_close(sock: LoopSocket, buf: bytes) -> bytes:
    while True:
        more = sock.recv(RECV_BYTES)
        if not more:
            return buf
        buf += more


def _recv_more(sock: LoopSocket) -> bytes:
    more = sock.recv(RECV_BYTES)
    if not more:
        raise ConnectionClosed("connection closed in a chunked body")
    return more
