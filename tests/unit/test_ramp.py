"""Stress ramps: the schedule rises level by level; the breaking point is the first level over the SLA."""

import numpy as np
import pandas as pd
import pytest

from perseus.analysis.ramp import ramps
from perseus.errors import InputError
from perseus.load import arrivals
from perseus.scenario import LoadSpec, parse

RAMP = {"arrival": "ramp", "rate": 10, "ramp_step": 10, "ramp_hold_s": 20}


def test_ramp_schedule_rises_by_step_each_hold():
    s = arrivals.schedule(LoadSpec(**RAMP), 5, 100, np.random.default_rng(3))
    assert np.sum(s < 0) == pytest.approx(50, rel=0.35)  # warm-up at the starting rate
    for i in range(5):
        n = np.sum((s >= 20 * i) & (s < 20 * (i + 1)))
        assert n == pytest.approx((10 + 10 * i) * 20, rel=0.12)


def test_ramp_options_are_validated():
    data = {"name": "x", "tenants": [{"name": "a", "model": "m", "sla_ms": 10, "load": {"arrival": "ramp", "rate": 5}}]}
    with pytest.raises(InputError, match="needs ramp_step and ramp_hold_s"):
        parse(data, "x.toml")
    data["tenants"][0]["load"] = {"arrival": "poisson", "rate": 5, "ramp_step": 1}
    with pytest.raises(InputError, match="only for arrival 'ramp'"):
        parse(data, "x.toml")


def test_breaking_point_is_the_first_level_over_the_sla():
    rng = np.random.default_rng(0)
    rows = []
    for level in range(4):  # levels at 10, 20, 30, 40 req/s; latency jumps at level 3 (30 req/s)
        for t in np.sort(rng.uniform(10 * level, 10 * (level + 1), 200)):
            latency = 5.0 if level < 2 else 80.0
            rows.append(("shared", "a", t, latency, True, False))
    requests = pd.DataFrame(rows, columns=["deployment", "tenant", "scheduled_s", "latency_ms", "ok", "warmup"])
    scenario = {
        "name": "x",
        "tenants": [
            {"name": "a", "model": "m", "sla_ms": 50, "sla_percentile": 99, "load": {**RAMP, "ramp_hold_s": 10}}
        ],
    }
    table = ramps(requests, scenario, {"shared": {"tenants": ["a"], "duration_s": 40}})
    row = table.iloc[0]
    assert row["held_rps"] == 20 and row["breaking_rps"] == 30
    assert row["verdict"].startswith("breaks at 30 req/s (level 3)")


def test_no_ramp_no_table():
    scenario = {
        "name": "x",
        "tenants": [{"name": "a", "sla_ms": 5, "sla_percentile": 99, "load": {"arrival": "poisson"}}],
    }
    assert ramps(pd.DataFrame({"deployment": ["shared"]}), scenario, {}).empty
