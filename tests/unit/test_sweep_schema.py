"""The [sweep] table of a scenario: accepted shapes, and one `file: sweep.<field>: reason` line per mistake."""

from __future__ import annotations

import copy
import tomllib

import pytest

from perseus.errors import InputError
from perseus.scenario import parse, with_overrides

BASE = tomllib.loads(
    """
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
"""
)
ISSUE_EXAMPLE = {
    "sampling": "factorial",
    "points": 20,
    "seed": 1,
    "objective_percentile": 99,
    "factors": {
        "tenants.*.server.instances": [1, 2],
        "tenants.*.server.dynamic_batching": [False, True],
        "tenants.*.server.max_queue_delay_us": [0, 2000, 10000],
        "load.level": ["light", "medium", "high"],
    },
}


def _with(sweep: dict):
    data = copy.deepcopy(BASE)
    data["sweep"] = sweep
    return parse(data, "x.toml")


def _error(sweep: dict) -> str:
    with pytest.raises(InputError) as info:
        _with(sweep)
    assert info.value.exit_code == 2
    return str(info.value)


def test_issue_example_is_accepted_and_survives_overrides():
    scenario = _with(copy.deepcopy(ISSUE_EXAMPLE))
    assert scenario.sweep.combinations() == 36
    assert scenario.sweep.objective_percentile == 99
    again = with_overrides(scenario, duration_s=3)
    assert again.sweep == scenario.sweep


def test_sweep_is_optional():
    assert parse(copy.deepcopy(BASE), "x.toml").sweep is None


def test_named_tenant_factor_and_custom_levels():
    s = _with({"factors": {"tenants.vision.server.max_batch_size": [4, 8], "load.level": ["peak"]},
               "levels": {"peak": 4}})  # fmt: skip
    assert s.sweep.effective_levels()["peak"] == 4.0
    assert s.sweep.sampling == "factorial" and s.sweep.points is None


F = 'x.toml: sweep.factors."'


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"factors": {"tenants.*.server.instance": [1]}},
         F + "tenants.*.server.instance\": unknown server field 'instance' (known: instances, dynamic_batching, "
         "max_queue_delay_us, max_batch_size)"),
        ({"factors": {"tenants.*.load.rate": [1]}}, F + 'tenants.*.load.rate": unknown factor'),
        ({"factors": {"load.rate": [1]}}, F + 'load.rate": unknown factor'),
        ({"factors": {"tenants.*.server.instances": [0, 1]}},
         F + 'tenants.*.server.instances": values must be >= 1 (got 0)'),
        ({"factors": {"tenants.*.server.instances": [1.5]}},
         F + 'tenants.*.server.instances": values must be integers (got 1.5)'),
        ({"factors": {"tenants.*.server.instances": [True]}},
         F + 'tenants.*.server.instances": values must be integers (got True)'),
        ({"factors": {"tenants.*.server.dynamic_batching": [0, 1]}},
         F + 'tenants.*.server.dynamic_batching": values must be booleans (got 0)'),
        ({"factors": {"tenants.*.server.max_queue_delay_us": [-1]}},
         F + 'tenants.*.server.max_queue_delay_us": values must be >= 0 (got -1)'),
        ({"factors": {"load.level": ["huge"]}},
         F + "load.level\": 'huge' is not a load level (known: light, medium, high; add others in [sweep.levels])"),
        ({"factors": {"load.level": [2.0]}}, F + "load.level\": 2.0 is not a load level"),
        ({"factors": {"tenants.*.server.instances": []}},
         F + 'tenants.*.server.instances": must be a non-empty list of values (got [])'),
        ({"factors": {"tenants.*.server.instances": 2}},
         F + 'tenants.*.server.instances": must be a non-empty list of values (got 2)'),
        ({"factors": {"tenants.*.server.instances": [1, 1]}},
         F + 'tenants.*.server.instances": lists a value twice (got [1, 1])'),
        ({"factors": {"tenants.*.server.instances": [1], "tenants.vision.server.instances": [2]}},
         F + 'tenants.vision.server.instances": overlaps "tenants.*.server.instances" (both set server.instances)'),
        ({"factors": {}}, "x.toml: sweep.factors: needs at least one factor"),
        ({"sampling": "random", "factors": {"load.level": ["light"]}},
         "x.toml: sweep.points: sampling 'random' needs points (how many to run)"),
        ({"sampling": "lhs", "points": 3, "factors": {"load.level": ["light", "high"]}},
         "x.toml: sweep.points: is 3 but the factors have only 2 combinations"),
        ({"sampling": "lhs", "points": 0, "factors": {"load.level": ["light"]}}, "x.toml: sweep.points: must be >= 1"),
        ({"sampling": "grid", "factors": {"load.level": ["light"]}}, "x.toml: sweep.sampling: must be one of"),
        ({"seed": "1", "factors": {"load.level": ["light"]}}, "x.toml: sweep.seed: "),
        ({"objective_percentile": 100, "factors": {"load.level": ["light"]}},
         "x.toml: sweep.objective_percentile: must be < 100"),
        ({"levels": {"high": 0}, "factors": {"load.level": ["high"]}}, "x.toml: sweep.levels.high: must be > 0"),
        ({"sampilng": "lhs", "factors": {"load.level": ["light"]}}, "x.toml: sweep.sampilng: unknown key"),
        ({}, "x.toml: sweep.factors: required key is missing"),
    ],
)  # fmt: skip
def test_bad_sweeps_give_one_line(sweep, message):
    text = _error(sweep)
    assert text.startswith(message), text
    assert "\n" not in text
