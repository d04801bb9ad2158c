"""Locust as a library: one User class per tenant, open-loop dispatch from a seeded schedule.

Locust's Users are closed-loop by nature (a User waits for its response). For open-loop arrivals a
tenant's single User is a *dispatcher*: it sleeps until just before each scheduled time and hands the
request to an idle sender greenlet (``perseus.load.senders``), which sends it once due
(``perseus.load.timing.HeadStart``), so a slow server never delays the next arrival.
Latency counts from the scheduled time (MLPerf LoadGen's rule), so a stall shows up as latency
instead of hiding (no coordinated omission). Closed-loop tenants get ``concurrency`` Users that each send, wait, repeat.

Under ``perseus ui`` and ``--workers`` every request is also fired as a Locust ``request`` event, so
Locust's own statistics, web UI and master see the load; a plain run skips it, since nothing reads
them there. perseus computes percentiles only from its own raw records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import gevent.event
import gevent.hub
import numpy as np
from gevent.pool import Group
from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser

from perseus.analysis.spans import request_id
from perseus.kinds import is_open_loop
from perseus.load.grpc_wire import GrpcError, GrpcWireTransport
from perseus.load.inputs import Request
from perseus.load.senders import Senders
from perseus.load.timing import HeadStart, deadline_waiter
from perseus.load.wire import WireTransport
from perseus.records import StreamWriter

# Connections per open-loop tenant. A request that finds every connection busy waits for one, and
# that wait is charged to latency (it counts from the scheduled time), so this bounds nothing that
# matters for correctness; it only needs to exceed the expected number of requests in flight.
OPEN_LOOP_CONNECTIONS = 256
CONNECT_TIMEOUT_S = 5.0
ABORT_GRACE_S = 2.0
# Ctrl-C, and SIGTERM (which the CLI turns into KeyboardInterrupt), can land in any greenlet, most
# often the hub's. gevent then prints a traceback before passing the interrupt on to the main
# greenlet, where perseus handles it. An interrupt is not an error: pass it on without the traceback.
if KeyboardInterrupt not in gevent.hub.Hub.NOT_ERROR:
    gevent.hub.Hub.NOT_ERROR = (*gevent.hub.Hub.NOT_ERROR, KeyboardInterrupt)


@dataclass
class TenantLoad:
    """What one tenant sends, and its live counters (read by the progress display)."""

    tenant: str
    model: str
    deployment: str
    request: Request | None
    arrival: str  # poisson | constant | step | spike | trace | closed
    schedule: np.ndarray | None = None  # open loop: seconds from measurement start
    concurrency: int = 1  # closed loop
    sent: int = 0
    done: int = 0
    errors: int = 0
    measured_done: int = 0
    last_error: str | None = None
    finished: gevent.event.Event = field(default_factory=lambda: gevent.event.Event())
    # How requests travel: None is Triton over the request's protocol (HTTP or gRPC); otherwise a
    # factory(connections) -> object with send() -> (ok, error, response bytes) and close(), e.g. the
    # embedded in-process model.
    transport: Callable | None = None

    @property
    def open_loop(self) -> bool:
        return is_open_loop(self.arrival)


class HttpTransport:
    """Triton's HTTP/REST inference protocol with a prebuilt request, on pooled keep-alive sockets."""

    def __init__(self, url: str, request: Request, connections: int, timeout_s: float):
        self.request = request
        self.wire = WireTransport(
            url, request.path, request.body, request.headers, connections, timeout_s, CONNECT_TIMEOUT_S
        )

    def send(self, request_id: str | None = None) -> tuple[bool, str | None, int]:
        """One inference; ``request_id`` (tracing) goes into the request's JSON header as its ``id``."""
        if request_id is None:
            status, payload = self.wire.send()
        else:
            status, payload = self.wire.send(self.wire.frame(*self.request.tagged(request_id)))
        if status == 200:
            return True, None, len(payload)
        return False, f"HTTP {status}: {_error_text(payload)}", len(payload)

    def close(self) -> None:
        self.wire.close()


