"""The observer-effect guard: the load generator's CPU per request in deployments.csv, and the report's note."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from perseus.analysis.observer import SHARE_NOTE_PERCENT, cpu_us_per_request, mean_cpu, shares_host
from perseus.analysis.summary import summarize
from tests.unit.test_summary import records, scenario


def host_cpu(deployment: str, process: str, samples: dict[float, float]) -> pd.DataFrame:
    """Host-sampler rows as perseus/telemetry/host.py writes them: CPU % of one core at time t."""
    label = json.dumps({"process": process}, sort_keys=True)
    return pd.DataFrame(
        {
            "deployment": deployment,
            "t_s": list(samples),
            "source": "host",
            "metric": "cpu_percent",
            "labels": label,
            "value": list(samples.values()),
        }
    )


def run_with_generator(percent: float, server: dict | None = None, kind: str = "shared"):
    """1,000 measured requests in 10 s; the generator at ``percent`` of a core inside the window, busier in
    the warm-up and idle in the drain (both outside it), and a server at 150% that must not count."""
    t = np.arange(1000) / 100.0
    window = dict.fromkeys(np.arange(1.0, 11.0), percent)
    telemetry = pd.concat(
        [
            host_cpu("shared", "loadgen", {-1.0: 95.0, **window, 12.0: 0.0}),
            host_cpu("shared", "server", dict.fromkeys(np.arange(1.0, 11.0), 150.0)),
        ],
        ignore_index=True,
    )
    effective = scenario(("a", 50, 99, 100))
    if server is not None:
        effective["server"] = server
    deps = {"shared": {"tenants": ["a"], "duration_s": 10.0, "kind": kind}}
    return summarize(records("a", "shared", t, np.full(1000, 2.0)), effective, deps, 1.0, telemetry=telemetry)


def test_cpu_per_request_from_the_measured_window():
    s = run_with_generator(20.0)
    dep = s.deployments.iloc[0]
    assert dep["loadgen_cpu_percent"] == pytest.approx(20.0)  # warm-up (95%) and drain (0%) samples left out
    # 0.2 of a core x 10 s = 2 CPU seconds over 1,000 requests = 2,000 µs a request.
    assert dep["loadgen_cpu_us_per_request"] == pytest.approx(2000.0)


def test_a_generator_over_a_tenth_of_a_core_beside_a_local_server_is_noted():
    notes = [n for n in run_with_generator(20.0).notes if "load generator used" in n]
    assert notes == [
        "deployment shared: the load generator used 20% of a core (2000 µs of CPU per request) on the host its "
        "server runs on, CPU the server did not have: measure with the server on another machine "
        "(launcher 'remote') to see the server alone"
    ]


@pytest.mark.parametrize(
    ("percent", "server", "kind", "noted"),
    [
        (SHARE_NOTE_PERCENT, None, "shared", False),  # "more than" 10%
        (SHARE_NOTE_PERCENT + 0.5, None, "shared", True),
        (40.0, {"launcher": "docker"}, "solo", True),
        (40.0, {"launcher": "remote", "url": "http://127.0.0.1:8000"}, "shared", True),
        (40.0, {"launcher": "remote", "url": "http://10.0.0.5:8000"}, "shared", False),
        (40.0, None, "embedded", False),  # no server: strategies.csv shows that CPU
    ],
)
def test_the_note_needs_a_shared_host_and_more_than_a_tenth_of_a_core(percent, server, kind, noted):
    notes = [n for n in run_with_generator(percent, server, kind).notes if "load generator used" in n]
    assert bool(notes) is noted


def test_without_telemetry_the_columns_are_nan_and_nothing_is_noted():
    effective = scenario(("a", 50, 99, 100))
    deps = {"shared": {"tenants": ["a"], "duration_s": 10.0}}
    s = summarize(records("a", "shared", np.arange(100) / 10, np.full(100, 2.0)), effective, deps, 1.0)
    assert math.isnan(s.deployments.iloc[0]["loadgen_cpu_percent"])
    assert math.isnan(s.deployments.iloc[0]["loadgen_cpu_us_per_request"])
    assert not [n for n in s.notes if "load generator used" in n]


def test_pieces():
    assert math.isnan(mean_cpu(None, "shared", "loadgen"))
    assert math.isnan(cpu_us_per_request(50.0, 10.0, 0))
    assert cpu_us_per_request(100.0, 1.0, 10_000) == pytest.approx(100.0)
    assert shares_host({}, "shared")  # the default launcher is local
