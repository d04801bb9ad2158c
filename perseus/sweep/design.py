"""Design points of a sweep (pure): factorial, seeded random, and Latin hypercube over factor levels.

A factor is a key of ``[sweep.factors]`` with its list of levels; a point gives each factor one of
its levels. Points are applied to the scenario by ``apply``: tenants' ``[tenants.server]`` settings,
and ``load.level`` as a scale on every tenant's rates.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass

import numpy as np

from perseus.scenario import LOAD_LEVEL, Scenario, SweepSpec, parse_factor

Factors = dict[str, list]  # factor key -> its levels, in declaration order
Settings = dict[str, object]  # factor key -> the level chosen at one point

# LHS: draws tried for a design with no repeated point before keeping the one with fewest repeats.
LHS_TRIES = 64


@dataclass(frozen=True)
class Point:
    index: int  # 1-based, in design order
    name: str  # p003-<hash>: also the deployment's folder
    settings: Settings


def combinations(factors: Factors) -> int:
    return math.prod(len(levels) for levels in factors.values())


def _decode(factors: Factors, flat: int) -> Settings:
    """The ``flat``-th combination in factorial order (the last factor varies fastest)."""
    out: Settings = {}
    for key in reversed(list(factors)):
        levels = factors[key]
        flat, i = divmod(flat, len(levels))
        out[key] = levels[i]
    return {key: out[key] for key in factors}


def factorial(factors: Factors) -> list[Settings]:
    """Every combination, the last factor varying fastest."""
    keys = list(factors)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*factors.values())]


def random_sample(factors: Factors, n: int, seed: int) -> list[Settings]:
    """``n`` distinct combinations drawn uniformly (without replacement), listed in factorial order."""
    total = combinations(factors)
    if not 1 <= n <= total:
        raise ValueError(f"n must be in [1, {total}] (got {n})")
    picks = np.random.default_rng(seed).choice(total, size=n, replace=False)
    return [_decode(factors, int(i)) for i in sorted(picks)]


def _lhs_columns(factors: Factors, n: int, rng: np.random.Generator) -> np.ndarray:
    """One column of level indices per factor. Stratum i of [0, 1) (its midpoint) maps to level
    floor((i + 0.5) * L / n), so every level appears floor(n/L) or ceil(n/L) times; each column is
    then permuted independently (McKay, Beckman & Conover 1979, on discrete levels)."""
    strata = (np.arange(n) + 0.5) / n
    return np.column_stack([rng.permutation(np.floor(strata * len(levels)).astype(int)) for levels in factors.values()])


def lhs(factors: Factors, n: int, seed: int) -> list[Settings]:
    """A Latin hypercube of ``n`` points over the factors' levels: every factor's levels evenly covered.

    Draws are repeated (seeded) until no point repeats; if none of ``LHS_TRIES`` draws manages that,
    the draw with the fewest repeats is kept.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    rng = np.random.default_rng(seed)
    best, best_unique = None, -1
    for _ in range(LHS_TRIES):
        columns = _lhs_columns(factors, n, rng)
        unique = len({tuple(row) for row in columns.tolist()})
        if unique > best_unique:
            best, best_unique = columns, unique
        if unique == n:
            break
    keys = list(factors)
    return [{key: factors[key][int(i)] for key, i in zip(keys, row, strict=True)} for row in best.tolist()]


def point_name(index: int, settings: Settings) -> str:
    """``p003-1a2b3c``: the order in the design, and a short hash of the settings (a changed design
    never reuses a committed point's name)."""
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode(), usedforsecurity=False).hexdigest()[:6]
    return f"p{index:03d}-{digest}"


def design(spec: SweepSpec) -> list[Point]:
    """The sweep's points, in the order they run."""
    factors: Factors = dict(spec.factors)
    if spec.sampling == "factorial":
        rows = factorial(factors)
    elif spec.sampling == "random":
        rows = random_sample(factors, spec.points, spec.seed)
    else:
        rows = lhs(factors, spec.points, spec.seed)
    return [Point(i, point_name(i, row), row) for i, row in enumerate(rows, start=1)]


def apply(scenario: Scenario, settings: Settings, levels: dict[str, float]) -> Scenario:
    """The scenario at one design point.

    Turning the dynamic batcher off also drops the tenant's queue delay: the delay is a setting of the
    batcher, so a point (false, 2000) runs as (false, none), the same server as (false, 0).
    """
    scale = scale_of(settings, levels)
    out = scenario.scaled(scale) if scale != 1.0 else scenario
    tenants = []
    for tenant in out.tenants:
        update: dict = {}
        for key, value in settings.items():
            target, name = parse_factor(key)
            if target in ("*", tenant.name):
                update[name] = value
        server = tenant.server.model_copy(update=update)
        if server.dynamic_batching is False:
            server = server.model_copy(update={"max_queue_delay_us": None})
        tenants.append(tenant.model_copy(update={"server": server}))
    return out.model_copy(update={"tenants": tenants})


def scale_of(settings: Settings, levels: dict[str, float]) -> float:
    return levels[settings[LOAD_LEVEL]] if LOAD_LEVEL in settings else 1.0
