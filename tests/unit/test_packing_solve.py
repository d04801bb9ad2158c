"""The packing solver: exact against every set partition, the heuristic against exact, and Shapley's axioms."""

import math
import random

import pytest

from perseus.packing.solve import (
    SHAPLEY_MAX,
    Group,
    Option,
    Packing,
    brute_force,
    infeasible,
    replicas_needed,
    shapley,
    solve,
    solve_exact,
    solve_heuristic,
    synthetic_options,
)

TWO_INSTANCES = {"small": 1.0, "big": 2.5}


def opt(tenants: str, scale: float, usd: float = 1.0, instance: str = "i") -> Option:
    return Option(frozenset(tenants), scale, usd, instance)


def table(n: int, seed: int) -> tuple[list[str], list[Option]]:
    """Odd seeds get two instance types, so the per-group choice of instance is exercised too."""
    return synthetic_options(n, seed, TWO_INSTANCES if seed % 2 else None)


def sparse(options: list[Option], seed: int, keep: float = 0.6) -> list[Option]:
    """A table with groups missing, and some tenants unable to run alone: what a half-measured plan holds."""
    rng = random.Random(seed)
    return [o for o in options if rng.random() < keep]


@pytest.mark.parametrize("n", range(1, 8))
def test_exact_equals_brute_force_on_full_tables(n):
    for seed in range(4):
        names, options = table(n, seed)
        assert solve(names, options) == brute_force(names, options)


@pytest.mark.parametrize("n", range(1, 8))
def test_exact_equals_brute_force_on_sparse_tables(n):
    # Includes tables with no partition at all (both None) and ones where a tenant must share to be served.
    for seed in range(4):
        names, options = table(n, seed)
        options = sparse(options, seed)
        assert solve_exact(names, options) == brute_force(names, options)


def test_only_groups_in_the_table_are_used():
    for seed in range(6):
        names, options = table(6, seed)
        options = sparse(options, seed, keep=0.4)
        servable = {o.tenants for o in options if o.scale > 0}
        for packing in (solve(names, options), solve_heuristic(names, options)):
            if packing is not None:
                assert {frozenset(g.tenants) for g in packing.groups} <= servable
                assert sorted(t for g in packing.groups for t in g.tenants) == sorted(names)


def test_a_missing_group_is_not_used_even_when_it_would_be_cheapest():
    # {a, b} would fit one server, but it was never measured: a and b each need their own.
    options = [opt("a", 2.0), opt("b", 2.0), opt("abc", 0.0)]
    packing = solve(["a", "b"], options)
    assert [g.tenants for g in packing.groups] == [("a",), ("b",)]
    assert packing.usd_per_hour == 2.0


def test_a_heavy_tenant_gets_replicas():
    packing = solve(["a"], [opt("a", 0.4, usd=1.5)], headroom=0.25)
    assert packing == Packing((Group(("a",), 4, opt("a", 0.4, usd=1.5)),))  # ceil(1.25 / 0.4) = 4
    assert packing.servers == 4
    assert packing.usd_per_hour == pytest.approx(6.0)


def test_replicated_groups_and_instances_are_chosen_by_cost():
    # Together a and b need 2 small servers ($2); alone they need 1 + 1 small ($2) too, but one big server
    # ($1.8) carries both.
    options = [opt("a", 2.0), opt("b", 2.0), opt("ab", 0.7), opt("ab", 1.3, usd=1.8, instance="big")]
    packing = solve(["a", "b"], options)
    assert [(g.tenants, g.replicas, g.option.instance) for g in packing.groups] == [(("a", "b"), 1, "big")]


@pytest.mark.parametrize(
    ("scale", "headroom", "replicas"),
    [
        (1.25, 0.25, 1),  # (1 + 0.25) / 1.25 is 1, whatever the rounding
        (0.55, 0.1, 2),  # 1.1 / 0.55 is 2.0000000000000004 in floats
        (1 / 3, 0.0, 3),
        (0.4, 0.25, 4),
        (0.5000001, 0.0, 2),
        (0.4999, 0.0, 3),
        (10.0, 0.25, 1),  # never fewer than one server
        (math.inf, 0.25, 1),
    ],
)
def test_replicas_needed(scale, headroom, replicas):
    assert replicas_needed(scale, headroom) == replicas


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan])
def test_replicas_needed_when_the_group_cannot_be_served(scale):
    assert replicas_needed(scale, 0.25) is None


