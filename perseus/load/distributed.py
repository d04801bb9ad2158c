"""Load from several processes or machines, on Locust's own master/worker mode.

``perseus run --workers N`` makes the run's process a Locust master (``MasterRunner``) and starts N
``perseus worker`` processes (``WorkerRunner``); more workers may join from other machines. The
master never sends load itself. For each deployment it sends every worker a plan (the scenario, the
deployment, the server URL, the worker's shard number, the measurement start as wall-clock time),
then starts one Locust user per worker, and that user drives the worker's shard:

- open-loop tenants: every worker builds the tenant's whole seeded schedule, exactly as a single
  process would, and sends arrivals ``shard, shard + n, shard + 2n, ...``. The shards partition the
  schedule, so together the workers send each scheduled request once: no loss, no duplicate.
- closed-loop tenants: the ``concurrency`` users are split as evenly as possible.

Workers stream their records back in numbered batches over Locust's message channel (ZeroMQ) every
half second; the master writes them to the deployment's ``requests.parquet`` as they arrive. At the
end each worker says how many batches and records it sent, and the master checks that it got exactly
those (a duplicated batch is dropped, a missing one fails the deployment with the count).

Latency is measured inside each worker (scheduled and done on its own clock), so clock offsets
between machines shift the time axis a little but never the latencies. Across machines, keep clocks
NTP-synchronised so the shards start together.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gevent
from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import STATE_MISSING

from perseus import children
from perseus.errors import PerseusError
from perseus.load.build import build_load_run
from perseus.load.engine import ABORT_GRACE_S, LoadRun, TenantLoad
from perseus.load.shards import check_plan, scenario_from_plan, shard_loads
from perseus.plan import Deployment
from perseus.ports import LOOPBACK, free_ports

PLAN, RECORDS, DONE, ABORT = "perseus_plan", "perseus_records", "perseus_done", "perseus_abort"
# Between sending the plans and the start of warm-up: time for every worker to build its requests
# (one metadata call to the server) and get its Locust user running.
LEAD_S = 2.0
SEND_PERIOD_S = 0.5  # how often a worker sends its records to the master
CONNECT_TIMEOUT_S = 60.0  # for the expected workers to connect
# After an abort, how long the master waits for workers to send what they measured.
DRAIN_S = ABORT_GRACE_S + 3.0
WAIT_NOTE_EVERY_S = 5.0


class WorkerError(PerseusError):
    """Workers did not connect, or one was lost or failed during a deployment."""


def _shard_user(run_shard: Callable[[], None] | None) -> type[User]:
    """One Locust user per worker; the same class name on master and workers (Locust matches them by name)."""

    class perseus_shard(User):  # the name Locust shows and matches on
        """drives this worker's shard of every tenant of the deployment"""

        wait_time = constant(0)

        @task
        def drive(self) -> None:
            if run_shard is not None:
                run_shard()
            raise StopUser()

    return perseus_shard


def _quiet_locust() -> None:
    # Locust logs every worker connect and spawn at INFO; perseus says what matters itself.
    logging.getLogger("locust").setLevel(logging.WARNING)


# -- master ---------------------------------------------------------------------------------------
@dataclass
class _Shard:
    client_id: str
    number: int
    batches: set[int] = field(default_factory=set)
    records: int = 0
    duplicates: int = 0
    counters: dict[str, list[int]] = field(default_factory=dict)
    done: dict | None = None  # the worker's final report: batches and records it sent

    @property
    def label(self) -> str:
        """How reasons name it: its shard number, and Locust's id (host name + random), as in the manifest."""
        return f"worker {self.number} ({self.client_id})"

    @property
    def complete(self) -> bool:
        """Every batch the worker says it sent arrived, once."""
        return (
            self.done is not None and len(self.batches) == self.done["batches"] and self.records == self.done["records"]
        )


