"""The project's vocabulary of kinds, defined once: what a deployment is, and which arrivals are open loop.

Everything that needs to know whether a deployment is the shared server, a tenant's solo baseline or
a group reads the kind recorded where the deployment was made (the manifest), never its name.
"""

from __future__ import annotations

from enum import StrEnum


class DeploymentKind(StrEnum):
    SHARED = "shared"  # every tenant of the scenario on one server
    SOLO = "solo"  # one tenant alone: its single-tenant baseline
    GROUP = "group"  # a [[deployments]] group: some tenants together, possibly replicated
    EMBEDDED = "embedded"  # one tenant's model run inside the load generator (no server)
    PROBE = "probe"  # a capacity probe: tenants at scaled rates
    POINT = "point"  # a sweep's design point
    CALIBRATION = "calibration"  # perseus calibrate's M/D/1 model


class Status(StrEnum):
    """A deployment's or a run's status (docs/results.md, "Statuses and exit codes")."""

    NOT_STARTED = "not started"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class TelemetrySource(StrEnum):
    """What a deployment scrapes while it runs; a failed scrape is counted by source (the manifest's
    ``failed_scrapes``, perseus/telemetry/scrapes.py) and the report says which figures it weakens."""

    TRITON_METRICS = "triton_metrics"  # Triton's Prometheus /metrics
    TRITON_STATS = "triton_stats"  # Triton's statistics API, /v2/models/stats
    HOST = "host"  # psutil: CPU and memory of the server and of the load generator
    NVML = "nvml"  # GPU readings (one that worked before on the same device, then failed)
    FRAMEWORK_METRICS = "framework_metrics"  # MLServer's or BentoML's own Prometheus endpoint


# Arrival patterns whose requests are sent on a schedule drawn up front, whatever the server does.
# "closed" is the one closed loop: each user sends its next request when the last one returns.
OPEN_LOOP_ARRIVALS = frozenset({"poisson", "constant", "step", "spike", "trace", "ramp"})


def is_open_loop(arrival: str) -> bool:
    return arrival in OPEN_LOOP_ARRIVALS
