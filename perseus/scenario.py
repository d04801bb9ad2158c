"""The scenario file: typed models (pydantic v2), loading, and errors that name file and field.

Unknown keys are errors everywhere (``extra="forbid"``): a typo must never pass silently.
"""

from __future__ import annotations

import json
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from perseus.analysis.shapes import ramp_levels
from perseus.errors import InputError, did_you_mean
from perseus.kinds import is_open_loop
from perseus.traces import check_trace

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class _Strict(BaseModel):
    # strict: no silent coercion (true is not 1 req/s, "1" is not a seed); no inf/nan rates or durations.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# 24.10 ships Triton 2.51.0, the version the local launcher runs (bundled in nvidia-pytriton 0.7.0).
DEFAULT_DOCKER_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
# A docker image reference: [registry[:port]/]path[:tag][@digest]. Never starting with '-', which the
# docker CLI would read as an option of `docker run`.
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


# The serving frameworks a local deployment can run on (perseus.server.frameworks installs the others).
ServerKind = Literal["triton", "mlserver", "bentoml"]


class ServerSpec(_Strict):
    # local: the bundled tritonserver, one per deployment. docker: the NGC Triton image (`image`), one
    # container per deployment, serving the models' native onnxruntime configs. remote: an existing
    # server at `url`, checked but never started or stopped.
    launcher: Literal["local", "docker", "remote"] = "local"
    # Which serving framework the local launcher runs: Triton (bundled), or MLServer or BentoML from
    # their own environments (`perseus servers install KIND`), serving the same ONNX models.
    kind: ServerKind = "triton"
    model_repository: str = "../model_repository"
    device: Literal["auto", "cpu", "gpu"] = "auto"
    url: str | None = None  # remote only, e.g. http://10.0.0.5:8000
    # remote only, for tenants with load.protocol = "grpc": Triton's gRPC endpoint, e.g. 10.0.0.5:8001
    grpc_url: str | None = Field(None, pattern=r"^[A-Za-z0-9._\[\]:-]+:[0-9]{1,5}$")
    metrics_url: str | None = None  # remote only, e.g. http://10.0.0.5:8002/metrics
    image: str | None = None  # docker only; DEFAULT_DOCKER_IMAGE when left out

    @field_validator("model_repository")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 512 or not _IMAGE.match(value)):
            raise ValueError(f"is not a docker image reference such as {DEFAULT_DOCKER_IMAGE!r} (got {value!r})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_image(cls, data: Any) -> Any:
        # Filled in here, so that the effective scenario in the manifest names the image that ran.
        if isinstance(data, dict) and data.get("launcher") == "docker" and data.get("image") is None:
            return {**data, "image": DEFAULT_DOCKER_IMAGE}
        return data

    @model_validator(mode="after")
    def _url_needs_remote(self) -> ServerSpec:
        if self.launcher == "remote" and self.url is None:
            raise ValueError("launcher 'remote' needs url")
        if self.launcher != "remote" and (
            self.url is not None or self.metrics_url is not None or self.grpc_url is not None
        ):
            raise ValueError("url, metrics_url and grpc_url are only for launcher 'remote'")
        if self.kind != "triton" and self.launcher != "local":
            raise _invalid(("kind",), f"'{self.kind}' runs only with launcher 'local' (launcher is '{self.launcher}')")
        if self.kind != "triton" and self.device == "gpu":
            raise _invalid(("device",), f"is 'gpu' but kind '{self.kind}' serves on the CPU here (use 'auto' or 'cpu')")
        if self.launcher != "docker" and self.image is not None:
            raise _invalid(("image",), f"is only for launcher 'docker' (launcher is '{self.launcher}')")
        return self

    # Loading several onnxruntime models in the Python backend takes seconds on 2 cores;
    # GPU hosts loading BERT-base take longer still.
    startup_timeout_s: float = Field(120.0, gt=0)


class RunSpec(_Strict):
    duration_s: float = Field(60.0, gt=0)
    warmup_s: float = Field(10.0, ge=0)
    seed: int = 1
    baselines: bool = True
    # A request still in flight this long after its deployment's last arrival is recorded as an error.
    request_timeout_s: float = Field(30.0, gt=0)
    # Validity (MLPerf LoadGen style): a measurement shorter or smaller than this is INVALID.
    # LoadGen's server scenario asks 600 s; these defaults suit minutes-long CPU runs. Raise them for rigour.
    min_duration_s: float = Field(10.0, ge=0)
    min_requests: int = Field(100, ge=0)
    # external: through Triton. embedded: the same ONNX model run in-process by the load generator,
    # as extra `embedded-<tenant>` deployments.
    strategies: list[Literal["external", "embedded"]] = Field(default_factory=lambda: ["external"], min_length=1)
    # Compare serving frameworks: every deployment runs once per kind, as `<deployment>@<kind>`
    # (empty: once, on server.kind, under its own name).
    servers: list[ServerKind] = Field(default_factory=list)
    # Run every deployment this many times (interleaved), for Student-t confidence intervals across trials.
    repeat: int = Field(1, ge=1, le=100)
    # NVML sampling period. At 10 Hz the sampler thread used 0.7-0.9% of a core with the GPU idle and
    # 1.5% under a busy matmul loop on an H200 host (benchmarks/gpu_probe.py, docs/benchmarks.md).
    gpu_sample_period_s: float = Field(0.1, gt=0)
    # Triton's trace API at TIMESTAMPS level: 0 off, 1 every request, N every Nth (server-wide count).
    # Each traced request's server timeline lands in <deployment>/spans.parquet (local launcher only).
    trace_rate: int = Field(0, ge=0)


class PricingSpec(_Strict):
    provider: Literal["aws"] = "aws"
    instance: str = "g4dn.xlarge"
    region: str = "us-east-1"
    market: Literal["on-demand", "spot"] = "on-demand"


class LoadSpec(_Strict):
    """How a tenant's requests arrive. Open-loop kinds are seeded schedules drawn before the run."""

    arrival: Literal["poisson", "constant", "step", "spike", "trace", "ramp", "closed"] = "poisson"
    # Triton's inference protocol for this tenant: HTTP/REST or gRPC (the same server, records and latency).
    protocol: Literal["http", "grpc"] = "http"
    rate: float | None = Field(None, gt=0)  # req/s: poisson, constant, spike base, trace mean
    concurrency: int | None = Field(None, ge=1)  # closed loop only
    # step: [[rate, seconds], ...] levels (e.g. light, medium, high) held in turn, repeating.
    steps: list[Annotated[list[float], Field(min_length=2, max_length=2)]] | None = None
    # spike: `rate` as the base, `spike_rate` for `spike_s` seconds starting at `spike_at_s`.
    spike_rate: float | None = Field(None, gt=0)
    spike_at_s: float | None = Field(None, ge=0)
    spike_s: float | None = Field(None, gt=0)
    # ramp: a stress test: start at `rate`, add `ramp_step` req/s every `ramp_hold_s` seconds.
    ramp_step: float | None = Field(None, gt=0)
    ramp_hold_s: float | None = Field(None, gt=0)
    # trace: a CSV relative to the scenario file, replayed (looping) at mean rate `rate`.
    trace: str | None = None
    trace_format: Literal["timestamps", "azure"] = "timestamps"
    # azure: run seconds per trace minute (the per-minute counts of the Azure Functions 2019 trace).
    trace_minute_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _arrival_needs(self) -> LoadSpec:
        kind = self.arrival
        if kind == "closed":
            if self.rate is not None:
                raise ValueError("arrival 'closed' takes concurrency, not rate")
            if self.concurrency is None:
                raise ValueError("arrival 'closed' needs concurrency")
        elif self.concurrency is not None:
            raise ValueError(f"arrival '{kind}' takes rate, not concurrency")
        if kind in ("poisson", "constant", "spike", "trace", "ramp") and self.rate is None:
            raise ValueError(f"arrival '{kind}' needs rate")
        if kind == "step":
            if self.rate is not None:
                raise ValueError("arrival 'step' takes steps = [[rate, seconds], ...], not rate")
            if not self.steps or any(r <= 0 or d <= 0 for r, d in self.steps):
                raise ValueError("arrival 'step' needs steps = [[rate, seconds], ...] with rates and seconds > 0")
        elif self.steps is not None:
            raise ValueError(f"steps is only for arrival 'step', not '{kind}'")
        spike_keys = (self.spike_rate, self.spike_at_s, self.spike_s)
        if kind == "spike" and None in spike_keys:
            raise ValueError("arrival 'spike' needs spike_rate, spike_at_s and spike_s")
        if kind != "spike" and any(v is not None for v in spike_keys):
            raise ValueError(f"spike_rate/spike_at_s/spike_s are only for arrival 'spike', not '{kind}'")
        ramp_keys = (self.ramp_step, self.ramp_hold_s)
        if kind == "ramp" and None in ramp_keys:
            raise ValueError("arrival 'ramp' needs ramp_step and ramp_hold_s")
        if kind != "ramp" and any(v is not None for v in ramp_keys):
            raise ValueError(f"ramp_step/ramp_hold_s are only for arrival 'ramp', not '{kind}'")
        if (kind == "trace") != (self.trace is not None):
            raise ValueError(
                "arrival 'trace' needs trace = 'file.csv'" if kind == "trace" else "trace is only for arrival 'trace'"
            )
        return self

    @property
    def open_loop(self) -> bool:
        return is_open_loop(self.arrival)

    def scaled(self, k: float) -> LoadSpec:
        """The same pattern with every rate multiplied by ``k`` (closed loops are left as they are)."""
        if self.arrival == "closed":
            return self
        update: dict = {"rate": None if self.rate is None else self.rate * k}
        if self.steps is not None:
            update["steps"] = [[r * k, d] for r, d in self.steps]
        if self.spike_rate is not None:
            update["spike_rate"] = self.spike_rate * k
        if self.ramp_step is not None:
            update["ramp_step"] = self.ramp_step * k
        return self.model_copy(update=update)

    def mean_rate(self) -> float | None:
        """The nominal rate (req/s): the mean for step, the base for spike, the starting rate for a ramp;
        None for a closed loop."""
        if self.arrival == "step":
            total = sum(d for _, d in self.steps)
            return sum(r * d for r, d in self.steps) / total
        return self.rate  # for a ramp: its starting rate

    def ramp_levels(self, duration_s: float) -> list[tuple[float, float, float]]:
        """A ramp's (start, end, rate) levels over the measured window."""
        return ramp_levels(self.rate, self.ramp_step, self.ramp_hold_s, duration_s)


class TenantServerSpec(_Strict):
    """Per-tenant Triton settings; a field left out keeps the model's own config.pbtxt value."""

    instances: int | None = Field(None, ge=1)
    dynamic_batching: bool | None = None
    max_queue_delay_us: int | None = Field(None, ge=0)
    max_batch_size: int | None = Field(None, ge=0)


class Tenant(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    model: str = Field(min_length=1)
    # Acceptable models (INFaaS's "model-less" idea): `perseus plan` picks the variant that makes the fleet
    # cheapest; every other command runs the first. Given instead of `model`, which then is models[0].
    models: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    sla_ms: float = Field(gt=0)
    sla_percentile: float = Field(99.0, gt=0, lt=100)
    batch: int = Field(1, ge=1)
    load: LoadSpec
    server: TenantServerSpec = TenantServerSpec()

    @model_validator(mode="before")
    @classmethod
    def _model_from_models(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "models" not in data:
            return data
        models = data["models"]
        if models is None:
            return data
        if not (isinstance(models, list) and models and all(isinstance(m, str) and m for m in models)):
            raise ValueError(f"models must be a non-empty list of model names (got {models!r})")
        # An effective scenario (the manifest's) holds both, the default first; a user gives one of them.
        if "model" in data and data["model"] != models[0]:
            raise ValueError("give either model or models (a list of acceptable models, the default first), not both")
        return {**data, "model": models[0]}

    @model_validator(mode="after")
    def _distinct_models(self) -> Tenant:
        if self.models is not None and len(set(self.models)) != len(self.models):
            raise _invalid(("models",), f"lists a model twice (got {self.models!r})")
        return self

    @property
    def variants(self) -> tuple[str, ...]:
        """The models this tenant accepts, the default (``model``) first."""
        return tuple(self.models) if self.models else (self.model,)

    def variant_field(self, index: int, j: int) -> str:
        """The scenario field that names variant ``j`` (for errors): tenants[i].models[j] or tenants[i].model."""
        return f"tenants[{index}].models[{j}]" if self.models else f"tenants[{index}].model"

    def with_model(self, model: str) -> Tenant:
        """This tenant serving ``model``, one of its variants, as its only model."""
        return self.model_copy(update={"model": model, "models": None})


# -- [sweep]: a design space for `perseus sweep` --------------------------------------------------
# Factor paths: "tenants.*.server.<field>" (every tenant), "tenants.<name>.server.<field>" (one tenant),
# and "load.level" (every tenant's rate scaled by the level's factor).
SWEEP_SERVER_FIELDS: dict[str, tuple[type, int | None]] = {  # field -> (type, minimum)
    "instances": (int, 1),
    "dynamic_batching": (bool, None),
    "max_queue_delay_us": (int, 0),
    "max_batch_size": (int, 0),
}
LOAD_LEVEL = "load.level"
# Light, medium and high load as multiples of the scenario's rates; [sweep.levels] overrides or adds names.
DEFAULT_LEVELS = {"light": 0.5, "medium": 1.0, "high": 2.0}


def parse_factor(key: str) -> tuple[str | None, str] | None:
    """'tenants.*.server.instances' -> ('*', 'instances'); 'tenants.a.server.instances' -> ('a', 'instances');
    'load.level' -> (None, 'level'); None when the key is not a factor path."""
    if key == LOAD_LEVEL:
        return None, "level"
    parts = key.split(".")
    if len(parts) == 4 and parts[0] == "tenants" and parts[2] == "server" and parts[1]:
        return parts[1], parts[3]
    return None


def _factor_problem(key: str, values: Any, levels: dict[str, float]) -> str | None:
    parsed = parse_factor(key)
    if parsed is None:
        return (
            f"unknown factor (use 'tenants.*.server.<field>', 'tenants.<name>.server.<field>' or '{LOAD_LEVEL}'; "
            f"fields: {', '.join(SWEEP_SERVER_FIELDS)})"
        )
    tenant, name = parsed
    if tenant is not None and name not in SWEEP_SERVER_FIELDS:
        return f"unknown server field '{name}' (known: {', '.join(SWEEP_SERVER_FIELDS)})" + did_you_mean(
            name, SWEEP_SERVER_FIELDS
        )
    if not isinstance(values, list) or not values:
        return f"must be a non-empty list of values (got {values!r})"
    if len(set(map(repr, values))) != len(values):
        return f"lists a value twice (got {values!r})"
    for v in values:
        if tenant is None:
            if not isinstance(v, str) or v not in levels:
                return f"{v!r} is not a load level (known: {', '.join(levels)}; add others in [sweep.levels])"
            continue
        kind, low = SWEEP_SERVER_FIELDS[name]
        if type(v) is not kind:  # strict, as the rest of the schema: true is not 1, 1.0 is not 1
            return f"values must be {'booleans' if kind is bool else 'integers'} (got {v!r})"
        if low is not None and v < low:
            return f"values must be >= {low} (got {v!r})"
    return None


def _invalid(loc: tuple, message: str) -> ValidationError:
    """An error at ``loc`` (inside the model being validated), for keys pydantic cannot locate by itself."""
    error = PydanticCustomError("value_error", "{error}", {"error": message})
    return ValidationError.from_exception_data("SweepSpec", [InitErrorDetails(type=error, loc=loc, input=None)])


class SweepSpec(_Strict):
    """The design space of `perseus sweep`: factors, their levels, and how points are drawn from them."""

    sampling: Literal["factorial", "random", "lhs"] = "factorial"
    points: int | None = Field(None, ge=1)  # random and lhs only; factorial runs every combination
    seed: int = 1
    objective_percentile: float = Field(99.0, gt=0, lt=100)  # the latency percentile compared across points
    factors: dict[str, Any]
    levels: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _design(self) -> SweepSpec:
        if not self.factors:
            raise _invalid(("factors",), 'needs at least one factor, e.g. "tenants.*.server.instances" = [1, 2]')
        levels = self.effective_levels()
        seen: dict[tuple[str, str], str] = {}  # (tenant or "*", field) -> the key that sets it
        for key, values in self.factors.items():
            problem = _factor_problem(key, values, levels)
            if problem:
                raise _invalid(("factors", json.dumps(key, ensure_ascii=False)), problem)
            tenant, name = parse_factor(key)
            if tenant is None:
                continue
            if tenant == "*":
                clash = next((k for (_, f), k in seen.items() if f == name), None)
            else:
                clash = seen.get(("*", name))
            if clash:
                raise _invalid(
                    ("factors", json.dumps(key, ensure_ascii=False)),
                    f"overlaps {json.dumps(clash, ensure_ascii=False)} (both set server.{name})",
                )
            seen[(tenant, name)] = key
        if self.sampling != "factorial":
            if self.points is None:
                raise _invalid(("points",), f"sampling '{self.sampling}' needs points (how many to run)")
            total = self.combinations()
            if self.points > total:
                raise _invalid(("points",), f"is {self.points} but the factors have only {total} combinations")
        return self

    def effective_levels(self) -> dict[str, float]:
        return {**DEFAULT_LEVELS, **self.levels}

    def combinations(self) -> int:
        total = 1
        for values in self.factors.values():
            total *= len(values)
        return total


class GroupSpec(_Strict):
    """A ``[[deployments]]`` entry: some tenants on one server, measured as one of ``replicas`` servers.

    A replicated group is measured as one replica carrying each tenant's rate / ``replicas``: that
    assumes a balancer in front of the replicas that splits each tenant's traffic evenly.
    """

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    tenants: list[str] = Field(min_length=1)
    replicas: int = Field(1, ge=1, le=1000)
    instance: str | None = Field(None, min_length=1)  # priced as this instance (default: [pricing] instance)


class Scenario(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: str = ""
    server: ServerSpec = ServerSpec()
    run: RunSpec = RunSpec()
    pricing: PricingSpec = PricingSpec()
    tenants: list[Tenant] = Field(min_length=1)
    # Packings of tenants onto servers, run besides (run.baselines = true) or instead of (false) the
    # default `shared` and `solo-<tenant>` deployments.
    deployments: list[GroupSpec] = Field(default_factory=list)
    sweep: SweepSpec | None = None  # `perseus sweep` only

    @model_validator(mode="after")
    def _grpc_endpoint(self) -> Scenario:
        # A local or docker server's gRPC port is known once it runs; a remote one's must be given.
        if self.server.launcher == "remote" and self.server.grpc_url is None:
            for i, t in enumerate(self.tenants):
                if t.load.protocol == "grpc":
                    raise _invalid(
                        ("tenants", i, "load", "protocol"),
                        "'grpc' on launcher 'remote' needs server.grpc_url (e.g. '10.0.0.5:8001')",
                    )
        return self

    @model_validator(mode="after")
    def _servers_run_locally(self) -> Scenario:
        if len(set(self.run.servers)) != len(self.run.servers):
            raise _invalid(("run", "servers"), f"names a kind twice: {self.run.servers}")
        others = [k for k in self.run.servers if k != "triton"]
        if others and self.server.launcher != "local":
            raise _invalid(
                ("run", "servers"),
                f"{others[0]!r} runs only with server.launcher 'local' (launcher is '{self.server.launcher}')",
            )
        if others and self.server.device == "gpu":
            raise _invalid(("run", "servers"), f"{others[0]!r} serves on the CPU here, but server.device is 'gpu'")
        other = next((k for k in self.kinds() if k != "triton"), None)
        for i, t in enumerate(self.tenants):
            if other and t.load.protocol == "grpc":
                raise _invalid(
                    ("tenants", i, "load", "protocol"), f"'grpc' is Triton's; {other!r} is reached over HTTP here"
                )
        return self

    def kinds(self) -> list[str]:
        """The serving frameworks this scenario runs on: [run] servers, else server.kind."""
        return list(self.run.servers) or [self.server.kind]

    def on(self, kind: str) -> Scenario:
        """The scenario with its deployments on ``kind``."""
        return self.model_copy(update={"server": self.server.model_copy(update={"kind": kind})})

    def tenant(self, name: str) -> Tenant:
        return next(t for t in self.tenants if t.name == name)

    def group(self, name: str) -> GroupSpec:
        return next(g for g in self.deployments if g.name == name)

    def scaled(self, k: float) -> Scenario:
        """Every tenant's load scaled by ``k`` (capacity probes, one replica of a replicated group)."""
        tenants = [t.model_copy(update={"load": t.load.scaled(k)}) for t in self.tenants]
        return self.model_copy(update={"tenants": tenants})

    def with_models(self, chosen: dict[str, str]) -> Scenario:
        """The tenants in ``chosen`` serving the named variant as their only model (`perseus plan`'s choice)."""
        tenants = [t.with_model(chosen[t.name]) if t.name in chosen else t for t in self.tenants]
        return self.model_copy(update={"tenants": tenants})


def _field_path(loc: tuple) -> str:
    """pydantic's ('tenants', 1, 'load', 'rate') -> 'tenants[1].load.rate'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            # A quoted TOML key may hold anything; keep the error on one printable line.
            text = str(part) if str(part).isprintable() else json.dumps(str(part))
            out += f".{text}" if out else text
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold: through Optional, unions, lists, dicts and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _known_keys(loc: tuple) -> list[str]:
    """The keys a table may hold at ``loc`` (pydantic's location of its parent), for "did you mean"."""
    models: list[type[BaseModel]] = [Scenario]
    for part in loc:
        if isinstance(part, int):  # an index into a list: the same models
            continue
        models = [
            m for model in models if part in model.model_fields for m in _models_in(model.model_fields[part].annotation)
        ]
    return [f.alias or name for model in models for name, f in model.model_fields.items()]


_BOUND_WORDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _reason(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    for word, op in _BOUND_WORDS.items():
        if kind == word:
            bound = next(iter(ctx.values()))
            return f"must be {op} {bound:g} (got {err.get('input')!r})"
    if kind == "extra_forbidden":
        return "unknown key" + did_you_mean(err["loc"][-1], _known_keys(tuple(err["loc"][:-1])))
    if kind == "finite_number":
        return f"must be a finite number (got {err.get('input')!r})"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {err.get('input')!r})"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')} (lowercase letters, digits, '_' and '-')"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {err.get('input')!r})"


def parse(data: dict, source: str) -> Scenario:
    """Validate a scenario mapping; the first problem becomes one InputError naming the field."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        # An unknown key first: a misspelt required key ("sla_msec") is also reported missing, and the
        # unknown one is the line that names the typo and suggests the fix.
        err = next((e for e in errs if e["type"] == "extra_forbidden"), errs[0])
        field = _field_path(tuple(err["loc"])) or None
        raise InputError(source, field, _reason(err)) from None
    seen: set[str] = set()
    for i, tenant in enumerate(scenario.tenants):
        if tenant.name in seen:
            raise InputError(source, f"tenants[{i}].name", f"duplicate tenant name '{tenant.name}'")
        seen.add(tenant.name)
    check_groups(scenario, source)
    if scenario.run.trace_rate and scenario.server.launcher != "local":
        # The trace file is written on the server's host, and only the local launcher shares the
        # client's clock (both read CLOCK_MONOTONIC), so only there do timestamps align exactly.
        raise InputError(source, "run.trace_rate", f"needs launcher 'local' (launcher is '{scenario.server.launcher}')")
    return scenario


def check_groups(scenario: Scenario, source: str) -> None:
    """``[[deployments]]``: every tenant in exactly one group, known tenants, unique names, no clash."""
    if not scenario.deployments:
        return
    tenants = {t.name for t in scenario.tenants}
    reserved = {"shared", *(f"solo-{t}" for t in tenants)} if scenario.run.baselines else set()
    names: set[str] = set()
    placed: dict[str, str] = {}
    for i, group in enumerate(scenario.deployments):
        where = f"deployments[{i}]"
        if group.name in names:
            raise InputError(source, f"{where}.name", f"duplicate deployment name '{group.name}'")
        if group.name in reserved:
            raise InputError(
                source,
                f"{where}.name",
                f"'{group.name}' is a baseline's name (rename it, or set run.baselines = false)",
            )
        names.add(group.name)
        for j, tenant in enumerate(group.tenants):
            if tenant not in tenants:
                known = ", ".join(t.name for t in scenario.tenants)
                raise InputError(
                    source,
                    f"{where}.tenants[{j}]",
                    f"no tenant '{tenant}' (tenants: {known})" + did_you_mean(tenant, tenants),
                )
            if tenant in placed:
                raise InputError(
                    source, f"{where}.tenants[{j}]", f"tenant '{tenant}' is already in deployment '{placed[tenant]}'"
                )
            placed[tenant] = group.name
            if group.replicas > 1 and not scenario.tenant(tenant).load.open_loop:
                raise InputError(
                    source,
                    f"{where}.replicas",
                    f"tenant '{tenant}' is closed loop: a replicated group splits open-loop rates only",
                )
    missing = [t.name for t in scenario.tenants if t.name not in placed]
    if missing:
        raise InputError(source, "deployments", f"tenant '{missing[0]}' is in no deployment (each is in exactly one)")


def load(path: Path) -> tuple[Scenario, dict]:
    """Read and validate a scenario file. Returns the typed scenario and the raw mapping as requested."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"TOML syntax error: {exc}") from None
    scenario = parse(_resolve_traces(raw, path), str(path))
    for i, tenant in enumerate(scenario.tenants):
        if tenant.load.arrival == "trace":
            check_trace(tenant.load, str(path), f"tenants[{i}].load.trace")
    return scenario, raw


def _resolve_traces(raw: dict, path: Path) -> dict:
    """Trace paths are relative to the scenario file; the effective scenario records them absolute."""
    tenants = raw.get("tenants")
    if not isinstance(tenants, list):
        return raw
    out = dict(raw)
    out["tenants"] = []
    for tenant in tenants:
        load = tenant.get("load") if isinstance(tenant, dict) else None
        if isinstance(load, dict) and isinstance(load.get("trace"), str):
            tenant = {**tenant, "load": {**load, "trace": str((path.parent / load["trace"]).resolve())}}
        out["tenants"].append(tenant)
    return out


def repository_path(scenario: Scenario, scenario_file: Path) -> Path:
    """``server.model_repository`` is relative to the scenario file."""
    return (Path(scenario_file).parent / scenario.server.model_repository).resolve()


def with_overrides(
    scenario: Scenario,
    *,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    baselines: bool | None = None,
    repeat: int | None = None,
    trace_rate: int | None = None,
    source: str = "command line",
) -> Scenario:
    """The effective scenario after CLI flags, validated like the file itself."""
    run = scenario.run.model_dump()
    overrides = (
        ("duration_s", duration_s),
        ("warmup_s", warmup_s),
        ("baselines", baselines),
        ("repeat", repeat),
        ("trace_rate", trace_rate),
    )
    for key, value in overrides:
        if value is not None:
            run[key] = value
    data = scenario.model_dump()
    data["run"] = run
    try:
        return parse(data, source)
    except InputError as exc:
        # A bad flag value is the command line's fault, not the file's: name the flag.
        flags = {
            "run.duration_s": "--duration",
            "run.warmup_s": "--warmup",
            "run.repeat": "--repeat",
            "run.trace_rate": "--trace-rate",
        }
        values = {
            "run.duration_s": duration_s,
            "run.warmup_s": warmup_s,
            "run.repeat": repeat,
            "run.trace_rate": trace_rate,
        }
        if exc.field in flags and values[exc.field] is not None:
            raise InputError("command line", flags[exc.field], exc.reason) from None
        raise
