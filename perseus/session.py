"""One deployment's lifecycle, written once: open (server + records + load) -> measure (tick) -> close.

``perseus run`` (``experiment.run_deployment``) and ``perseus ui`` both drive a deployment through a
``DeploymentSession``; only who decides when the load starts differs (the run at once, the UI on
Start). Whatever happens (model load failure, server death, Ctrl-C), ``close`` stops the server and
writes the records measured so far.

Progress goes out through the small ``perseus.progress.Progress`` protocol: the command layer passes
its display (perseus/display.py), and nothing here knows how it is drawn.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perseus import results
from perseus.load.build import build_load_run, counting_loads
from perseus.load.distributed import DistributedLoad
from perseus.load.engine import LoadRun
from perseus.load.shards import make_plan
from perseus.manifest import INTERRUPTED_REASON, Status
from perseus.plan import Deployment
from perseus.progress import Progress
from perseus.records import StreamWriter
from perseus.scenario import Scenario
from perseus.server.factory import server_for
from perseus.server.local import log_tail as tail_of
from perseus.telemetry import frameworks, host, triton
from perseus.telemetry.nvml import GpuSampler

TELEMETRY_PERIOD_S = 1.0
RECORD_FLUSH_PERIOD_S = 1.0


@dataclass
class Outcome:
    status: Status
    started: str
    ended: str = ""
    reason: str | None = None
    server_log_tail: str | None = None
    requests: int = 0
    measured_s: float | None = None  # measured seconds, when the deployment stopped early
    served: dict[str, str] | None = None  # tenant -> model name on the server
    workers: list[dict] | None = None  # distributed load: what each worker sent and whether it all arrived

    def record_fields(self, duration_s: float) -> dict:
        """The manifest's fields for this outcome (``Manifest.finish``)."""
        return {
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            # A deployment cut short is analysed over the time it actually measured.
            "duration_s": duration_s if self.measured_s is None else min(duration_s, self.measured_s),
            "requests": self.requests,
            "served": self.served or None,
            "workers": self.workers,
            "reason": self.reason,
            "server_log_tail": self.server_log_tail,
        }


def phase_of(now_s: float, duration_s: float) -> str:
    return "warm-up" if now_s < 0 else ("measuring" if now_s < duration_s else "draining")