def test_a_tenant_with_no_feasible_option_makes_the_plan_infeasible():
    options = [opt("a", 2.0), opt("b", 0.0), opt("ab", 0.0)]
    assert solve(["a", "b"], options) is None
    assert solve_heuristic(["a", "b"], options) is None
    assert brute_force(["a", "b"], options) is None
    assert infeasible(["a", "b"], options) == ["b"]
    assert infeasible(["a"], options) == []


def test_a_group_needing_absurdly_many_servers_is_not_servable():
    # 1.25 / 1e-5 = 125,000 replicas: a failed measurement, not a plan; solve and infeasible agree on it.
    options = [opt("a", 2.0), opt("b", 1e-5)]
    assert replicas_needed(1e-5, 0.25) == 125_000
    assert solve(["a", "b"], options) is None
    assert infeasible(["a", "b"], options) == ["b"]


def test_a_tenant_that_cannot_run_alone_may_still_share():
    options = [opt("a", 2.0), opt("b", 0.0), opt("ab", 1.5)]
    assert infeasible(["a", "b"], options) == []
    assert [g.tenants for g in solve(["a", "b"], options).groups] == [("a", "b")]
    assert [g.tenants for g in solve_heuristic(["a", "b"], options).groups] == [("a", "b")]


def test_every_tenant_placeable_yet_no_partition():
    # a is served only with b, c only with b: each is placeable, but not both at once.
    options = [opt("b", 2.0), opt("ab", 2.0), opt("bc", 2.0)]
    assert infeasible(["a", "b", "c"], options) == []
    assert solve(["a", "b", "c"], options) is None
    assert brute_force(["a", "b", "c"], options) is None


def test_options_for_other_tenants_are_ignored():
    options = [opt("a", 2.0), opt("ax", 9.0, usd=0.1), opt("x", 9.0)]
    assert [g.tenants for g in solve(["a"], options).groups] == [("a",)]
    assert infeasible(["a"], [opt("ax", 9.0)]) == ["a"]


def test_ties_go_to_fewer_servers_then_fewer_groups_then_names():
    # Equal $/h: one big server beats two small ones.
    by_servers = [opt("ab", 0.7, usd=1.0), opt("ab", 1.3, usd=2.0, instance="big")]
    assert solve(["a", "b"], by_servers).groups[0].option.instance == "big"
    # Equal $/h and servers: one group of two beats two groups of one.
    by_groups = [opt("a", 2.0), opt("b", 2.0), opt("ab", 0.7)]
    assert [g.tenants for g in solve(["a", "b"], by_groups).groups] == [("a", "b")]
    # Equal in all three: {a}, {b, c} is first by names, whatever order the table and the tenants come in.
    by_names = [opt("a", 2.0), opt("b", 2.0), opt("c", 2.0), opt("ab", 2.0), opt("bc", 2.0), opt("ac", 2.0)]
    expected = [("a",), ("b", "c")]
    for order in (by_names, by_names[::-1], by_names[2:] + by_names[:2]):
        for tenants in (["a", "b", "c"], ["c", "b", "a"]):
            assert [g.tenants for g in solve(tenants, order).groups] == expected
            assert [g.tenants for g in brute_force(tenants, order).groups] == expected


def test_the_same_table_gives_the_same_packing():
    names, options = table(9, 3)
    assert solve(names, options) == solve(names[::-1], options[::-1])
    assert solve_heuristic(names, options) == solve_heuristic(names, options)


