"""Per-deployment model repositories: the tenants' models with the scenario's settings applied.

Each tenant's model is served under the *tenant's* name. Two tenants may then share a model with
different settings, and Triton's per-model metrics and statistics are per tenant for free.
config.pbtxt is parsed and written with Triton's own ModelConfig protobuf, so a broken file is
caught before any server starts.

Zoo models also carry a native config, configs/onnxruntime.pbtxt (platform onnxruntime_onnx). The
docker launcher serves those (``tritonserver --model-config-name=onnxruntime``; a model without one
falls back to config.pbtxt), so ``render(native=True)`` applies the tenant's settings to them too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from perseus.errors import InputError, did_you_mean
from perseus.scenario import Scenario, Tenant

CONFIG = "config.pbtxt"
# What `tritonserver --model-config-name=onnxruntime` loads instead of config.pbtxt, where it exists.
NATIVE_CONFIG_NAME = "onnxruntime"
NATIVE_CONFIG = Path("configs") / f"{NATIVE_CONFIG_NAME}.pbtxt"
# Launchers that serve the native configs.
NATIVE_LAUNCHERS = ("docker",)
# Files above this size are linked, not copied: ONNX weights of BERT-base are ~440 MB.
LINK_ABOVE_BYTES = 1 << 20


def read_config(path: Path) -> mc.ModelConfig:
    try:
        return text_format.Parse(Path(path).read_text(encoding="utf-8"), mc.ModelConfig())
    except FileNotFoundError:
        raise InputError(path, None, "missing config.pbtxt") from None
    except OSError as exc:  # a folder named config.pbtxt, no permission, ...
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not a valid Triton model config: {exc}") from None


def check_models(scenario: Scenario, repository: Path, source: str) -> None:
    """Every tenant's model (each of its variants) exists in the repository with a parseable config."""
    if not repository.is_dir():
        raise InputError(source, "server.model_repository", f"no such directory: {repository}")
    available = sorted(p.name for p in repository.iterdir() if p.is_dir() and not p.name.startswith("."))
    for i, tenant in enumerate(scenario.tenants):
        for j, model in enumerate(tenant.variants):
            _check_model(
                scenario, repository, source, available, tenant.with_model(model), i, tenant.variant_field(i, j)
            )


def _check_model(
    scenario: Scenario, repository: Path, source: str, available: list[str], tenant: Tenant, i: int, field: str
) -> None:
    if tenant.model in (".", "..") or Path(tenant.model).name != tenant.model or "\0" in tenant.model:
        # A path would reach outside the repository (and be copied into the rendered one).
        raise InputError(source, field, f"{tenant.model!r} must be a folder name in {repository}, not a path")
    model_dir = repository / tenant.model
    if not model_dir.is_dir():
        raise InputError(
            source,
            field,
            f"no model {tenant.model!r} in {repository} (has: {', '.join(available) or 'nothing'})"
            + did_you_mean(tenant.model, available),
        )
    config = read_config(model_dir / CONFIG)
    if config.name and config.name != tenant.model:
        raise InputError(model_dir / CONFIG, "name", f"is {config.name!r} but the folder is {tenant.model!r}")
    configs = [config]
    native = model_dir / NATIVE_CONFIG
    if scenario.server.launcher in NATIVE_LAUNCHERS and native.is_file():
        configs.append(read_config(native))
        if configs[-1].name and configs[-1].name != tenant.model:
            raise InputError(native, "name", f"is {configs[-1].name!r} but the folder is {tenant.model!r}")
    try:
        for each in configs:
            apply_settings(each, tenant, tenant.name, gpu=False)  # raises on settings the model cannot take
    except InputError as exc:
        raise InputError(source, f"tenants[{i}].{exc.field}", exc.reason) from None
    for step in steps(repository, tenant.model):
        if not (repository / step / CONFIG).is_file():
            raise InputError(source, field, f"ensemble {tenant.model!r} needs model {step!r}, not in {repository}")


def steps(repository: Path, model: str, _seen: frozenset = frozenset()) -> list[str]:
    """The models an ensemble runs, nested ensembles included, in step order (none for a plain model)."""
    path = repository / model / CONFIG
    if model in _seen or not path.is_file():
        return []
    config = read_config(path)
    if config.platform != "ensemble":
        return []
    out: list[str] = []
    for step in config.ensemble_scheduling.step:
        for name in (step.model_name, *steps(repository, step.model_name, _seen | {model})):
            if name not in out:
                out.append(name)
    return out


# The widths of the ModelConfig fields that [tenants.server] sets (int32, int32, uint64).
_LIMITS = {"max_batch_size": 2**31 - 1, "instances": 2**31 - 1, "max_queue_delay_us": 2**64 - 1}


