"""What each load worker sends (pure): shards of one deployment's load, and the plan that carries it.

Every worker builds the deployment's whole load exactly as one process would (same seed, same
schedules, same request bodies) and keeps its shard, so the shards partition the load by
construction. Kept apart from ``distributed.py`` so that it imports no Locust (and no gevent
monkey-patching).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from perseus.errors import PerseusError
from perseus.scenario import Scenario

# Deployment names perseus makes: tenant-like names, probes' "probe-a+b-x1.500", trials' "-t2".
DEPLOYMENT_NAME = r"^[a-z0-9][a-z0-9_.+-]*$"


def shard_schedule(schedule: np.ndarray, shard: int, shards: int) -> np.ndarray:
    """Arrivals ``shard, shard + shards, ...``: the shards partition the schedule, in time order."""
    return schedule[shard::shards]


def shard_concurrency(concurrency: int, shard: int, shards: int) -> int:
    """Closed-loop users of one shard: ``concurrency`` split as evenly as possible, in total the same."""
    return concurrency // shards + (1 if shard < concurrency % shards else 0)


def shard_loads(loads: list, shard: int, shards: int) -> list:
    """This shard's part of every tenant; a closed-loop tenant with no user here is left out."""
    out = []
    for load in loads:
        if load.open_loop:
            load.schedule = shard_schedule(load.schedule, shard, shards)
        else:
            load.concurrency = shard_concurrency(load.concurrency, shard, shards)
            if load.concurrency == 0:
                continue
        out.append(load)
    return out


def make_plan(scenario, deployment, url: str, served: dict[str, str], grpc_address: str = "") -> dict:
    """What every worker needs to build its shard (see ``distributed.build_shard``)."""
    return {
        "scenario": scenario.model_dump_json(),
        "deployment": {
            "name": deployment.name,
            "tenants": list(deployment.tenants),
            "base": deployment.base,
            "trial": deployment.trial,
            "strategy": deployment.strategy,
        },
        "url": url,
        "grpc_address": grpc_address,
        "served": dict(served),
        "traces": {
            name: Path(scenario.tenant(name).load.trace).read_text(encoding="utf-8")
            for name in deployment.tenants
            if scenario.tenant(name).load.trace
        },
    }


class _DeploymentPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DEPLOYMENT_NAME, max_length=200)
    tenants: list[str] = Field(min_length=1)
    base: str | None = Field(None, pattern=DEPLOYMENT_NAME, max_length=200)
    trial: int = Field(1, ge=1)
    strategy: Literal["external", "embedded"] = "external"


class WorkerPlan(BaseModel):
    """A master's plan, as a worker checks it before using any of it (it comes from the network)."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    deployment: _DeploymentPlan
    url: str = Field(pattern=r"^https?://[^\s]+$")
    grpc_address: str = Field("", pattern=r"^([A-Za-z0-9._\[\]:-]+:[0-9]{1,5})?$")
    served: dict[str, str]
    traces: dict[str, str]
    token: str = Field(min_length=1, max_length=200)
    shard: int = Field(ge=0)
    shards: int = Field(ge=1, le=10_000)
    t0: float


def check_plan(plan: object) -> tuple[WorkerPlan, Scenario]:
    """The plan and its scenario, validated; PlanError naming the first problem. Nothing is written before.

    Tenant names are checked by the scenario's own schema ([a-z0-9][a-z0-9_-]*), so a name such as
    ``../x`` never becomes a path; every name the plan uses must be one of the scenario's tenants."""
    checked = _valid(WorkerPlan.model_validate, plan, "")
    scenario = _valid(Scenario.model_validate_json, checked.scenario, "scenario.")
    names = {t.name for t in scenario.tenants}
    used = {
        "deployment.tenants": set(checked.deployment.tenants),
        "served": set(checked.served),
        "traces": set(checked.traces),
    }
    for where, tenants in used.items():
        unknown = sorted(tenants - names)
        if unknown:
            raise PlanError(f"the master's plan is not valid: {where}: not a tenant of its scenario: {unknown[0]!r}")
    if checked.shard >= checked.shards:
        raise PlanError(f"the master's plan is not valid: shard {checked.shard} of {checked.shards}")
    return checked, scenario


def _valid(validate, value, prefix: str):
    try:
        return validate(value)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = prefix + ".".join(str(p) for p in err["loc"])
        raise PlanError(f"the master's plan is not valid: {where}: {err['msg']}") from None


class PlanError(PerseusError):
    """A master's plan that a worker refuses."""


def scenario_from_plan(plan: dict, folder: Path) -> Scenario:
    """The master's scenario, checked, with its trace files (shipped in the plan) written into ``folder``.

    A worker on another machine does not have the master's files; the trace is the only one it needs
    (request bodies come from the server's model metadata).
    """
    checked, _ = check_plan(plan)
    data = json.loads(checked.scenario)
    for tenant in data["tenants"]:
        if tenant["name"] in checked.traces:
            path = folder / f"{tenant['name']}.csv"  # a validated tenant name: no separator, no ".."
            path.write_text(checked.traces[tenant["name"]], encoding="utf-8")
            tenant["load"]["trace"] = str(path)
    return Scenario.model_validate_json(json.dumps(data))
