"""A deployment's load, built from the scenario: one ``TenantLoad`` per tenant, schedules drawn up front.

The one place that turns a scenario and a deployment into a ``LoadRun``: ``perseus run`` (one process),
each ``perseus worker`` (which then keeps its shard) and ``perseus ui`` all build it here, so they send
exactly the same requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perseus.errors import ServerError
from perseus.load import arrivals
from perseus.load.embedded import EmbeddedModel, onnx_file
from perseus.load.engine import LoadRun, TenantLoad
from perseus.load.inputs import Request, build_bentoml_request, build_request
from perseus.plan import Deployment
from perseus.records import StreamWriter
from perseus.scenario import Scenario


def build_load_run(
    scenario: Scenario,
    deployment: Deployment,
    url: str,
    recorder: StreamWriter,
    served: dict[str, str],
    source_repo: Path | None,
    grpc_address: str = "",
) -> LoadRun:
    """``served``: tenant -> the model's name on the server. ``source_repo`` is needed only for embedded.
    ``grpc_address``: the server's gRPC host:port, for tenants with ``load.protocol = "grpc"``."""
    loads = [tenant_load(scenario, deployment, name, url, served, source_repo) for name in deployment.tenants]
    if any(load.request is not None and load.request.protocol == "grpc" for load in loads) and not grpc_address:
        raise ServerError(f"deployment {deployment.name}: a tenant speaks gRPC but the server has no gRPC address")
    return LoadRun(
        url,
        loads,
        recorder,
        warmup_s=scenario.run.warmup_s,
        duration_s=scenario.run.duration_s,
        request_timeout_s=scenario.run.request_timeout_s,
        grpc_address=grpc_address,
        tag_requests=scenario.run.trace_rate > 0,
    )


def tenant_load(
    scenario: Scenario, deployment: Deployment, name: str, url: str, served: dict[str, str], source_repo: Path | None
) -> TenantLoad:
    tenant = scenario.tenant(name)
    # One generator per (seed, tenant): the request body is drawn first, then the schedule, so every
    # deployment that holds this tenant replays identical arrivals.
    rng = arrivals.tenant_rng(scenario.run.seed, name)
    request = transport = None
    if deployment.strategy == "embedded":
        model_file = onnx_file(source_repo, tenant.model)
        transport = EmbeddedModel(model_file, tenant.batch, rng, instances=tenant.server.instances or 1)
    else:
        request = _request(scenario.server.kind, url, served[name], tenant.batch, rng, tenant.load.protocol)
    load = TenantLoad(
        tenant=name,
        model=tenant.model,
        deployment=deployment.name,
        request=request,
        transport=transport,
        arrival=tenant.load.arrival,
        concurrency=tenant.load.concurrency or 1,
    )
    if tenant.load.open_loop:
        load.schedule = arrivals.schedule(tenant.load, scenario.run.warmup_s, scenario.run.duration_s, rng)
    return load


def _request(kind: str, url: str, served_name: str, batch: int, rng: np.random.Generator, protocol: str) -> Request:
    """The tenant's prebuilt request for its server's kind (and, on Triton, its protocol)."""
    if kind == "bentoml":
        return build_bentoml_request(url, served_name, batch, rng)
    # MLServer lacks Triton's binary tensor extension: its bodies are the V2 protocol's JSON.
    return build_request(url, served_name, batch, rng, protocol, binary=kind == "triton")


def counting_loads(scenario: Scenario, deployment: Deployment) -> list[TenantLoad]:
    """Tenants that only count (no request, no schedule): the master's view of load its workers send."""
    return [
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
