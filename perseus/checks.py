"""Every input check of a run, before anything starts or is written: scenario, flags, models, price, GPU.

Every bad input surfaces here as an ``InputError`` (exit 2, one line). Only when all of it passes is
a missing model built and a run folder created.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perseus import results
from perseus import scenario as scenario_mod
from perseus.errors import InputError, did_you_mean
from perseus.load.embedded import onnx_file
from perseus.models.ensure import ensure_built
from perseus.pricing.catalog import Price, known, lookup
from perseus.scenario import Scenario
from perseus.server import bentoml, frameworks, repository
from perseus.server.docker import check_docker
from perseus.server.remote import check_remote
from perseus.telemetry import gpu

# What cost at capacity reads from a capacity.csv (perseus/capacity/analysis.py writes them).
CAPACITY_COLUMNS = ("deployment", "kind", "tenant", "scale", "upper", "rate_rps", "capacity_rps")
DEFAULT_MASTER_PORT = 5557  # Locust's own default; `perseus worker --master-port` defaults to it too


def check_price(scenario: Scenario, source: str, instance: str | None = None, field: str = "pricing.instance") -> Price:
    """The catalog price of ``instance`` (default: the scenario's [pricing] instance) in its region and market."""
    p = scenario.pricing
    instance = instance or p.instance
    price = lookup(p.provider, instance, p.region, p.market)
    if price is None:
        options = ", ".join(known(p.provider, p.region, p.market)) or "none"
        if options == "none":
            raise InputError(source, "pricing.region", f"no {p.provider} {p.market} prices for region '{p.region}'")
        raise InputError(
            source,
            field,
            f"'{instance}' is not in the bundled catalog for {p.provider} {p.region} {p.market} (known: {options})"
            + did_you_mean(instance, known(p.provider, p.region, p.market)),
        )
    return price


def group_prices(scenario: Scenario, source: str) -> dict[str, Price]:
    """The price of every instance type a ``[[deployments]]`` group is priced as."""
    return {
        g.instance: check_price(scenario, source, g.instance, f"deployments[{i}].instance")
        for i, g in enumerate(scenario.deployments)
        if g.instance
    }


def check_out(out: Path | None) -> None:
    """``--out`` must be absent or an empty folder; checked before anything is built."""
    if out is None or not Path(out).exists():
        return
    if not Path(out).is_dir():
        raise InputError("--out", None, f"{out} is a file, not a folder")
    if any(Path(out).iterdir()):
        raise InputError("--out", None, f"{out} exists and is not an empty folder")


def prepare_run_dir(out: Path | None, scenario_name: str) -> Path:
    """``--out`` must be absent or empty; the default is results/<name>-<UTC timestamp>/."""
    run_dir = Path(out) if out else results.default_run_dir(scenario_name)
    check_out(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def check_capacity(folder: Path | None) -> Path | None:
    """``--capacity DIR``: a `perseus capacity` folder; its capacity.csv, checked to hold what cost needs."""
    if folder is None:
        return None
    path = Path(folder) / results.CAPACITY_CSV
    if not path.is_file():
        raise InputError("--capacity", None, f"{folder} is not a `perseus capacity` folder (no {results.CAPACITY_CSV})")
    header = path.read_text(encoding="utf-8").splitlines()[:1]
    missing = [c for c in CAPACITY_COLUMNS if not header or c not in header[0].split(",")]
    if missing:
        raise InputError("--capacity", None, f"{path} lacks the columns {', '.join(missing)}")
    return path


def use_gpu(scenario: Scenario, gpus: list[dict], source: str) -> bool:
    if scenario.server.device == "gpu" and not gpus:
        raise InputError(source, "server.device", "is 'gpu' but no NVIDIA GPU was found (try 'auto' or 'cpu')")
    return scenario.server.device == "gpu" or (scenario.server.device == "auto" and bool(gpus))


CUDA_PROVIDER = "CUDAExecutionProvider"


def check_gpu_providers(scenario: Scenario, source: str, available: list[str] | None = None) -> None:
    """A local GPU run serves every tenant with KIND_GPU instances through the Python backend, which runs
    onnxruntime from this environment: without its CUDAExecutionProvider (the CPU-only ``onnxruntime``
    package) they would run on the CPU while the report said GPU, so the run is refused here, and
    the backend model refuses too (perseus/models/backend_model.py). ``available``: the providers to
    judge (default: this environment's onnxruntime's)."""
    if available is None:
        import onnxruntime  # only GPU runs pay its import here

        available = onnxruntime.get_available_providers()
    if CUDA_PROVIDER in available:
        return
    tenants = ", ".join(t.name for t in scenario.tenants)
    raise InputError(
        source,
        "server.device",
        f"a GPU run would serve tenants {tenants} on KIND_GPU instances, but this environment's onnxruntime "
        f"has no {CUDA_PROVIDER} (only {', '.join(available)}), so they would run on the CPU: install "
        "onnxruntime-gpu in place of onnxruntime, or set device = 'cpu'",
    )


@dataclass(frozen=True)
class Prepared:
    """A validated scenario and everything checked before any server starts."""

    file: Path
    raw: dict
    scenario: Scenario
    repository: Path
    price: Price
    gpus: list[dict]
    gpu_note: str | None
    use_gpu: bool
    prices: dict[str, Price] = field(default_factory=dict)  # [[deployments]] instances other than [pricing]'s


def load_scenario(
    scenario_file: Path,
    *,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    baselines: bool | None = None,
    repeat: int | None = None,
    trace_rate: int | None = None,
) -> tuple[Scenario, dict]:
    """The scenario file, validated, with the command line's overrides applied (errors name the flag)."""
    loaded, raw = scenario_mod.load(scenario_file)
    scenario = scenario_mod.with_overrides(
        loaded,
        duration_s=duration_s,
        warmup_s=warmup_s,
        baselines=baselines,
        repeat=repeat,
        trace_rate=trace_rate,
        source=str(scenario_file),
    )
    return scenario, raw


def one_framework(scenario_file: Path, what: str = "a search") -> Callable[[Scenario], None]:
    """A check for ``prepare``: the command measures one serving framework (``server.kind``), so ``[run]
    servers`` is refused rather than ignored."""

    def check(scenario: Scenario) -> None:
        if scenario.run.servers:
            raise InputError(
                str(scenario_file),
                "run.servers",
                f"is for `perseus run` and `perseus ui`; {what} measures one framework: set server.kind instead",
            )

    return check


def open_loop_only(scenario_file: Path) -> Callable[[Scenario], None]:
    """A check for ``prepare``: capacity searches scale rates, so every tenant must be open loop; and they
    measure one serving framework (``one_framework``)."""
    same_framework = one_framework(scenario_file)

    def check(scenario: Scenario) -> None:
        same_framework(scenario)
        for i, tenant in enumerate(scenario.tenants):
            if not tenant.load.open_loop:
                raise InputError(
                    str(scenario_file), f"tenants[{i}].load.arrival", "needs open-loop tenants, not 'closed'"
                )

    return check


def check_server(scenario: Scenario, repo: Path, source: str) -> None:
    """The launcher's own checks: a remote server and its models answer; docker has a daemon; models exist."""
    if scenario.server.launcher == "remote":
        for i, tenant in enumerate(scenario.tenants):
            if tenant.server.model_dump(exclude_none=True):
                raise InputError(
                    source, f"tenants[{i}].server", "a remote server is used as it is: its models' settings are its own"
                )
        check_remote(scenario.server.url, [(i, m) for i, t in enumerate(scenario.tenants) for m in t.variants], source)
        return
    repository.check_models(scenario, repo, source)
    if scenario.server.launcher == "docker":
        check_docker(source)
    for kind in scenario.kinds():
        if kind != "triton":
            check_framework(scenario, kind, repo, source)


def check_framework(scenario: Scenario, kind: str, repo: Path, source: str) -> None:
    """A framework besides Triton can serve every tenant (no ensembles; BentoML: one input, one output),
    and its environment is installed."""
    field = "server.kind" if not scenario.run.servers else "run.servers"
    models = [(i, j, t, m) for i, t in enumerate(scenario.tenants) for j, m in enumerate(t.variants)]
    ensembles = [(i, m) for i, _, _, m in models if repository.steps(repo, m)]
    frameworks.check_servable(kind, [(i, m, True) for i, m in ensembles], repo, source)
    if kind == "bentoml":
        for i, j, tenant, model in models:
            reason = bentoml.servable(repository.read_config(repo / model / repository.CONFIG))
            if reason:
                raise InputError(source, tenant.variant_field(i, j), f"{model!r} {reason}")
    frameworks.check_installed(kind, source, field)


def prepare(
    scenario_file: Path,
    *,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    baselines: bool | None = None,
    repeat: int | None = None,
    trace_rate: int | None = None,
    checks: Callable[[Scenario], None] | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> Prepared:
    """Load, override, and check the scenario, its models, its price and the GPU ask; build missing models.

    ``checks``: the command's own checks of the scenario, run before any model is built.
    """
    scenario, raw = load_scenario(
        scenario_file,
        duration_s=duration_s,
        warmup_s=warmup_s,
        baselines=baselines,
        repeat=repeat,
        trace_rate=trace_rate,
    )
    if checks is not None:
        checks(scenario)
    return check_and_build(scenario_file, scenario, raw, say=say)


def check_and_build(
    scenario_file: Path,
    scenario: Scenario,
    raw: dict,
    *,
    tenants: list[str] | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> Prepared:
    """Every check of a loaded scenario, then the missing models built (only ``tenants``' when given)."""
    source = str(scenario_file)
    repo = scenario_mod.repository_path(scenario, scenario_file)
    check_server(scenario, repo, source)
    price = check_price(scenario, source)
    prices = group_prices(scenario, source)
    found, note = gpu.gpus()
    # A remote server's device is its own business; the GPU setting only shapes rendered repositories
    # (and, for docker, whether the container gets `--gpus all`).
    rendered = scenario.server.launcher in ("local", "docker")
    flag = use_gpu(scenario, found, source) if rendered else False
    # MLServer and BentoML serve on the CPU here; beside them Triton does too, so the kinds compare fairly.
    flag = flag and all(kind == "triton" for kind in scenario.kinds())
    if flag and scenario.server.launcher == "local":  # docker's image brings its own onnxruntime backend
        check_gpu_providers(scenario, source)
    embedded = "embedded" in scenario.run.strategies
    if rendered or embedded:
        chosen = [scenario.tenant(n) for n in tenants] if tenants else scenario.tenants
        models = [m for t in chosen for m in t.variants]
        ensure_built(repo, models + [m for name in models for m in repository.steps(repo, name)], say)
    if embedded:
        for tenant in scenario.tenants:
            for model in tenant.variants:
                onnx_file(repo, model)  # embedded serving runs the ONNX file itself
    for kind in scenario.kinds():  # the other frameworks serve the ONNX file (checked once built)
        if kind != "triton":
            servable = [(i, m, False) for i, t in enumerate(scenario.tenants) for m in t.variants]
            frameworks.check_servable(kind, servable, repo, source)
    return Prepared(Path(scenario_file), raw, scenario, repo, price, found, note, flag, prices)


@dataclass(frozen=True)
class WorkerOptions:
    """``perseus run --workers N``: N local worker processes, ``expect`` in all (the rest join from elsewhere)."""

    local: int
    expect: int
    bind: str
    port: int | None


def capacity_options(precision: float, max_probes: int) -> None:
    """``perseus capacity``'s search flags, checked before anything is built (0 probes would "find" nothing
    and exit 0; a precision of 0 never stops bisecting short of the probe budget)."""
    if not (math.isfinite(precision) and precision > 0):
        raise InputError("command line", "--precision", f"must be > 0 (got {precision:g})")
    if max_probes < 1:
        raise InputError("command line", "--max-probes", f"must be >= 1 (got {max_probes})")


def worker_options(
    scenario: Scenario, local: int, expect: int | None, bind: str, port: int | None
) -> WorkerOptions | None:
    """``perseus run``'s distributed-load flags, checked; None when the load comes from this process."""
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
    if scenario.run.trace_rate:
        # Spans are placed on the client's timeline through the measurement start of the process
        # that sent the request; a worker's start is its own.
        raise InputError("command line", "--workers", "tracing (run.trace_rate) needs the load sent from this process")
    if port is None and expect > local:
        port = DEFAULT_MASTER_PORT  # workers on other machines need a port they can be told in advance
    return WorkerOptions(local, expect, bind, port)
