"""The observer effect: how much CPU the load generator took, next to the server it measures (pure).

perseus generates load on the host it measures, unless the server is remote. Every CPU second the
generator spends there is a second the server did not have, so a heavy generator makes the server
look slower than it is. The host sampler (perseus/telemetry/host.py) records the generator's CPU
(this process and its local workers, never the server it started) once a second; from it come each
deployment's CPU share and its CPU per request, and a note when the share is large enough to matter.
"""

from __future__ import annotations

import json
import math
from urllib.parse import urlsplit

import pandas as pd

from perseus.kinds import DeploymentKind

# The threshold: a generator that takes more than a tenth of a core from a server on the same
# cores is a visible part of what is measured (perf_analyzer's share at 40 req/s is well under 1%).
SHARE_NOTE_PERCENT = 10.0
# Launchers whose server runs on this host: the bundled tritonserver and a local docker container.
_HOST_LAUNCHERS = ("local", "docker")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def mean_cpu(telemetry: pd.DataFrame | None, deployment: str, process: str, until_s: float | None = None) -> float:
    """Mean CPU (% of one core) of a process role over a deployment's measured window (0 <= t <= until)."""
    if telemetry is None or telemetry.empty:
        return math.nan
    rows = telemetry[
        (telemetry["deployment"] == deployment)
        & (telemetry["source"] == "host")
        & (telemetry["metric"] == "cpu_percent")
        & (telemetry["t_s"] >= 0)
    ]
    if until_s is not None:
        rows = rows[rows["t_s"] <= until_s]
    rows = rows[rows["labels"].map(lambda s: json.loads(s).get("process") == process)]
    return float(rows["value"].mean()) if len(rows) else math.nan


def cpu_us_per_request(cpu_percent: float, duration_s: float, requests: int) -> float:
    """CPU microseconds per request: (share of a core x the window) / the requests sent in it."""
    if not requests or not math.isfinite(cpu_percent):
        return math.nan
    return cpu_percent / 100.0 * duration_s / requests * 1e6


def shares_host(effective_scenario: dict, kind: str) -> bool:
    """Does the server run on the load generator's host (and so on its cores)? Embedded deployments
    have no server: the model runs in the generator, and strategies.csv shows that CPU instead."""
    if kind == DeploymentKind.EMBEDDED:
        return False
    server = effective_scenario.get("server", {})
    launcher = server.get("launcher", "local")
    if launcher in _HOST_LAUNCHERS:
        return True
    return urlsplit(server.get("url") or "").hostname in _LOOPBACK


def observer_note(deployment: str, cpu_percent: float, us_per_request: float) -> str | None:
    """The report's note for a generator that took more than ``SHARE_NOTE_PERCENT`` of a core."""
    if not (math.isfinite(cpu_percent) and cpu_percent > SHARE_NOTE_PERCENT):
        return None
    per_request = f" ({us_per_request:.0f} µs of CPU per request)" if math.isfinite(us_per_request) else ""
    return (
        f"deployment {deployment}: the load generator used {cpu_percent:.0f}% of a core{per_request} on the "
        "host its server runs on, CPU the server did not have: measure with the server on another machine "
        "(launcher 'remote') to see the server alone"
    )
