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

import pyarrow as pa
import pyarrow.parquet as pq

from perseus import results
from perseus.analysis import spans
from perseus.load.build import build_load_run, counting_loads
from perseus.load.distributed import DistributedLoad
from perseus.load.engine import LoadRun
from perseus.load.shards import make_plan
from perseus.manifest import INTERRUPTED_REASON, Status
from perseus.plan import Deployment
from perseus.progress import Progress, phase_clock
from perseus.records import StreamWriter
from perseus.scenario import Scenario
from perseus.server import backend_log, tracing
from perseus.server.factory import server_for
from perseus.server.local import log_tail as tail_of
from perseus.telemetry import frameworks, host, scrapes, triton
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
    failed_scrapes: dict[str, int] | None = None  # telemetry source -> scrapes that failed (none: None)
    providers: dict[str, list[str]] | None = None  # tenant -> the onnxruntime execution providers it ran on
    batch_fallbacks: dict[str, int] | None = None  # tenant -> failed batched executions rerun one by one

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
            "failed_scrapes": self.failed_scrapes,
            "providers": self.providers,
            "batch_fallbacks": self.batch_fallbacks,
            "reason": self.reason,
            "server_log_tail": self.server_log_tail,
        }


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
        self.scrapes = scrapes.ScrapeCounts()
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
            grpc = self.server.grpc_address
            return build_load_run(scenario, deployment, url, self.recorder, served, self.source_repo, grpc)
        # The load is sent by the master's workers; the tenants here only count, for the display.
        return DistributedLoad(
            self.workers,
            make_plan(scenario, deployment, url, served, self.server.grpc_address),
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
            taken = self.scrapes.take
            if kind == "triton":
                for row in taken(scrapes.TRITON_METRICS, triton.sample_rows(self.server.metrics_url, now)):
                    self.telemetry.add(row)
                for row in taken(scrapes.TRITON_STATS, triton.stats_rows(self.server.url, now)):
                    self.telemetry.add(row)
            else:  # MLServer's and BentoML's own counters; they have no statistics API
                rows = frameworks.sample_rows(self.server.metrics_url, kind, now)
                for row in taken(scrapes.FRAMEWORK_METRICS, rows):
                    self.telemetry.add(row)
            for _, rows in host.sample_rows(self._samplers, now):
                for row in taken(scrapes.HOST, rows):
                    self.telemetry.add(row)
        for row in self.gpu_sampler.drain() if self.gpu_sampler else ():
            self.telemetry.add(row)
        if now >= self._next_flush:
            self._next_flush = now + RECORD_FLUSH_PERIOD_S
            self.recorder.flush()
            self.telemetry.flush()
        phase, elapsed, total = phase_clock(now, self.scenario.run.warmup_s, self.scenario.run.duration_s)
        self.progress.update(self.index, self.deployment.name, phase, elapsed, total, run.tenants)

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
        providers = {}
        for load in run.tenants if run is not None else ():
            session = getattr(load.transport, "session", None)  # an embedded model's onnxruntime session
            if session is not None:
                providers[load.tenant] = list(session.get_providers())
            getattr(load.transport, "shutdown", lambda: None)()  # embedded models' thread pools
        if self.gpu_sampler is not None:
            self.gpu_sampler.stop()
            for row in self.gpu_sampler.drain():
                self.telemetry.add(row)
            self.scrapes.add_failures(scrapes.NVML, self.gpu_sampler.samples, self.gpu_sampler.failures)
        outcome.failed_scrapes = self.scrapes.failures() or None
        if self.server is not None:
            self.server.stop()
        # What each tenant really ran on: the embedded sessions, or what the backend model said in the log.
        log, served = self.dep_dir / results.SERVER_LOG, outcome.served or {}
        providers.update(backend_log.tenant_providers(log, served))
        outcome.providers = providers or None
        outcome.batch_fallbacks = backend_log.tenant_fallbacks(log, served) or None
        # An interrupt can land anywhere in open(), between any two of these: close only what exists.
        if self.recorder is not None:
            outcome.requests = self.recorder.count
            self.recorder.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self._tmp is not None:
            self._write_spans()
            self._tmp.cleanup()
        outcome.ended = results.utc_now()
        if log_tail and outcome.status != Status.COMPLETED and not outcome.server_log_tail:
            outcome.server_log_tail = tail_of(self.dep_dir / results.SERVER_LOG) or None
        return outcome

    def _write_spans(self) -> None:
        """Traced runs: the server's trace files, joined with requests.parquet, into spans.parquet.

        Read after the server stopped (it writes its last traces at exit) and the records closed.
        """
        trace_dir = Path(self._tmp.name) / tracing.TRACE_DIR
        requests_path = self.dep_dir / results.REQUESTS
        if not tracing.traced(self.scenario, self.deployment) or self.run is None or not requests_path.exists():
            return
        try:
            server, unreadable = tracing.read_traces(trace_dir)
            requests = pq.read_table(requests_path).to_pandas()
            table = pa.Table.from_pandas(spans.join(requests, server, self.run.t0), preserve_index=False)
            pq.write_table(table, self.dep_dir / results.SPANS)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            # The measurements are written already; a trace that cannot be joined costs only the spans.
            self.progress.message(f"{self.deployment.name}: no spans.parquet ({type(exc).__name__}: {exc})")
            return
        if unreadable:
            self.progress.message(f"{self.deployment.name}: trace files cut short, left out: {', '.join(unreadable)}")


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
