"""What each load worker sends (pure): shards of one deployment's load, and the plan that carries it.

Every worker builds the deployment's whole load exactly as one process would (same seed, same
schedules, same request bodies) and keeps its shard, so the shards partition the load by
construction. Kept apart from ``distributed.py`` so that it imports no Locust (and no gevent
monkey-patching).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from perseus.scenario import Scenario


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


def make_plan(scenario, deployment, url: str, served: dict[str, str]) -> dict:
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
        "served": dict(served),
        "traces": {
            name: Path(scenario.tenant(name).load.trace).read_text(encoding="utf-8")
            for name in deployment.tenants
            if scenario.tenant(name).load.trace
        },
    }


def scenario_from_plan(plan: dict, folder: Path):
    """The master's scenario, with its trace files (shipped in the plan) written into ``folder``.

    A worker on another machine does not have the master's files; the trace is the only one it needs
    (request bodies come from the server's model metadata).
    """
    data = json.loads(plan["scenario"])
    for tenant in data["tenants"]:
        if tenant["name"] in plan["traces"]:
            path = folder / f"{tenant['name']}.csv"
            path.write_text(plan["traces"][tenant["name"]], encoding="utf-8")
            tenant["load"]["trace"] = str(path)
    return Scenario.model_validate_json(json.dumps(data))
