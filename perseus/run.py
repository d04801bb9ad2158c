"""A run: every deployment of a scenario, one after another, into one results folder."""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from perseus import __version__, results
from perseus import scenario as scenario_mod
from perseus.errors import InputError
from perseus.plan import Deployment
from perseus.pricing.catalog import known, lookup
from perseus.scenario import Scenario
from perseus.telemetry import gpu, host

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


def check_price(scenario: Scenario, source: str):
    p = scenario.pricing
    price = lookup(p.provider, p.instance, p.region, p.market)
    if price is None:
        options = ", ".join(known(p.provider, p.region, p.market)) or "none"
        if options == "none":
            raise InputError(source, "pricing.region", f"no {p.provider} {p.market} prices for region '{p.region}'")
        raise InputError(
            source,
            "pricing.instance",
            f"'{p.instance}' is not in the bundled catalog for {p.provider} {p.region} {p.market} (known: {options})",
        )
    return price


def prepare_run_dir(out: Path | None, scenario_name: str) -> Path:
    """``--out`` must be absent or empty; the default is results/<name>-<UTC timestamp>/."""
    run_dir = Path(out) if out else results.default_run_dir(scenario_name)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise InputError("--out", None, f"{run_dir} exists and is not an empty folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def use_gpu(scenario: Scenario, gpus: list[dict], source: str) -> bool:
    if scenario.server.device == "gpu" and not gpus:
        raise InputError(source, "server.device", "is 'gpu' but no NVIDIA GPU was found (try 'auto' or 'cpu')")
    return scenario.server.device == "gpu" or (scenario.server.device == "auto" and bool(gpus))


def _server_version(scenario: Scenario) -> dict[str, str]:
    """The server that ran, where it is not the bundled tritonserver."""
    if scenario.server.launcher == "docker":
        return {"tritonserver": f"image {scenario.server.image}"}
    if scenario.server.launcher == "remote":
        return {"tritonserver": f"remote server at {scenario.server.url} (version not recorded)"}
    return {}


def new_manifest(
    scenario_file: Path | None,
    raw: dict,
    scenario: Scenario,
    deployments: list[Deployment],
    price,
    gpus: list[dict],
    gpu_note: str | None,
    command: str,
) -> dict:
    return {
        "perseus": __version__,
        "command": command,
        "scenario": {"file": str(scenario_file), "requested": raw, "effective": scenario.model_dump(mode="json")},
        "seed": scenario.run.seed,
        "versions": {**versions(), **_server_version(scenario)},
        "host": host.facts(),
        "gpus": gpus,
        "gpu_note": gpu_note,
        "price": {**price.__dict__} if price else None,
        "started": results.utc_now(),
        "ended": None,
        "status": "running",
        "deployments": {
            d.name: {
                "tenants": list(d.tenants),
                "status": "not started",
                "duration_s": scenario.run.duration_s,
                "base": d.base or d.name,
                "trial": d.trial,
                "strategy": d.strategy,
            }
            for d in deployments
        },
    }


def save_inputs(run_dir: Path, scenario_file: Path | None, manifest: dict) -> None:
    if scenario_file is not None:
        shutil.copyfile(scenario_file, run_dir / results.SCENARIO_COPY)
    results.write_json_atomic(run_dir / results.MANIFEST, manifest)


@dataclass(frozen=True)
class Prepared:
    """A validated scenario and everything checked before any server starts."""

    file: Path
    raw: dict
    scenario: Scenario
    repository: Path
    price: object
    gpus: list[dict]
    gpu_note: str | None
    use_gpu: bool


def prepare(
    scenario_file: Path,
    *,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    baselines: bool | None = None,
    repeat: int | None = None,
) -> Prepared:
    """Load, override, and check the scenario, its models, its price and the GPU ask; build missing models.

    Every bad input surfaces here as an InputError, before anything starts or is written.
    """
    from perseus.models.ensure import ensure_built
    from perseus.server import repository

    source = str(scenario_file)
    loaded, raw = scenario_mod.load(scenario_file)
    scenario = scenario_mod.with_overrides(
        loaded, duration_s=duration_s, warmup_s=warmup_s, baselines=baselines, repeat=repeat, source=source
    )
    repo = scenario_mod.repository_path(scenario, scenario_file)
    if scenario.server.launcher == "remote":
        from perseus.server.remote import check_remote

        for i, tenant in enumerate(scenario.tenants):
            if tenant.server.model_dump(exclude_none=True):
                raise InputError(
                    source, f"tenants[{i}].server", "a remote server is used as it is: its models' settings are its own"
                )
        check_remote(scenario.server.url, list(enumerate(t.model for t in scenario.tenants)), source)
    else:
        repository.check_models(scenario, repo, source)
    price = check_price(scenario, source)
    found, note = gpu.gpus()
    # A remote server's device is its own business; the GPU setting only shapes rendered repositories
    # (and, for docker, whether the container gets `--gpus all`).
    rendered = scenario.server.launcher in ("local", "docker")
    flag = use_gpu(scenario, found, source) if rendered else False
    if scenario.server.launcher == "docker":
        from perseus.server.docker import check_docker

        check_docker(source)  # before anything is built or written
    if rendered or "embedded" in scenario.run.strategies:
        models = [t.model for t in scenario.tenants]
        ensure_built(repo, models + [m for name in models for m in repository.steps(repo, name)])
    if "embedded" in scenario.run.strategies:
        from perseus.load.embedded import onnx_file

        for tenant in scenario.tenants:
            onnx_file(repo, tenant.model)  # embedded serving runs the ONNX file itself
    return Prepared(Path(scenario_file), raw, scenario, repo, price, found, note, flag)


DEFAULT_MASTER_PORT = 5557  # Locust's own default; `perseus worker --master-port` defaults to it too


def worker_options(
    scenario: Scenario, local: int, expect: int | None, bind: str, port: int | None
) -> WorkerOptions | None:
    """``perseus run``'s distributed-load flags, checked; None when the load comes from this process."""
    import ipaddress

    expect = local if expect is None else expect
    if local < 0:
        raise InputError("command line", "--workers", "must be >= 0")
    if expect < local:
        raise InputError("command line", "--expect-workers", f"must be >= --workers ({local})")
    if port is not None and not 0 < port < 65536:
        raise InputError("command line", "--master-port", "must be a port number (1-65535)")
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise InputError(
            "command line", "--master-bind", f"must be an IP address of this machine (got {bind!r})"
        ) from None
    if expect == 0:
        return None
    if "embedded" in scenario.run.strategies:
        raise InputError(
            "command line",
            "--workers",
            "the embedded strategy runs models inside the load generator; it cannot be split",
        )
    if port is None and expect > local:
        port = DEFAULT_MASTER_PORT  # workers on other machines need a port they can be told in advance
    return WorkerOptions(local, expect, bind, port)


def overall_status(manifest: dict) -> str:
    statuses = [d["status"] for d in manifest["deployments"].values()]
    if "interrupted" in statuses or "running" in statuses:
        return "interrupted"
    if any(s != "completed" for s in statuses):
        return "failed"
    return "completed"


class Runner:
    """Runs deployments into one run folder, keeping the manifest current after each."""

    def __init__(self, run_dir: Path, manifest: dict, use_gpu_flag: bool, total: int):
        from perseus.progress import RunDisplay

        self.run_dir, self.manifest, self.use_gpu = run_dir, manifest, use_gpu_flag
        self.workers = None  # a distributed.Master (set by execute()), or None: load from this process
        self.display = RunDisplay(total)
        self.index = 0

    def __enter__(self) -> Runner:
        self.display.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.display.__exit__(*exc)
        self.manifest["status"] = overall_status(self.manifest)
        self.manifest["ended"] = results.utc_now()
        self.save()

    def save(self) -> None:
        results.write_json_atomic(self.run_dir / results.MANIFEST, self.manifest)

    def run(self, scenario: Scenario, deployment: Deployment, source_repo: Path) -> str:
        """Run one deployment; returns its status. Ctrl-C inside it comes back as "interrupted"."""
        # Imported here: the load engine imports Locust, which monkey-patches the process for gevent.
        from perseus.experiment import run_deployment

        self.index += 1
        entry = self.manifest["deployments"].setdefault(
            deployment.name, {"tenants": list(deployment.tenants), "duration_s": scenario.run.duration_s}
        )
        entry["status"] = "running"
        self.save()
        try:
            outcome = run_deployment(
                scenario,
                deployment,
                source_repo,
                self.run_dir,
                gpu=self.use_gpu,
                display=self.display,
                index=self.index,
                workers=self.workers,
            )
        except KeyboardInterrupt:
            entry.update(status="interrupted", reason="interrupted (Ctrl-C or SIGTERM)")
            raise
        entry.update(outcome.manifest_entry(deployment, scenario.run.duration_s))
        self.save()
        return outcome.status


def execute(
    scenario: Scenario,
    deployments: list[Deployment],
    source_repo: Path,
    run_dir: Path,
    manifest: dict,
    use_gpu_flag: bool,
    workers: WorkerOptions | None = None,
) -> str:
    """Run every deployment in order; stop at an interruption. Returns the run's status.

    With ``workers``, this process is a Locust master and the load comes from its workers.
    """
    try:
        with contextlib.ExitStack() as stack:
            runner = stack.enter_context(Runner(run_dir, manifest, use_gpu_flag, len(deployments)))
            if workers is not None:
                manifest["load_workers"] = {"local": workers.local, "expected": workers.expect, "bind": workers.bind}
                runner.workers = stack.enter_context(workers.master(run_dir, runner.display.message))
            for deployment in deployments:
                if runner.run(scenario, deployment, source_repo) == "interrupted":
                    break
    except KeyboardInterrupt:
        pass
    return manifest["status"]


@dataclass(frozen=True)
class WorkerOptions:
    """``perseus run --workers N``: N local worker processes, ``expect`` in all (the rest join from elsewhere)."""

    local: int
    expect: int
    bind: str
    port: int | None

    def master(self, run_dir: Path, message):
        from perseus.load.distributed import Master

        return Master(
            local_workers=self.local,
            expect_workers=self.expect,
            bind=self.bind,
            port=self.port,
            log_dir=run_dir / results.WORKERS,
            message=message,
        )