class DeploymentSession:
    """A deployment's server, record streams, load and telemetry, from ``open`` to ``close``."""

    def __init__(
        self,
        scenario: Scenario,
        deployment: Deployment,
        source_repo: Path,
        run_dir: Path,
        *,
        gpu: bool,
        progress: Progress,
        index: int = 1,
        workers=None,
        on_record: Callable[[tuple], None] | None = None,
    ):
        """``workers``: a ``perseus.load.distributed.Master`` whose workers send the load, or None.
        ``on_record``: also called with every request record (``perseus ui``'s live statistics)."""
        self.scenario, self.deployment, self.source_repo = scenario, deployment, source_repo
        self.gpu, self.progress, self.index, self.workers = gpu, progress, index, workers
        self.dep_dir = run_dir / deployment.name
        self.outcome = Outcome(status=Status.COMPLETED, started=results.utc_now())
        self.on_record = on_record
        self.recorder: StreamWriter | None = None
        self.telemetry: StreamWriter | None = None
        self.server = None
        self.run: LoadRun | DistributedLoad | None = None
        self.gpu_sampler: GpuSampler | None = None
        self._samplers: list = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._next_sample = self._next_flush = float("-inf")
        self._closed = False

    # -- open -------------------------------------------------------------------------------------------
    def open(self) -> LoadRun | DistributedLoad:
        """Folder and record streams, then the server (started and ready), then the load, built and waiting."""
        self.dep_dir.mkdir(parents=True, exist_ok=False)
        path = self.dep_dir / results.REQUESTS
        # The plain writer unless someone listens: add() runs once per request on the timing loop.
        self.recorder = (
            _Tapped(path, results.REQUEST_SCHEMA, self.on_record)
            if self.on_record
            else StreamWriter(path, results.REQUEST_SCHEMA)
        )
        self.telemetry = StreamWriter(self.dep_dir / results.TELEMETRY, results.TELEMETRY_SCHEMA)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"perseus-{self.deployment.name}-")
        self.server, served = server_for(
            self.scenario, self.deployment, self.source_repo, Path(self._tmp.name), self.dep_dir, self.gpu
        )
        self.outcome.served = served
        embedded = self.deployment.strategy == "embedded"
        self.progress.message(
            f"[{self.progress.position(self.index)}] {self.deployment.name}: "
            + ("loading the model in-process" if embedded else f"starting {_program(self.scenario.server.kind)}")
        )
        self.server.start()
        self.run = self._load(served)
        return self.run

    def _load(self, served: dict[str, str]) -> LoadRun | DistributedLoad:
        scenario, deployment, url = self.scenario, self.deployment, self.server.url
        if self.workers is None:
            return build_load_run(scenario, deployment, url, self.recorder, served, self.source_repo)
        # The load is sent by the master's workers; the tenants here only count, for the display.
        return DistributedLoad(
            self.workers,
            make_plan(scenario, deployment, url, served),
            counting_loads(scenario, deployment),
            self.recorder,
            warmup_s=scenario.run.warmup_s,
            duration_s=scenario.run.duration_s,
            request_timeout_s=scenario.run.request_timeout_s,
        )

    # -- measure ----------------------------------------------------------------------------------------
    def start_telemetry(self) -> None:
        """Process and GPU samplers, from the moment the load starts."""
        self._samplers, server_pids = host.process_samplers(self.server.pid())
        self.gpu_sampler = GpuSampler(self.run.now, period_s=self.scenario.run.gpu_sample_period_s, pids=server_pids)
        self.gpu_sampler.start()  # None, or the "no NVIDIA GPU" reason already in the manifest

    def tick(self) -> None:
        """Per-tick work while load runs: health check, telemetry, flushing, progress."""
        run, now = self.run, self.run.now()
        if not self.server.alive() and not run.abort_reason:
            run.abort(self.server.gone())
        if now >= self._next_sample:
            self._next_sample = now + TELEMETRY_PERIOD_S
            kind = self.scenario.server.kind
            if kind == "triton":
                for row in triton.sample_rows(self.server.metrics_url, now):
                    self.telemetry.add(row)
                for row in triton.stats_rows(self.server.url, now):
                    self.telemetry.add(row)
            else:  # MLServer's and BentoML's own counters; they have no statistics API
                for row in frameworks.sample_rows(self.server.metrics_url, kind, now):
                    self.telemetry.add(row)
            for sampler in self._samplers:
                for row in sampler.rows(now):
                    self.telemetry.add(row)
        for row in self.gpu_sampler.drain() if self.gpu_sampler else ():
            self.telemetry.add(row)
        if now >= self._next_flush:
            self._next_flush = now + RECORD_FLUSH_PERIOD_S
            self.recorder.flush()
            self.telemetry.flush()
        duration = self.scenario.run.duration_s
        self.progress.update(self.index, self.deployment.name, phase_of(now, duration), now, duration, run.tenants)

    def measure(self, check: Callable[[], None]) -> None:
        """Run the load to its end, ticking; ``check`` is called on every tick (it may raise an interrupt)."""
        self.start_telemetry()

        def tick() -> None:
            check()
            self.tick()

        try:
            self.run.run(tick)
        finally:
            if self.workers is not None:
                self.outcome.workers = self.run.summary()
        if self.run.abort_reason:
            self.fail(self.run.abort_reason)

    # -- outcomes ---------------------------------------------------------------------------------------
    def fail(self, reason: str, log_tail_text: str | None = None) -> None:
        self.outcome.status, self.outcome.reason = Status.FAILED, reason
        if log_tail_text:
            self.outcome.server_log_tail = log_tail_text

    def interrupt(self, reason: str = INTERRUPTED_REASON) -> None:
        self.outcome.status, self.outcome.reason = Status.INTERRUPTED, reason

    def stopped_at(self, measured_s: float) -> None:
        """The measurement ended early, after ``measured_s`` measured seconds."""
        self.outcome.measured_s = max(0.0, measured_s)

    # -- close ------------------------------------------------------------------------------------------
    def close(self, log_tail: bool = True) -> Outcome:
        """Stop everything and write what was measured; idempotent. Returns the outcome.

        ``log_tail``: quote the server log's tail in the outcome when the deployment did not complete."""
        if self._closed:
            return self.outcome
        self._closed = True
        outcome, run = self.outcome, self.run
        if outcome.status != Status.COMPLETED and outcome.measured_s is None and run is not None and run.t0:
            outcome.measured_s = max(0.0, run.now())
        for load in run.tenants if run is not None else ():
            getattr(load.transport, "shutdown", lambda: None)()  # embedded models' thread pools
        if self.gpu_sampler is not None:
            self.gpu_sampler.stop()
            for row in self.gpu_sampler.drain():
                self.telemetry.add(row)
        if self.server is not None:
            self.server.stop()
        if self.recorder is not None:
            outcome.requests = self.recorder.count
            self.recorder.close()
            self.telemetry.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        outcome.ended = results.utc_now()
        if log_tail and outcome.status != Status.COMPLETED and not outcome.server_log_tail:
            outcome.server_log_tail = tail_of(self.dep_dir / results.SERVER_LOG) or None
        return outcome


class _Tapped(StreamWriter):
    """The request recorder, also handing each record to a listener when there is one."""

    def __init__(self, path: Path, schema, listener: Callable[[tuple], None]):
        super().__init__(path, schema)
        self._listener = listener

    def add(self, row: tuple) -> None:
        super().add(row)
        self._listener(row)


def _program(kind: str) -> str:
    """The server program a kind starts, as the progress line names it."""
    return "tritonserver" if kind == "triton" else kind
