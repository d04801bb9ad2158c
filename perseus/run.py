"""A run: deployments one after another into one results folder, the manifest kept current after each.

``Runner`` is shared by every command that measures (run, calibrate, capacity, sweep, plan).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from perseus import __version__, results
from perseus.checks import Prepared, WorkerOptions
from perseus.errors import InputError
from perseus.manifest import CommandKind, Manifest, Status
from perseus.plan import Deployment, scenario_for
from perseus.progress import Progress, Quiet
from perseus.scenario import Scenario
from perseus.server import frameworks
from perseus.telemetry import host

VERSIONED = ("locust", "tritonclient", "nvidia-pytriton", "onnxruntime", "numpy", "pandas", "pyarrow", "gevent")


def versions() -> dict[str, str]:
    out = {"perseus": __version__, "python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["tritonserver"] = "2.51.0 (bundled in nvidia-pytriton 0.7.0)" if out["nvidia-pytriton"] == "0.7.0" else "?"
    return out


def _server_version(scenario: Scenario) -> dict[str, str]:
    """The server that ran, where it is not the bundled tritonserver."""
    if scenario.server.launcher == "docker":
        return {"tritonserver": f"image {scenario.server.image}"}
    if scenario.server.launcher == "remote":
        return {"tritonserver": f"remote server at {scenario.server.url} (version not recorded)"}
    out = {}
    for kind in scenario.kinds():
        env = frameworks.installed(kind) if kind != "triton" else None
        if env is not None:  # the framework's own environment, with its own onnxruntime
            out.update({f"{kind}:{name}": version for name, version in env.versions.items()})
    return out


def new_manifest(
    ready: Prepared | None,
    deployments: list[Deployment],
    command: str,
    *,
    kind: CommandKind = CommandKind.RUN,
    scenario: Scenario | None = None,
) -> Manifest:
    """The manifest of a new run folder: the scenario as requested and as effective, versions, host, price."""
    scenario = scenario or ready.scenario
    return Manifest.new(
        kind=kind,
        scenario_file=ready.file if ready else None,
        requested=ready.raw if ready else scenario.model_dump(mode="json"),
        effective=scenario.model_dump(mode="json"),
        deployments=deployments,
        duration_s=scenario.run.duration_s,
        price={**ready.price.__dict__} if ready else None,
        prices={name: {**p.__dict__} for name, p in ready.prices.items()} if ready else {},
        gpus=ready.gpus if ready else [],
        gpu_note=ready.gpu_note if ready else None,
        command=command,
        versions={**versions(), **_server_version(scenario)},
        host=host.facts(),
        perseus_version=__version__,
    )


def resume(run_dir: Path, fresh: Manifest, what: str, differs: Callable[[Manifest], str | None]) -> Manifest:
    """An earlier folder of the same command, reopened to resume; anything else is refused (exit 2): a folder
    that is not one (``what``: "sweep", "plan"), one whose ``differs`` names a difference in what it
    measures, or one measured on another machine (host, CPU, GPU, or versions: `Manifest.machine_difference`)."""
    hint = "use a new or empty --out folder"
    try:
        manifest = Manifest.load(run_dir)
    except (OSError, ValueError):
        manifest = None
    if manifest is None or manifest.kind != fresh.kind:
        raise InputError("--out", None, f"{run_dir} is not empty and is not a {what} folder; {hint}")
    problem = differs(manifest)
    if problem:
        raise InputError("--out", None, f"{run_dir} holds {problem}; {hint}")
    machine = fresh.machine_difference(manifest)
    if machine:
        raise InputError("--out", None, f"{run_dir} was measured elsewhere ({machine}); {hint}")
    manifest.reopen(results.utc_now(), fresh.command)
    manifest.save(run_dir)
    return manifest


def save_inputs(
    run_dir: Path, scenario_file: Path | None, manifest: Manifest, capacity_csv: Path | None = None
) -> None:
    """The scenario file and the manifest; and a capacity table measured elsewhere, for cost at capacity."""
    if scenario_file is not None:
        results.copy_private(scenario_file, run_dir / results.SCENARIO_COPY)
    if capacity_csv is not None:
        shutil.copyfile(capacity_csv, run_dir / results.CAPACITY_CSV)
    manifest.save(run_dir)


class Runner:
    """Runs deployments into one run folder, keeping the manifest current after each."""

    def __init__(self, run_dir: Path, manifest: Manifest, use_gpu_flag: bool, progress: Progress | None = None):
        self.run_dir, self.manifest, self.use_gpu = run_dir, manifest, use_gpu_flag
        self.progress = progress or Quiet()
        self.workers = None  # a distributed.Master (set by execute()), or None: load from this process
        self.index = 0

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.manifest.close()
        self.save()

    def save(self) -> None:
        self.manifest.save(self.run_dir)

    def run(self, scenario: Scenario, deployment: Deployment, source_repo: Path) -> Status:
        """Run one deployment; returns its status. Ctrl-C inside it comes back as "interrupted"."""
        # Deferred, not a cycle: the load engine imports Locust, which monkey-patches the process for
        # gevent, so only the process that sends load (never `perseus report`) may import it.
        from perseus.experiment import run_deployment

        self.index += 1
        # A model variant (a tenant's `models`, chosen by `perseus plan`) is recorded where it is not the
        # scenario's own model: the summary then names the model that ran.
        default = {t["name"]: t.get("model") for t in self.manifest.scenario.effective.get("tenants", [])}
        ran = {t: scenario.tenant(t).model for t in deployment.tenants}
        variants = {t: m for t, m in ran.items() if default.get(t, m) != m}
        self.manifest.begin(deployment, scenario.run.duration_s, variants)
        self.save()
        try:
            outcome = run_deployment(
                scenario,
                deployment,
                source_repo,
                self.run_dir,
                gpu=self.use_gpu,
                progress=self.progress,
                index=self.index,
                workers=self.workers,
            )
        except KeyboardInterrupt:
            self.manifest.interrupted(deployment.name)
            raise
        self.manifest.finish(deployment.name, **outcome.record_fields(scenario.run.duration_s))
        self.save()
        return outcome.status


def execute(
    scenario: Scenario,
    deployments: list[Deployment],
    source_repo: Path,
    run_dir: Path,
    manifest: Manifest,
    use_gpu_flag: bool,
    workers: WorkerOptions | None = None,
    progress: Progress | None = None,
) -> Status:
    """Run every deployment in order; stop at an interruption. Returns the run's status.

    With ``workers``, this process is a Locust master and the load comes from its workers.
    """
    try:
        with contextlib.ExitStack() as stack:
            runner = stack.enter_context(Runner(run_dir, manifest, use_gpu_flag, progress))
            if workers is not None:
                manifest.load_workers = {"local": workers.local, "expected": workers.expect, "bind": workers.bind}
                runner.workers = stack.enter_context(_master(workers, run_dir, runner.progress))
            for deployment in deployments:
                if runner.run(scenario_for(scenario, deployment), deployment, source_repo) == Status.INTERRUPTED:
                    break
    except KeyboardInterrupt:
        pass
    return manifest.status


def _master(workers: WorkerOptions, run_dir: Path, progress: Progress):
    # Deferred for the same reason as run_deployment: the master is a Locust MasterRunner.
    from perseus.load.distributed import Master

    return Master(
        local_workers=workers.local,
        expect_workers=workers.expect,
        bind=workers.bind,
        port=workers.port,
        log_dir=run_dir / results.WORKERS,
        message=progress.message,
    )
