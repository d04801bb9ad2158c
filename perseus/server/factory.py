"""Which server a deployment gets: local tritonserver, MLServer or BentoML, a docker container, a remote one, or none.

Local and docker: a repository rendered for this deployment, each tenant's model served under the
tenant's name. Remote: the server as it is, models under their own names. Embedded: no server; the
model runs inside the load generator.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import text_format

from perseus import results
from perseus.plan import Deployment
from perseus.scenario import Scenario
from perseus.server import Server, bentoml, frameworks, mlserver, repository, tracing
from perseus.server.bentoml import BentoMLServer
from perseus.server.docker import DockerServer
from perseus.server.local import LocalServer
from perseus.server.mlserver import MLServerServer
from perseus.server.remote import RemoteServer


def server_for(
    scenario: Scenario, deployment: Deployment, source_repo: Path, tmp: Path, dep_dir: Path, gpu: bool
) -> tuple[Server, dict[str, str]]:
    """The deployment's server and, per tenant, the model name it is served under there."""
    log = dep_dir / results.SERVER_LOG
    if deployment.strategy == "embedded":
        return NoServer(log), {name: name for name in deployment.tenants}
    if scenario.server.launcher == "remote":
        served = {name: scenario.tenant(name).model for name in deployment.tenants}
        spec = scenario.server
        return RemoteServer(spec.url, log, spec.metrics_url, spec.grpc_url), served
    if scenario.server.kind == "mlserver":
        return _mlserver(scenario, deployment, source_repo, tmp, dep_dir), {name: name for name in deployment.tenants}
    if scenario.server.kind == "bentoml":
        return _bentoml(scenario, deployment, source_repo, tmp, dep_dir), {name: name for name in deployment.tenants}
    # Docker: the same rendered repository, mounted read-only into an NGC Triton container that serves
    # the models' native onnxruntime configs (configs/onnxruntime.pbtxt), so those get the settings too.
    docker = scenario.server.launcher == "docker"
    rendered = repository.render(scenario, list(deployment.tenants), source_repo, tmp / "repo", gpu, native=docker)
    _save_configs(rendered, dep_dir / results.CONFIGS)
    pipelines = {n: repository.steps(source_repo, scenario.tenant(n).model) for n in deployment.tenants}
    (dep_dir / results.CONFIGS / results.STEPS_JSON).write_text(json.dumps({k: v for k, v in pipelines.items() if v}))
    timeout = scenario.server.startup_timeout_s
    if docker:
        server = DockerServer(
            tmp / "repo",
            log,
            image=scenario.server.image,
            gpu=gpu,
            startup_timeout_s=timeout,
            deployment=deployment.name,
        )
    else:
        traced = tracing.traced(scenario, deployment)
        server = LocalServer(
            tmp / "repo",
            log,
            startup_timeout_s=timeout,
            extra_args=tracing.server_args(tmp / tracing.TRACE_DIR, scenario.run.trace_rate) if traced else (),
            extra_env=tracing.SERVER_ENV if traced else None,
            crash_note=tracing.CRASH_NOTE if traced else "",
            writes_at_exit=traced,  # its last traces
        )
    return server, {name: name for name in deployment.tenants}


def _mlserver(scenario: Scenario, deployment: Deployment, source_repo: Path, tmp: Path, dep_dir: Path) -> Server:
    """The repository rendered as for Triton, then translated to MLServer's settings (perseus.server.mlserver);
    the settings each tenant was served with are kept in configs/ as <tenant>.model-settings.json."""
    tenants = list(deployment.tenants)
    rendered = repository.render(scenario, tenants, source_repo, tmp / "repo", gpu=False)
    written = mlserver.write_repository(tmp / "repo", rendered, tenants)
    configs = dep_dir / results.CONFIGS
    configs.mkdir(parents=True, exist_ok=True)
    for name, settings in written.items():
        (configs / f"{name}.{mlserver.MODEL_SETTINGS}").write_text(json.dumps(settings, indent=2) + "\n")
    return MLServerServer(
        tmp / "repo",
        dep_dir / results.SERVER_LOG,
        frameworks.check_installed("mlserver", "server.kind"),
        tenants,
        workers=max(mlserver.instances(rendered[name]) for name in tenants),
        startup_timeout_s=scenario.server.startup_timeout_s,
        record_dir=configs,
    )


def _bentoml(scenario: Scenario, deployment: Deployment, source_repo: Path, tmp: Path, dep_dir: Path) -> Server:
    """The repository rendered as for Triton, then one BentoML service for all its tenants
    (perseus.server.bentoml); the spec it was served with is kept as configs/perseus-bento.json."""
    tenants = list(deployment.tenants)
    rendered = repository.render(scenario, tenants, source_repo, tmp / "repo", gpu=False)
    workers = max(mlserver.instances(rendered[name]) for name in tenants)
    spec = bentoml.write_service(tmp / "repo", rendered, tenants, workers, scenario.run.request_timeout_s)
    configs = dep_dir / results.CONFIGS
    configs.mkdir(parents=True, exist_ok=True)
    (configs / bentoml.SPEC).write_text(json.dumps(spec, indent=2) + "\n")
    return BentoMLServer(
        tmp / "repo",
        dep_dir / results.SERVER_LOG,
        frameworks.check_installed("bentoml", "server.kind"),
        startup_timeout_s=scenario.server.startup_timeout_s,
    )


class NoServer:
    """Embedded deployments have no server: the model runs inside the load generator."""

    url = metrics_url = grpc_address = ""

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


def _save_configs(rendered: dict, folder: Path) -> None:
    """The exact config.pbtxt each tenant was served with, kept for the record."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, config in rendered.items():
        (folder / f"{name}.pbtxt").write_text(text_format.MessageToString(config), encoding="utf-8")
