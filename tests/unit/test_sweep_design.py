"""Sweep design generators (factorial, random, LHS) and applying a point to a scenario."""

from __future__ import annotations

import copy
import itertools
import tomllib
from collections import Counter

import pytest

from perseus.scenario import DEFAULT_LEVELS, parse
from perseus.sweep import design

FACTORS = {
    "tenants.*.server.instances": [1, 2],
    "tenants.*.server.dynamic_batching": [False, True],
    "tenants.*.server.max_queue_delay_us": [0, 2000, 10000],
    "load.level": ["light", "medium", "high"],
}
TOTAL = 2 * 2 * 3 * 3


def _key(row: dict) -> tuple:
    return tuple(row[k] for k in FACTORS)


def _in_bounds(rows: list[dict]) -> bool:
    return all(set(row) == set(FACTORS) and all(row[k] in FACTORS[k] for k in FACTORS) for row in rows)


def test_factorial_is_every_combination_in_order():
    rows = design.factorial(FACTORS)
    assert len(rows) == TOTAL == design.combinations(FACTORS)
    assert [_key(r) for r in rows] == list(itertools.product(*FACTORS.values()))  # the last factor fastest
    assert _in_bounds(rows)


@pytest.mark.parametrize("n", [1, 7, 20, TOTAL])
def test_random_sample_counts_distinct_and_bounds(n):
    rows = design.random_sample(FACTORS, n, seed=3)
    assert len(rows) == n
    assert len({_key(r) for r in rows}) == n  # without replacement
    assert _in_bounds(rows)
    full = [_key(r) for r in design.factorial(FACTORS)]
    positions = [full.index(_key(r)) for r in rows]
    assert positions == sorted(positions)  # listed in factorial order


def test_random_sample_is_seeded():
    assert design.random_sample(FACTORS, 10, seed=1) == design.random_sample(FACTORS, 10, seed=1)
    assert design.random_sample(FACTORS, 10, seed=1) != design.random_sample(FACTORS, 10, seed=2)


def test_random_sample_rejects_too_many():
    with pytest.raises(ValueError, match="n must be in"):
        design.random_sample(FACTORS, TOTAL + 1, seed=1)


@pytest.mark.parametrize("n", [1, 5, 6, 12, 20, TOTAL])
def test_lhs_covers_every_level_evenly(n):
    rows = design.lhs(FACTORS, n, seed=7)
    assert len(rows) == n
    assert _in_bounds(rows)
    for key, levels in FACTORS.items():
        counts = Counter(row[key] for row in rows)
        expected = {n // len(levels), -(-n // len(levels))}  # floor or ceil of n / levels
        assert {counts.get(level, 0) for level in levels} <= expected, (key, counts)


def test_lhs_points_are_distinct_when_possible():
    for seed in range(5):
        rows = design.lhs(FACTORS, 12, seed=seed)
        assert len({_key(r) for r in rows}) == 12


def test_lhs_is_seeded():
    assert design.lhs(FACTORS, 12, seed=1) == design.lhs(FACTORS, 12, seed=1)
    assert design.lhs(FACTORS, 12, seed=1) != design.lhs(FACTORS, 12, seed=2)


def test_point_names_are_ordered_and_hash_the_settings():
    a = design.point_name(3, {"load.level": "high"})
    assert a.startswith("p003-") and len(a) == 11
    assert a == design.point_name(3, {"load.level": "high"})
    assert a != design.point_name(3, {"load.level": "light"})
    assert design.point_name(1234, {}).startswith("p1234-")


SCENARIO = """
name = "t"
[pricing]
instance = "g4dn.xlarge"
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 100
[tenants.load]
arrival = "poisson"
rate = 20
[tenants.server]
dynamic_batching = true
max_queue_delay_us = 500
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 100
[tenants.load]
arrival = "step"
steps = [[10, 1], [30, 1]]
"""


def _scenario(sweep: dict):
    data = copy.deepcopy(tomllib.loads(SCENARIO))
    data["sweep"] = sweep
    return parse(data, "x.toml")


def test_design_follows_the_sampling():
    factors = {"tenants.*.server.instances": [1, 2, 3], "load.level": ["light", "high"]}
    assert len(design.design(_scenario({"factors": factors}).sweep)) == 6
    points = design.design(_scenario({"sampling": "random", "points": 4, "seed": 2, "factors": factors}).sweep)
    assert [p.index for p in points] == [1, 2, 3, 4]
    assert len({p.name for p in points}) == 4
    assert len(design.design(_scenario({"sampling": "lhs", "points": 5, "factors": factors}).sweep)) == 5


def test_apply_sets_server_fields_and_scales_every_rate():
    scenario = _scenario({"factors": {"tenants.*.server.instances": [2], "load.level": ["high"]}})
    point = design.apply(scenario, {"tenants.*.server.instances": 2, "load.level": "high"}, DEFAULT_LEVELS)
    assert [t.server.instances for t in point.tenants] == [2, 2]
    assert point.tenant("vision").load.rate == 40
    assert point.tenant("series").load.steps == [[20, 1], [60, 1]]
    assert point.tenant("vision").server.max_queue_delay_us == 500  # untouched settings are kept
    assert scenario.tenant("vision").load.rate == 20  # the scenario itself is not changed


def test_apply_one_tenant_and_batching_off_drops_the_queue_delay():
    scenario = _scenario({"factors": {"tenants.vision.server.dynamic_batching": [False]}})
    point = design.apply(scenario, {"tenants.vision.server.dynamic_batching": False}, DEFAULT_LEVELS)
    vision, series = point.tenant("vision").server, point.tenant("series").server
    assert vision.dynamic_batching is False and vision.max_queue_delay_us is None
    assert series == scenario.tenant("series").server
    assert point.tenant("vision").load.rate == 20  # no load level: scale 1


def test_custom_levels_override_the_defaults():
    scenario = _scenario({"factors": {"load.level": ["high", "peak"]}, "levels": {"high": 3, "peak": 5}})
    levels = scenario.sweep.effective_levels()
    assert levels == {"light": 0.5, "medium": 1.0, "high": 3.0, "peak": 5.0}
    assert design.apply(scenario, {"load.level": "peak"}, levels).tenant("vision").load.rate == 100