class Master:
    """The Locust master inside ``perseus run``, and the local worker processes it started."""

    def __init__(
        self,
        *,
        local_workers: int,
        expect_workers: int,
        bind: str = LOOPBACK,
        port: int | None = None,
        log_dir: Path | None = None,
        message: Callable[[str], None] = lambda text: None,
    ):
        self.local_workers = local_workers
        self.expect_workers = max(expect_workers, local_workers)
        self.bind = bind
        self.port = port
        self.log_dir = log_dir
        self.message = message
        self.env: Environment | None = None
        self.runner = None
        self.procs: list[subprocess.Popen] = []
        self.current: DistributedLoad | None = None
        self._failed: str | None = None

    def __enter__(self) -> Master:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        _quiet_locust()
        # Bound to every interface (0.0.0.0, only when the user asks), the master is still reached on loopback here.
        host = LOOPBACK if ipaddress.ip_address(self.bind).is_unspecified else self.bind
        if self.port is None:
            self.port = free_ports(1, host)[0]
        self.env = Environment(user_classes=[_shard_user(None)])
        try:
            self.runner = self.env.create_master_runner(master_bind_host=self.bind, master_bind_port=self.port)
        except Exception as exc:  # zmq: address in use, bad interface
            raise WorkerError(f"cannot listen for workers on {self.bind}:{self.port}: {exc}") from None
        for kind, handler in ((RECORDS, self._on_records), (DONE, self._on_done)):
            self.runner.register_message(kind, handler)
        for i in range(self.local_workers):
            self.procs.append(self._spawn(i, host))

    def _spawn(self, i: int, host: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "perseus", "worker", "--master", host, "--master-port", str(self.port)]
        log = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            # Its own session: a Ctrl-C in the terminal reaches the master, which stops the workers in order.
            # It dies with perseus (SIGKILL included), and sees only an allowlist of perseus's environment.
            return children.spawn(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=children.worker_environment(),
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()

    def ready_clients(self) -> list[str]:
        """Connected workers that are idle, in the order of Locust's worker index."""
        ready = [c.id for c in self.runner.clients.ready]
        return sorted(ready, key=self.runner.get_worker_index)

    def wait_ready(self, timeout_s: float = CONNECT_TIMEOUT_S) -> list[str]:
        if self._failed:
            raise WorkerError(self._failed)
        deadline = time.monotonic() + timeout_s
        next_note = time.monotonic() + WAIT_NOTE_EVERY_S
        while len(ready := self.ready_clients()) < self.expect_workers:
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    self._failed = f"worker process {i} exited with code {proc.returncode}{self._log_hint(i)}"
                    raise WorkerError(self._failed)
            if time.monotonic() > deadline:
                self._failed = (
                    f"only {len(ready)} of {self.expect_workers} workers connected to "
                    f"{self.bind}:{self.port} within {timeout_s:g} s"
                )
                raise WorkerError(self._failed)
            if time.monotonic() > next_note:
                next_note += WAIT_NOTE_EVERY_S
                self.message(f"waiting for workers: {len(ready)} of {self.expect_workers} ready on port {self.port}")
            gevent.sleep(0.1)
        return ready[: self.expect_workers]

    def _log_hint(self, i: int) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"worker-{i}.log"
        try:
            last = path.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            last = []
        return f": {last[0]}" if last else f" (see {path})"

    def lost(self, client_id: str) -> bool:
        client = self.runner.clients.get(client_id)
        return client is None or client.state == STATE_MISSING

    def _on_records(self, environment, msg) -> None:
        if self.current is not None:
            self.current.receive(msg.node_id, msg.data)

    def _on_done(self, environment, msg) -> None:
        if self.current is not None:
            self.current.finish(msg.node_id, msg.data)

    def close(self) -> None:
        if self.runner is not None:
            # Best effort: the local workers are stopped below anyway.
            with contextlib.suppress(Exception):
                self.runner.quit()
            self.runner = None
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []


class DistributedLoad:
    """One deployment's load through the master: the same face as ``LoadRun`` to the experiment."""

    def __init__(
        self,
        master: Master,
        plan: dict,
        tenants: list[TenantLoad],
        recorder,
        *,
        warmup_s: float,
        duration_s: float,
        request_timeout_s: float,
    ):
        self.master = master
        self.plan = plan  # scenario JSON, deployment, url, served: the same for every worker
        self.tenants = tenants  # counters only, for the progress display
        self.recorder = recorder
        self.warmup_s, self.duration_s, self.request_timeout_s = warmup_s, duration_s, request_timeout_s
        self.token = uuid.uuid4().hex
        self.t0 = 0.0
        self.abort_reason: str | None = None
        self.shards: dict[str, _Shard] = {}
        self.problems: list[str] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    # -- messages from workers (run in the master's receiving greenlet) ------------------------
    def receive(self, client_id: str, data: dict) -> None:
        shard = self.shards.get(client_id)
        if shard is None or data.get("token") != self.token:
            return  # a late batch from an earlier deployment
        if data["seq"] in shard.batches:
            shard.duplicates += 1
            return
        shard.batches.add(data["seq"])
        for row in data["rows"]:
            self.recorder.add(tuple(row))
        shard.records += len(data["rows"])
        shard.counters = data["counters"]
        self._update_counters()

    def finish(self, client_id: str, data: dict) -> None:
        shard = self.shards.get(client_id)
        if shard is None or data.get("token") != self.token:
            return
        shard.done = data
        if data.get("error"):
            self.abort(f"{shard.label}: {data['error']}")

    def _update_counters(self) -> None:
        totals: dict[str, list[int]] = {}
        for shard in self.shards.values():
            for tenant, values in shard.counters.items():
                acc = totals.setdefault(tenant, [0, 0, 0, 0])
                for k, v in enumerate(values):
                    acc[k] += v
        for load in self.tenants:
            load.sent, load.done, load.errors, load.measured_done = totals.get(load.tenant, (0, 0, 0, 0))

    # -- the run ---------------------------------------------------------------------------------
    def finished(self) -> bool:
        return bool(self.shards) and all(s.done is not None for s in self.shards.values())

    def abort(self, reason: str) -> None:
        if self.abort_reason:
            return
        self.abort_reason = reason
        for client_id in self.shards:
            self.master.runner.send_message(ABORT, {"token": self.token, "reason": reason}, client_id=client_id)

    def run(self, tick: Callable[[], None], tick_s: float = 0.5) -> None:
        runner = self.master.runner
        clients = self.master.wait_ready()
        self.shards = {cid: _Shard(cid, i) for i, cid in enumerate(clients)}
        t0_epoch = time.time() + LEAD_S + self.warmup_s
        self.t0 = time.perf_counter() + (t0_epoch - time.time())
        self.master.current = self
        for cid, shard in self.shards.items():
            plan = {**self.plan, "token": self.token, "shard": shard.number, "shards": len(clients), "t0": t0_epoch}
            runner.send_message(PLAN, plan, client_id=cid)
        try:
            runner.start(user_count=len(clients), spawn_rate=len(clients))
            drain_until = None
            while not self.finished():
                gevent.sleep(tick_s)
                tick()
                self._check_workers()
                if self.abort_reason:
                    drain_until = drain_until or time.monotonic() + DRAIN_S
                    if time.monotonic() > drain_until:
                        break
                elif self.now() > self.duration_s + self.request_timeout_s + DRAIN_S:
                    self.abort("workers did not finish within the request timeout after the last arrival")
        except KeyboardInterrupt:
            self.abort("interrupted")
            self._drain()
            raise
        finally:
            runner.stop()
            self.master.current = None
            self._verify()

    def _drain(self) -> None:
        """After Ctrl-C: give workers a moment to send what they measured (a second Ctrl-C skips it)."""
        deadline = time.monotonic() + DRAIN_S
        while not self.finished() and time.monotonic() < deadline:
            gevent.sleep(0.1)

    def _check_workers(self) -> None:
        for shard in self.shards.values():
            if shard.done is None and self.master.lost(shard.client_id):
                self.abort(f"{shard.label} stopped answering")

    def _verify(self) -> None:
        """Every batch a worker says it sent arrived exactly once; otherwise the deployment failed."""
        for shard in self.shards.values():
            if shard.done is None:
                self.problems.append(f"{shard.label}: no final report; {shard.records} records received")
                continue
            if not shard.complete:
                self.problems.append(
                    f"{shard.label}: received {shard.records} of {shard.done['records']} records "
                    f"({len(shard.batches)} of {shard.done['batches']} batches)"
                )
        if self.problems and not self.abort_reason:
            self.abort_reason = "; ".join(self.problems)

    def summary(self) -> list[dict]:
        """Per worker, for the manifest: who sent what, and that it all arrived."""
        return [
            {
                "worker": s.number,
                "client_id": s.client_id,
                "records": s.records,
                "batches": len(s.batches),
                "duplicate_batches_dropped": s.duplicates,
                "complete": s.complete,
            }
            for s in self.shards.values()
        ]


# -- worker ---------------------------------------------------------------------------------------
class _Outbox:
    """A worker's recorder: rows collect here and go to the master in numbered batches."""

    def __init__(self, runner, token: str, loads: list[TenantLoad]):
        self.runner, self.token, self.loads = runner, token, loads
        self.rows: list[tuple] = []
        self.seq = 0
        self.count = 0

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        self.count += 1

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        counters = {load.tenant: [load.sent, load.done, load.errors, load.measured_done] for load in self.loads}
        self.runner.send_message(RECORDS, {"token": self.token, "seq": self.seq, "rows": rows, "counters": counters})
        self.seq += 1

    def close(self, error: str | None = None) -> None:
        if self.rows or self.seq == 0:
            self.flush()
        self.runner.send_message(
            DONE, {"token": self.token, "batches": self.seq, "records": self.count, "error": error}
        )


class Worker:
    """``perseus worker``: a Locust worker that runs the shards the master plans."""

    def __init__(self, master_host: str, master_port: int, server_url: str | None = None, say=print):
        self.master_host, self.master_port = master_host, master_port
        self.server_url = server_url
        self.say = say
        self.plan: dict | None = None
        self.run: LoadRun | None = None
        self.env: Environment | None = None

    def serve(self) -> None:
        """Connect, then run shards until the master ends the run."""
        _quiet_locust()
        self.env = Environment(user_classes=[_shard_user(self._run_shard)])
        try:
            runner = self.env.create_worker_runner(self.master_host, self.master_port)
        except Exception as exc:  # Locust raises ConnectionError after its retries
            raise WorkerError(f"cannot reach the master at {self.master_host}:{self.master_port}: {exc}") from None
        runner.register_message(PLAN, self._on_plan)
        runner.register_message(ABORT, self._on_abort)
        self.say(f"perseus worker: connected to {self.master_host}:{self.master_port}")
        runner.greenlet.join()

    def _on_plan(self, environment, msg) -> None:
        self.plan = msg.data

    def _on_abort(self, environment, msg) -> None:
        if self.run is not None and self.plan and msg.data.get("token") == self.plan["token"]:
            self.run.abort(msg.data["reason"])

    def _run_shard(self) -> None:
        plan, runner = self.plan, self.env.runner
        if plan is None:
            return
        outbox = _Outbox(runner, plan["token"], [])
        error = None
        try:
            self.run = build_shard(plan, self.server_url or plan["url"], outbox)
            self.run.env = self.env  # its requests show in Locust's statistics, on the master too
            outbox.loads = self.run.tenants
            self.say(f"perseus worker: {plan['deployment']['name']}: shard {plan['shard'] + 1} of {plan['shards']}")
            sender = gevent.spawn(_send_every, outbox, SEND_PERIOD_S)
            try:
                self.run.drive()
            finally:
                sender.kill()
        except Exception as exc:  # a worker that cannot reach the server says so, and the master fails the deployment
            error = f"{type(exc).__name__}: {exc}"
        finally:
            outbox.close(error)
            self.run = None


def _send_every(outbox: _Outbox, period_s: float) -> None:
    while True:
        gevent.sleep(period_s)
        outbox.flush()


def build_shard(plan: dict, url: str, recorder) -> LoadRun:
    """The worker's LoadRun: the whole deployment's load, built exactly as one process builds it, then sharded.

    The plan comes from the network: it is checked whole before anything is built or written."""
    checked, _ = check_plan(plan)
    deployment = Deployment(**{**checked.deployment.model_dump(), "tenants": tuple(checked.deployment.tenants)})
    with tempfile.TemporaryDirectory(prefix="perseus-worker-") as tmp:
        scenario = scenario_from_plan(plan, Path(tmp))  # trace files are read while the schedules are built
        run = build_load_run(
            scenario, deployment, url, recorder, plan["served"], source_repo=None, grpc_address=checked.grpc_address
        )
    run.tenants = shard_loads(run.tenants, plan["shard"], plan["shards"])
    # The measurement start as this machine's perf_counter: every worker starts at the same wall time.
    run.t0 = time.perf_counter() + (plan["t0"] - time.time())
    return run