class GrpcTransport:
    """Triton's gRPC inference protocol: the prebuilt ``ModelInferRequest`` as prebuilt HTTP/2 frames, on
    pooled connections (``perseus.load.grpc_wire``), so no protobuf message is built or parsed per
    request."""

    def __init__(self, address: str, request: Request, connections: int, timeout_s: float):
        self.request = request
        self.wire = GrpcWireTransport(address, request.path, request.body, connections, timeout_s, CONNECT_TIMEOUT_S)

    def send(self, request_id: str | None = None) -> tuple[bool, str | None, int]:
        """One inference; ``request_id`` (tracing) becomes the ModelInferRequest's ``id``."""
        try:
            payload = self.wire.send() if request_id is None else self.wire.send(self.request.tagged(request_id)[0])
        except GrpcError as exc:
            return False, str(exc), 0
        return True, None, len(payload)

    def close(self) -> None:
        self.wire.close()


class LoadRun:
    """One deployment's load: all tenants, one Locust environment, one recorder."""

    def __init__(
        self,
        url: str,
        tenants: list[TenantLoad],
        recorder: StreamWriter,
        *,
        warmup_s: float,
        duration_s: float,
        request_timeout_s: float,
        grpc_address: str = "",
        tag_requests: bool = False,
    ):
        """``grpc_address``: the server's gRPC endpoint (host:port), for tenants whose request is gRPC.
        ``tag_requests``: send each request to Triton with its id (``spans.request_id``), for tracing."""
        self.url = url
        self.grpc_address = grpc_address
        self.tag_requests = tag_requests
        self.tenants = tenants
        self.recorder = recorder
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.request_timeout_s = request_timeout_s
        self.t0 = 0.0  # perf_counter() at measurement start
        self.abort_reason: str | None = None
        self.env: Environment | None = None
        # Each open-loop dispatcher's way to wait for its next arrival, and how early it wakes for it
        # (perseus/load/timing.py); benchmarks/dispatch.py swaps them.
        self.new_waiter = deadline_waiter
        self.new_head_start = HeadStart
        # Whether each record is also a Locust request event: for Locust's statistics, which only a web
        # UI (perseus ui) or a master (--workers) reads. ``start()``, the plain run, has neither.
        self.request_events = True

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the measurement start (negative during warm-up)."""
        return time.perf_counter() - self.t0

    # -- one request ---------------------------------------------------------------------------
    def _transport(self, load: TenantLoad, connections: int):
        if load.transport is not None:
            return load.transport(connections)
        if load.request.protocol == "grpc":
            return GrpcTransport(self.grpc_address, load.request, connections, self.request_timeout_s)
        return HttpTransport(self.url, load.request, connections, self.request_timeout_s)

    def _send(self, load: TenantLoad, transport, scheduled: float) -> None:
        """Send one request and record it. ``scheduled`` is seconds from measurement start."""
        load.sent += 1
        sent = self.now()
        ok, error, size = False, None, 0
        try:
            try:
                if self.tag_requests and load.transport is None:
                    ok, error, size = transport.send(request_id(load.tenant, scheduled))
                else:
                    ok, error, size = transport.send()
            except gevent.GreenletExit:
                error = f"aborted: {self.abort_reason or 'request still in flight at the drain timeout'}"
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        finally:
            self._record(load, scheduled, sent, self.now(), ok, error, size)

    def _record(self, load: TenantLoad, scheduled, sent, done, ok, error, size) -> None:
        latency_ms = (done - scheduled) * 1e3
        warmup = scheduled < 0
        load.done += 1
        if not ok:
            load.errors += 1
            load.last_error = error
        elif not warmup:
            load.measured_done += 1
        self.recorder.add(
            (
                load.tenant,
                load.model,
                load.deployment,
                scheduled,
                sent,
                done,
                latency_ms,
                (done - sent) * 1e3,
                ok,
                error,
                warmup,
            )
        )
        if self.request_events and self.env is not None:
            self.env.events.request.fire(
                request_type="infer",
                name=load.tenant,
                response_time=latency_ms,
                response_length=size,
                exception=None if ok else RuntimeError(error),
                context={"deployment": load.deployment},
            )

    # -- tenants -------------------------------------------------------------------------------
    def _dispatch(self, load: TenantLoad) -> None:
        """Open loop: issue each request at its scheduled time, never waiting for responses."""
        client = self._transport(load, OPEN_LOOP_CONNECTIONS)
        head = self.new_head_start()

        def send_when_due(scheduled: float) -> None:
            head.until_due(scheduled, self.now)
            self._send(load, client, scheduled)

        inflight = Senders(send_when_due)
        waiter = self.new_waiter(self.t0)
        try:
            for scheduled in load.schedule:
                if self.abort_reason:
                    break
                waiter.wait_until(head.wake_at(scheduled))  # early: the sender waits out the rest
                inflight.submit(float(scheduled))
            # Give in-flight requests up to the request timeout; an aborted run (server gone) fails fast.
            inflight.join(timeout=ABORT_GRACE_S if self.abort_reason else self.request_timeout_s)
        finally:
            inflight.kill()
            waiter.close()
            client.close()
            load.finished.set()

    def _closed_user(self, load: TenantLoad, client, stop_at: float) -> None:
        while not self.abort_reason and self.now() < stop_at:
            now = self.now()
            self._send(load, client, now)

    def _closed(self, load: TenantLoad) -> None:
        """Closed loop: ``concurrency`` users, each sending its next request when the last returns."""
        client = self._transport(load, load.concurrency)
        users = Group()
        try:
            for _ in range(load.concurrency):
                users.spawn(self._closed_user, load, client, self.duration_s)
            users.join(timeout=self.warmup_s + self.duration_s + self.request_timeout_s + 1)
        finally:
            users.kill(block=True)
            client.close()
            load.finished.set()

    # -- Locust --------------------------------------------------------------------------------
    def _user_class(self, load: TenantLoad) -> type[User]:
        run = self
        body = run._dispatch if load.open_loop else run._closed

        class TenantUser(User):
            fixed_count = 1
            wait_time = constant(0)
            host = run.url

            @task
            def drive(self) -> None:
                body(load)
                raise StopUser()

        TenantUser.__name__ = load.tenant
        TenantUser.__doc__ = f"tenant {load.tenant}: model {load.model}, {load.arrival} load"
        return TenantUser

    def user_classes(self) -> list[type[User]]:
        """One Locust User class per tenant, named after it (``fixed_count = 1``: one driver each)."""
        return [self._user_class(t) for t in self.tenants]

    def begin(self, lead_s: float = 0.5) -> None:
        """Fix the measurement start: ``warmup_s`` after a short lead for spawning the users.

        ``start()`` calls it; a run driven from an Environment made elsewhere (``perseus ui``) sets
        ``env`` and calls it when that Environment's test starts.
        """
        self.t0 = time.perf_counter() + lead_s + self.warmup_s

    def start(self, lead_s: float = 0.5) -> None:
        """Start every tenant; measurement begins ``warmup_s`` after a short lead for spawning."""
        self.env = Environment(user_classes=self.user_classes())
        # No web UI and no master reads this Environment's statistics. Firing the event anyway cost
        # 30-60 us of CPU per request at 40 req/s (A/B in one process, three pairs, benchmarks.dispatch
        # on the no-work model; about 2.5 us with warm caches): the generator's CPU is the server's.
        self.request_events = False
        self.begin(lead_s)
        runner = self.env.create_local_runner()
        runner.start(user_count=len(self.tenants), spawn_rate=max(100, len(self.tenants)))

    def drive(self) -> None:
        """Run every tenant's driver here, without a Locust runner of its own (a Locust worker's shard).

        ``t0`` must be set by the caller; returns when every tenant is done.
        """
        drivers = Group()
        for load in self.tenants:
            drivers.spawn(self._dispatch if load.open_loop else self._closed, load)
        try:
            drivers.join()
        finally:
            drivers.kill(block=True)

    def finished(self) -> bool:
        return all(t.finished.is_set() for t in self.tenants)

    def abort(self, reason: str) -> None:
        self.abort_reason = reason

    def stop(self) -> None:
        if self.env is not None and self.env.runner is not None:
            self.env.runner.quit()

    def run(self, tick: Callable[[], None], tick_s: float = 0.5) -> None:
        """Start, then call ``tick`` (progress, flushing, health checks) until every tenant is done."""
        self.start()
        try:
            while not self.finished():
                gevent.sleep(tick_s)
                tick()
        except KeyboardInterrupt:
            self.abort("interrupted")
            raise
        finally:
            self.stop()


def _error_text(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("error", ""))[:500]
    except (ValueError, AttributeError):
        return payload[:200].decode(errors="replace")