def test_heuristic_equals_exact_on_easy_cases():
    for n in range(1, 6):
        for seed in range(3):
            names, options = table(n, seed)
            exact, heuristic = solve_exact(names, options), solve_heuristic(names, options)
            assert heuristic.usd_per_hour == pytest.approx(exact.usd_per_hour)
    # solve hands over to the heuristic beyond exact_max
    names, options = table(4, 0)
    assert solve(names, options, exact_max=0).usd_per_hour == pytest.approx(solve(names, options).usd_per_hour)


def test_heuristic_within_five_percent_of_exact_at_nine_tenants():
    for seed in range(4):
        names, options = table(9, seed)
        exact, heuristic = solve_exact(names, options), solve_heuristic(names, options)
        assert heuristic.usd_per_hour <= 1.05 * exact.usd_per_hour + 1e-9
        assert heuristic.usd_per_hour >= exact.usd_per_hour - 1e-9  # exact is the optimum


def test_no_tenants_cost_nothing():
    assert solve([], [opt("a", 1.0)]) == Packing(())
    assert solve_heuristic([], []) == Packing(())
    assert Packing(()).usd_per_hour == 0 and Packing(()).servers == 0


def test_duplicate_tenants_and_bad_prices_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        solve(["a", "a"], [opt("a", 1.0)])
    with pytest.raises(ValueError, match="usd_per_hour"):
        solve(["a"], [opt("a", 1.0, usd=math.nan)])


def test_synthetic_tables_are_seeded_and_complete():
    names, options = synthetic_options(5, 7, TWO_INSTANCES)
    assert names == ["t00", "t01", "t02", "t03", "t04"]
    assert len(options) == 2 * (2**5 - 1)
    assert (names, options) == synthetic_options(5, 7, TWO_INSTANCES)
    assert synthetic_options(5, 8) != synthetic_options(5, 7)
    assert len(synthetic_options(6, 0, max_size=2)[1]) == 6 + 15
    # Across many tables: heavy tenants that need replicas, and pairs that cannot share a server.
    alone = [o.scale for s in range(10) for o in synthetic_options(8, s)[1] if len(o.tenants) == 1]
    assert any(k < 1.25 for k in alone)
    assert any(o.scale == 0 for s in range(10) for o in synthetic_options(8, s)[1])


# Shapley


def test_shapley_by_hand_on_the_airport_game():
    # Littlechild & Owen (1973): a runway costs what the largest plane in the coalition needs. With needs
    # 1, 2, 3: the first unit is split three ways, the second two ways, the third is c's alone.
    need = {"a": 1.0, "b": 2.0, "c": 3.0}
    shares = shapley(["a", "b", "c"], lambda s: max(need[t] for t in s))
    assert shares == pytest.approx({"a": 1 / 3, "b": 1 / 3 + 1 / 2, "c": 1 / 3 + 1 / 2 + 1})


def test_shapley_efficiency_on_packing_costs():
    names, options = table(5, 1)

    def cost(coalition):
        return solve(sorted(coalition), [o for o in options if o.tenants <= coalition]).usd_per_hour

    shares = shapley(names, cost)
    assert sum(shares.values()) == pytest.approx(cost(frozenset(names)))


def test_shapley_symmetry_and_null_player():
    # a and b are interchangeable; d never changes the cost.
    weight = {"a": 2.0, "b": 2.0, "c": 5.0, "d": 0.0}

    def cost(coalition):
        return math.sqrt(sum(weight[t] for t in coalition)) + (1.0 if "c" in coalition else 0.0)

    shares = shapley(["a", "b", "c", "d"], cost)
    assert shares["a"] == pytest.approx(shares["b"])
    assert shares["d"] == pytest.approx(0.0, abs=1e-12)
    assert sum(shares.values()) == pytest.approx(cost(frozenset("abcd")))


def test_shapley_never_asks_the_empty_coalition_and_refuses_too_many_players():
    asked = []
    shapley(["a", "b"], lambda s: asked.append(s) or len(s))
    assert frozenset() not in asked and len(asked) == 3
    with pytest.raises(ValueError, match="Shapley"):
        shapley([f"t{i}" for i in range(SHAPLEY_MAX + 1)], len)
