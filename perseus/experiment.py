"""Run one deployment: render repository -> start server -> warm-up + load + telemetry -> persist -> stop.

Whatever happens (model load failure, server death, Ctrl-C), the server is stopped and the records
measured so far are written.
"""

from __future__ import annotations

import json
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from perseus import results
from perseus.errors import PerseusError, ServerError
from perseus.load import arrivals
from perseus.load.engine import LoadRun, TenantLoad
from perseus.load.inputs import build_request
from perseus.load.interrupts import InterruptGuard
from perseus.load.recorder import StreamWriter
from perseus.plan import Deployment
from perseus.progress import RunDisplay
from perseus.scenario import Scenario
from perseus.server import repository
from perseus.server.local import LocalServer, log_tail
from perseus.telemetry import host, triton
from perseus.telemetry.nvml import GpuSampler

TELEMETRY_PERIOD_S = 1.0
RECORD_FLUSH_PERIOD_S = 1.0


@dataclass
class Outcome:
    status: str  # completed | failed | interrupted
    started: str
    ended: str = ""
    reason: str | None = None
    server_log_tail: str | None = None
    requests: int = 0
    measured_s: float | None = None  # measured seconds, when the deployment stopped early
    served: dict[str, str] | None = None  # tenant -> model name on the server
    workers: list[dict] | None = None  # distributed load: what each worker sent and whether it all arrived

    def manifest_entry(self, deployment: Deployment, duration_s: float) -> dict:
        entry = {
            "tenants": list(deployment.tenants),
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            # A deployment cut short is analysed over the time it actually measured.
            "duration_s": duration_s if self.measured_s is None else min(duration_s, self.measured_s),
            "requests": self.requests,
        }
        if self.served:
            entry["served"] = self.served
        if self.workers is not None:
            entry["workers"] = self.workers
        if self.reason:
            entry["reason"] = self.reason
        if self.server_log_tail:
            entry["server_log_tail"] = self.server_log_tail
        return entry


class _Ticker:
    """Per-tick work while load runs: health check, flushing, telemetry, progress."""

    def __init__(self, run: LoadRun, server: LocalServer, recorder, telemetry, samplers, gpu_sampler, show):
        self.run, self.server, self.recorder, self.telemetry = run, server, recorder, telemetry
        self.samplers, self.gpu_sampler, self.show = samplers, gpu_sampler, show
        self._next_sample = self._next_flush = float("-inf")

    def __call__(self) -> None:
        now = self.run.now()
        if not self.server.alive() and not self.run.abort_reason:
            self.run.abort(self.server.gone())
        if now >= self._next_sample:
            self._next_sample = now + TELEMETRY_PERIOD_S
            for row in triton.sample_rows(self.server.metrics_url, now):
                self.telemetry.add(row)
            for sampler in self.samplers:
                for row in sampler.rows(now):
                    self.telemetry.add(row)
        for row in self.gpu_sampler.drain():
            self.telemetry.add(row)
        if now >= self._next_flush:
            self._next_flush = now + RECORD_FLUSH_PERIOD_S
            self.recorder.flush()
            self.telemetry.flush()
        self.show(now)