def apply_settings(config: mc.ModelConfig, tenant: Tenant, served_name: str, gpu: bool) -> mc.ModelConfig:
    """The tenant's [tenants.server] settings written into a copy of the model's config."""
    out = mc.ModelConfig()
    out.CopyFrom(config)
    out.name = served_name
    settings = tenant.server
    for key, limit in _LIMITS.items():
        value = getattr(settings, key)
        if value is not None and value > limit:  # protobuf would raise ValueError on assignment
            raise InputError(f"tenant '{tenant.name}'", f"server.{key}", f"must be <= {limit} (got {value})")
    if config.platform == "ensemble":
        for key in ("instances", "dynamic_batching", "max_queue_delay_us", "max_batch_size"):
            if getattr(settings, key) is not None:
                raise InputError(
                    f"tenant '{tenant.name}'",
                    f"server.{key}",
                    f"model {config.name!r} is an ensemble: set instances and batching on the models it runs",
                )
        return out
    if settings.max_batch_size is not None:
        out.max_batch_size = settings.max_batch_size
    if settings.instances is not None:
        del out.instance_group[:]
        group = out.instance_group.add()
        group.count = settings.instances
        group.kind = mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
    elif gpu:
        # The scenario asked for the GPU: the model's own CPU instance groups move there too.
        for group in out.instance_group:
            if group.kind == mc.ModelInstanceGroup.KIND_CPU:
                group.kind = mc.ModelInstanceGroup.KIND_GPU
    if settings.dynamic_batching is False:
        out.ClearField("dynamic_batching")
    elif settings.dynamic_batching or settings.max_queue_delay_us is not None:
        out.dynamic_batching.SetInParent()
        if settings.max_queue_delay_us is not None:
            out.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    if out.HasField("dynamic_batching") and out.max_batch_size == 0:
        raise InputError(
            f"tenant '{tenant.name}'",
            "server.dynamic_batching",
            f"model {tenant.model!r} has max_batch_size 0, so it cannot batch",
        )
    if settings.dynamic_batching is False and settings.max_queue_delay_us is not None:
        # The delay would be dropped with the batcher: a contradiction, not a setting to ignore.
        raise InputError(
            f"tenant '{tenant.name}'",
            "server.max_queue_delay_us",
            "is set but dynamic_batching is false (the queue delay is a dynamic batching setting)",
        )
    # Otherwise every request would fail at the server (too large a batch), or the batch would be
    # silently sent as 1 (a model without a batch dimension).
    if out.max_batch_size > 0 and tenant.batch > out.max_batch_size:
        raise InputError(
            f"tenant '{tenant.name}'",
            "batch",
            f"is {tenant.batch} but model {tenant.model!r} takes at most {out.max_batch_size} (max_batch_size)",
        )
    if out.max_batch_size == 0 and tenant.batch > 1:
        raise InputError(
            f"tenant '{tenant.name}'",
            "batch",
            f"is {tenant.batch} but model {tenant.model!r} has max_batch_size 0 (no batch dimension): use 1",
        )
    return out


def _mirror(src: Path, dst: Path) -> None:
    """Copy a model folder; large files are symlinked (they are read-only to the server)."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.name == CONFIG:
            continue
        if item.is_dir():
            _mirror(item, target)
        elif item.stat().st_size > LINK_ABOVE_BYTES:
            os.symlink(item.resolve(), target)
        else:
            shutil.copy2(item, target)


def render(
    scenario: Scenario, tenants: list[str], source: Path, dest: Path, gpu: bool, *, native: bool = False
) -> dict[str, mc.ModelConfig]:
    """Write dest/<tenant>/ for each tenant; returns the configs served, by served name.

    An ensemble tenant is served under its tenant's name; the models its steps run are copied under
    their own names (the ensemble refers to them by name), with their own configs.

    ``native``: the server loads configs/onnxruntime.pbtxt where a model has one (the docker launcher),
    so that file gets the tenant's settings and the device too, and it is the config returned.
    Otherwise configs/ is copied as it is (the server never reads it).
    """
    rendered = {}
    for name in tenants:
        tenant = scenario.tenant(name)
        src = source / tenant.model
        config = apply_settings(read_config(src / CONFIG), tenant, name, gpu)
        _mirror(src, dest / name)
        (dest / name / CONFIG).write_text(text_format.MessageToString(config), encoding="utf-8")
        rendered[name] = config
        if native and (src / NATIVE_CONFIG).is_file():
            config = _native_device(apply_settings(read_config(src / NATIVE_CONFIG), tenant, name, gpu), gpu)
            (dest / name / NATIVE_CONFIG).write_text(text_format.MessageToString(config), encoding="utf-8")
            rendered[name] = config
        for step in steps(source, tenant.model):
            if (dest / step).exists():
                continue
            step_config = _on_device(read_config(source / step / CONFIG), gpu)
            _mirror(source / step, dest / step)
            (dest / step / CONFIG).write_text(text_format.MessageToString(step_config), encoding="utf-8")
            rendered[step] = step_config
            if native and (source / step / NATIVE_CONFIG).is_file():
                step_config = _native_device(read_config(source / step / NATIVE_CONFIG), gpu)
                step_config.name = step
                (dest / step / NATIVE_CONFIG).write_text(text_format.MessageToString(step_config), encoding="utf-8")
                rendered[step] = step_config
    return rendered


def _on_device(config: mc.ModelConfig, gpu: bool) -> mc.ModelConfig:
    if gpu:
        for group in config.instance_group:
            if group.kind == mc.ModelInstanceGroup.KIND_CPU:
                group.kind = mc.ModelInstanceGroup.KIND_GPU
    return config


def _native_device(config: mc.ModelConfig, gpu: bool) -> mc.ModelConfig:
    """Native configs ask for KIND_GPU; a CPU-only run moves them to the CPU (and a GPU run the other way)."""
    want, other = (
        (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_CPU)
        if gpu
        else (mc.ModelInstanceGroup.KIND_CPU, mc.ModelInstanceGroup.KIND_GPU)
    )
    for group in config.instance_group:
        if group.kind == other:
            group.kind = want
            del group.gpus[:]  # GPU ids mean nothing on the CPU
    return config