def run_deployment(
    scenario: Scenario,
    deployment: Deployment,
    source_repo: Path,
    run_dir: Path,
    *,
    gpu: bool,
    display: RunDisplay,
    index: int,
    workers=None,
) -> Outcome:
    """``workers``: a ``perseus.load.distributed.Master`` to send the load from its workers, or None."""
    dep_dir = run_dir / deployment.name
    dep_dir.mkdir(parents=True, exist_ok=False)
    outcome = Outcome(status="completed", started=results.utc_now())
    recorder = StreamWriter(dep_dir / results.REQUESTS, results.REQUEST_SCHEMA)
    telemetry = StreamWriter(dep_dir / results.TELEMETRY, results.TELEMETRY_SCHEMA)
    server = run = gpu_sampler = None
    with tempfile.TemporaryDirectory(prefix=f"perseus-{deployment.name}-") as tmp, InterruptGuard() as guard:
        try:
            server, served = _server(scenario, deployment, source_repo, Path(tmp), dep_dir, gpu)
            outcome.served = served
            what = "loading the model in-process" if deployment.strategy == "embedded" else "starting tritonserver"
            display.message(f"[{display.position(index)}] {deployment.name}: {what}")
            server.start()
            guard.check()
            if workers is None:
                run = build_load_run(scenario, deployment, server.url, recorder, served, source_repo)
            else:
                run = _distributed_load(workers, scenario, deployment, server.url, served, recorder)

            def show(now: float) -> None:
                phase = "warm-up" if now < 0 else ("measuring" if now < scenario.run.duration_s else "draining")
                display.update(index, deployment.name, phase, now, scenario.run.duration_s, run.tenants)

            samplers, server_pids = host.process_samplers(server.pid())
            gpu_sampler = GpuSampler(run.now, period_s=scenario.run.gpu_sample_period_s, pids=server_pids)
            gpu_sampler.start()  # None, or the "no NVIDIA GPU" reason already in the manifest
            ticker = _Ticker(run, server, recorder, telemetry, samplers, gpu_sampler, show)

            def tick() -> None:
                guard.check()
                ticker()

            try:
                run.run(tick)
            finally:
                if workers is not None:
                    outcome.workers = run.summary()
            if run.abort_reason:
                outcome.status, outcome.reason = "failed", run.abort_reason
        except KeyboardInterrupt:
            # Not re-raised: the caller sees the status, records it and stops the run.
            outcome.status, outcome.reason = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
        except PerseusError as exc:
            outcome.status, outcome.reason = "failed", str(exc)
            if isinstance(exc, ServerError) and exc.log_tail:
                outcome.server_log_tail = exc.log_tail
        except Exception as exc:
            outcome.status = "failed"
            outcome.reason = f"internal error: {type(exc).__name__}: {exc}"
            (dep_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        finally:
            if outcome.status != "completed" and run is not None and run.t0:
                outcome.measured_s = max(0.0, run.now())
            for load in run.tenants if run is not None else ():
                getattr(load.transport, "shutdown", lambda: None)()  # embedded models' thread pools
            if gpu_sampler is not None:
                gpu_sampler.stop()
                for row in gpu_sampler.drain():
                    telemetry.add(row)
            if server is not None:
                server.stop()
            outcome.requests = recorder.count
            recorder.close()
            telemetry.close()
            outcome.ended = results.utc_now()
            if outcome.status != "completed" and not outcome.server_log_tail:
                outcome.server_log_tail = log_tail(dep_dir / results.SERVER_LOG) or None
            if guard.seen and outcome.status == "completed":  # interrupted, and the interrupt was lost
                outcome.status, outcome.reason = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
            if outcome.status != "completed":
                # Say why on stderr too, not only in the manifest and the report.
                display.message(f"[{display.position(index)}] {deployment.name}: {outcome.status}: {outcome.reason}")
    return outcome


def _server(scenario: Scenario, deployment: Deployment, source_repo: Path, tmp: Path, dep_dir: Path, gpu: bool):
    """The deployment's server and, per tenant, the model name it is served under there.

    Local: a repository rendered for this deployment, each tenant's model served under the tenant's
    name. Remote: the server as it is, models under their own names.
    """
    if deployment.strategy == "embedded":
        return NoServer(dep_dir / results.SERVER_LOG), {name: name for name in deployment.tenants}
    if scenario.server.launcher == "remote":
        from perseus.server.remote import RemoteServer

        served = {name: scenario.tenant(name).model for name in deployment.tenants}
        return RemoteServer(scenario.server.url, dep_dir / results.SERVER_LOG, scenario.server.metrics_url), served
    # Docker: the same rendered repository, mounted read-only into an NGC Triton container that serves
    # the models' native onnxruntime configs (configs/onnxruntime.pbtxt), so those get the settings too.
    docker = scenario.server.launcher == "docker"
    rendered = repository.render(scenario, list(deployment.tenants), source_repo, tmp / "repo", gpu, native=docker)
    _save_configs(rendered, dep_dir / results.CONFIGS)
    pipelines = {n: repository.steps(source_repo, scenario.tenant(n).model) for n in deployment.tenants}
    (dep_dir / results.CONFIGS / results.STEPS_JSON).write_text(json.dumps({k: v for k, v in pipelines.items() if v}))
    if docker:
        from perseus.server.docker import DockerServer

        server = DockerServer(
            tmp / "repo",
            dep_dir / results.SERVER_LOG,
            image=scenario.server.image,
            gpu=gpu,
            startup_timeout_s=scenario.server.startup_timeout_s,
            deployment=deployment.name,
        )
    else:
        server = LocalServer(
            tmp / "repo", dep_dir / results.SERVER_LOG, startup_timeout_s=scenario.server.startup_timeout_s
        )
    return server, {name: name for name in deployment.tenants}


class NoServer:
    """Embedded deployments have no server: the model runs inside the load generator."""

    url = metrics_url = ""

    def __init__(self, log_path: Path):
        self.log_path = log_path

    def start(self) -> None:
        self.log_path.write_text("embedded deployment: no server; the model ran in the load generator\n")

    def stop(self) -> None:
        pass

    def alive(self) -> bool:
        return True

    def pid(self) -> int | None:
        return None

    def gone(self) -> str:
        return "the embedded model stopped"  # never: alive() is always true


def build_load_run(
    scenario: Scenario,
    deployment: Deployment,
    url: str,
    recorder: StreamWriter,
    served: dict[str, str],
    source_repo: Path,
) -> LoadRun:
    loads = []
    for name in deployment.tenants:
        tenant = scenario.tenant(name)
        rng = arrivals.tenant_rng(scenario.run.seed, name)
        request = transport = None
        if deployment.strategy == "embedded":
            from perseus.load.embedded import EmbeddedModel, onnx_file

            model = EmbeddedModel(
                onnx_file(source_repo, tenant.model), tenant.batch, rng, instances=tenant.server.instances or 1
            )
            transport = model
        else:
            request = build_request(url, served[name], tenant.batch, rng)
        load = TenantLoad(
            tenant=name,
            model=tenant.model,
            deployment=deployment.name,
            request=request,
            transport=transport,
            arrival=tenant.load.arrival,
            concurrency=tenant.load.concurrency or 1,
        )
        if load.open_loop:
            load.schedule = arrivals.schedule(tenant.load, scenario.run.warmup_s, scenario.run.duration_s, rng)
        loads.append(load)
    return LoadRun(
        url,
        loads,
        recorder,
        warmup_s=scenario.run.warmup_s,
        duration_s=scenario.run.duration_s,
        request_timeout_s=scenario.run.request_timeout_s,
    )


def _distributed_load(workers, scenario: Scenario, deployment: Deployment, url: str, served, recorder):
    """The deployment's load sent by the master's workers; the tenants here only count, for the display."""
    from perseus.load.distributed import DistributedLoad
    from perseus.load.shards import make_plan

    counters = [
        TenantLoad(
            tenant=name,
            model=scenario.tenant(name).model,
            deployment=deployment.name,
            request=None,
            arrival=scenario.tenant(name).load.arrival,
            concurrency=scenario.tenant(name).load.concurrency or 1,
        )
        for name in deployment.tenants
    ]
    return DistributedLoad(
        workers,
        make_plan(scenario, deployment, url, served),
        counters,
        recorder,
        warmup_s=scenario.run.warmup_s,
        duration_s=scenario.run.duration_s,
        request_timeout_s=scenario.run.request_timeout_s,
    )


def _save_configs(rendered: dict, folder: Path) -> None:
    """The exact config.pbtxt each tenant was served with, kept for the record."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, config in rendered.items():
        (folder / f"{name}.pbtxt").write_text(text_format.MessageToString(config), encoding="utf-8")
