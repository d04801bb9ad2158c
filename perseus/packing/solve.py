"""The cheapest packing of tenants onto servers that meets every SLA: a pure set-partition solver over capacity tables.

A capacity table says, for a group of tenants on an instance type, the largest scale k at which one server
carries every tenant of the group at k x its target rate within its SLA. A group served by r replicas behind
an even balancer carries r x k, so it needs ceil((1 + headroom) / k) of them. The plan is the partition of the
tenants into groups (only groups the table has) that minimises the fleet's $/h.

- `solve_exact`: dynamic programming over subsets, O(3^n), exact; the default up to EXACT_MAX tenants.
- `solve_heuristic`: greedy starts, local search and exact re-packing of a few groups at a time, beyond that;
  no guarantee, its gap to the exact optimum is measured in benchmarks/packing_solver.py.
- `brute_force`: every set partition (Bell numbers), the tests' reference.
- `shapley`: who pays for what, for any cooperative cost game over the tenants.
- `synthetic_options`: seeded random tables for tests and benchmarks.

Costs are compared as integers (micro-dollars per hour), so equal fleets tie exactly rather than by float noise,
and ties are broken the same way by every solver: fewer servers, then fewer groups, then the groups' names.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# Largest tenant count solved exactly by default. benchmarks/packing_solver.py timed the DP on a shared 2-core
# machine with full tables (every subset an option): 12 tenants in about 0.02 s, 14 in about 0.17 s, 15 in
# about 0.65 s, 16 in about 2.3 s (and 270 MB); each tenant more costs about 3x. 14 keeps a plan's solve well
# under its 1 s target even on a loaded machine; 15 would leave well under 2x of margin.
EXACT_MAX = 14
EXACT_LIMIT = 20  # the DP holds a few int64 arrays of 2^n and its layers: beyond 20, gigabytes
SHAPLEY_MAX = 10  # 2^n coalition costs, each maybe a solve of its own: 1,024 at 10
BRUTE_FORCE_MAX = 10  # Bell(10) = 115,975 partitions: seconds; beyond that the reference is too slow to use
MICRO_PER_USD = 10**6  # costs as integer micro-$/h: sums are exact, so ties are real ties
# A group that needs more servers than MAX_REPLICAS is treated as not servable at all: a table that says so is
# a failed measurement, and the bound keeps every cost, and every sum of up to EXACT_LIMIT of them, far inside
# 64-bit integers (10^4 x 10^6 $/h x 10^6 = 10^16 < 2^56) with room for the UNSERVABLE marker.
MAX_REPLICAS = 10_000
MAX_USD_PER_HOUR = 1e6
UNSERVABLE = 1 << 61  # the DP's cost of a mask no partition covers; two of them added still fit in an int64
REL_TOL = 1e-9  # float error allowed in (1 + headroom) / scale before it costs a whole extra replica
# The heuristic: it re-packs two or three groups exactly when they hold at most RESOLVE_MAX tenants
# ((3^10 - 1) / 2 = 29,524 DP steps), and tries every 2-way split of groups of up to SPLIT_MAX tenants
# (2^(k-1) - 1 of them). Iterated local search: KICKS kicks per start, KICK_MOVES random moves each.
# benchmarks/packing_solver.py: with these it matched the exact DP on all 40 seeded 12-tenant tables tried.
RESOLVE_MAX = 10
SPLIT_MAX = 10
KICKS = 30
KICK_MOVES = 3
KICK_SEED = 0


@dataclass(frozen=True)
class Option:
    """One way to serve a group of tenants: on an instance type, with its measured (or predicted) capacity."""

    tenants: frozenset[str]
    scale: float  # capacity scale at the tenants' target rates: the largest k such that one server carries
    # every tenant at k x its target rate within its SLA. 0 (or less): cannot at all.
    usd_per_hour: float  # one server of this instance
    instance: str = ""  # instance type name (for the report)
    measured: bool = True  # False: a prediction (the caller may solve with predictions to choose what to measure)
    # What was (or would be) measured, when it is more than the tenants: the caller's names for each tenant's
    # chosen model variant. The solver only carries it (and breaks exact ties by it); empty: the tenants.
    members: frozenset[str] = frozenset()
    source: str = ""  # where it was measured: "" here, else the folder it was imported from (--from)
    rank: int = 0  # how far from the tenants' preferred models (0: every tenant's first); breaks exact ties

    def __post_init__(self) -> None:
        # Callers build groups from sets and lists too; the table is keyed by the frozen set.
        object.__setattr__(self, "tenants", frozenset(self.tenants))
        object.__setattr__(self, "members", frozenset(self.members or self.tenants))


@dataclass(frozen=True)
class Group:
    tenants: tuple[str, ...]  # sorted
    replicas: int
    option: Option

    @property
    def usd_per_hour(self) -> float:
        return self.replicas * self.option.usd_per_hour


@dataclass(frozen=True)
class Packing:
    groups: tuple[Group, ...]  # ordered by their sorted tenant names

    @property
    def usd_per_hour(self) -> float:
        return sum(g.usd_per_hour for g in self.groups)

    @property
    def servers(self) -> int:
        return sum(g.replicas for g in self.groups)


def replicas_needed(scale: float, headroom: float) -> int | None:
    """Servers a group needs: r replicas, each carrying 1/r of every tenant's rate (a balancer splits traffic
    evenly), give a capacity scale of r x scale at the target rates, and it must reach 1 + headroom.

    None when the group cannot be served at all (scale <= 0 or not a number). A quotient within REL_TOL of a
    whole number counts as that number: 1.25 / 1.25 is 1 replica, never 2 by a rounding ulp.
    """
    if headroom <= -1:
        raise ValueError(f"headroom must be > -1, got {headroom}")
    if not scale > 0:  # also catches NaN
        return None
    need = (1 + headroom) / scale
    nearest = round(need)
    if abs(need - nearest) <= REL_TOL * max(1.0, need):
        return max(1, nearest)
    return max(1, math.ceil(need))


def servers_for(option: Option, headroom: float) -> int | None:
    """Replicas the solvers give this option, or None where they never use it: it cannot serve its group at
    all, or would need more than MAX_REPLICAS servers."""
    replicas = replicas_needed(option.scale, headroom)
    return replicas if replicas is not None and replicas <= MAX_REPLICAS else None


def infeasible(tenants: Sequence[str], options: Iterable[Option], headroom: float = 0.25) -> list[str]:
    """Tenants no packing can place: no feasible option (alone or in a group) within `tenants` holds them.

    Necessary for `solve` to succeed, not sufficient: the groups that hold each tenant must also fit together
    into one partition (a needs {a, b}, c needs {b, c}, so one of them is left out).
    """
    names = set(tenants)
    placed: set[str] = set()
    for option in options:
        if option.tenants and option.tenants <= names and servers_for(option, headroom) is not None:
            placed |= option.tenants
    return [t for t in tenants if t not in placed]


@dataclass(frozen=True)
class _Choice:
    """The cheapest option for one group, with its cost in the solvers' exact integer units."""

    cost: int  # micro-$/h for all replicas
    replicas: int
    option: Option


@dataclass(frozen=True)
class _Table:
    names: tuple[str, ...]  # sorted: bit i of a group mask is names[i]
    groups: dict[int, _Choice]  # feasible groups only, by mask


def _choice_key(choice: _Choice) -> tuple:
    # Between options for the same group: cheapest, fewest servers, then by instance name, measured before
    # predicted, most capacity, the tenants' preferred models: deterministic whatever order the caller listed them in.
    o = choice.option
    return (
        choice.cost,
        choice.replicas,
        o.instance,
        not o.measured,
        -o.scale,
        o.rank,
        o.usd_per_hour,
        sorted(o.members),
        o.source,
    )


def _table(tenants: Sequence[str], options: Iterable[Option], headroom: float) -> _Table:
    names = tuple(sorted(tenants))
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tenant names in {list(tenants)}")
    bit = {t: 1 << i for i, t in enumerate(names)}
    groups: dict[int, _Choice] = {}
    for option in options:
        if not option.tenants or not option.tenants <= bit.keys():
            continue  # a group of other tenants (or of none) cannot be part of this partition
        if not 0 <= option.usd_per_hour <= MAX_USD_PER_HOUR:  # also catches NaN
            raise ValueError(f"usd_per_hour must be in [0, {MAX_USD_PER_HOUR:g}], got {option.usd_per_hour}: {option}")
        replicas = servers_for(option, headroom)
        if replicas is None:
            continue
        mask = sum(bit[t] for t in option.tenants)
        choice = _Choice(round(option.usd_per_hour * replicas * MICRO_PER_USD), replicas, option)
        if mask not in groups or _choice_key(choice) < _choice_key(groups[mask]):
            groups[mask] = choice
    return _Table(names, groups)


def _members(table: _Table, mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(table.names) if mask >> i & 1)


def _key(table: _Table, masks: Iterable[int]) -> tuple:
    """The order every solver minimises: $/h, then servers, then groups, then the groups' names."""
    masks = list(masks)
    chosen = [table.groups[m] for m in masks]
    named = tuple(sorted(_members(table, m) for m in masks))
    return (sum(c.cost for c in chosen), sum(c.replicas for c in chosen), len(masks), named)


def _packing(table: _Table, masks: Iterable[int]) -> Packing:
    groups = [Group(_members(table, m), table.groups[m].replicas, table.groups[m].option) for m in masks]
    return Packing(tuple(sorted(groups, key=lambda g: g.tenants)))


def solve(
    tenants: Sequence[str], options: Iterable[Option], headroom: float = 0.25, exact_max: int = EXACT_MAX
) -> Packing | None:
    """The cheapest partition of `tenants` into groups, each served by one of its options with the replicas it
    needs: least total $/h, ties to fewer servers, then fewer groups, then by the groups' names.

    Only groups that have a feasible option may be used. None when no partition exists. Exact for
    len(tenants) <= exact_max (`solve_exact`); `solve_heuristic` beyond, which may miss the optimum and may,
    with sparse tables, miss a partition that exists.
    """
    if len(tenants) <= exact_max:
        return solve_exact(tenants, options, headroom)
    return solve_heuristic(tenants, options, headroom)


def solve_exact(tenants: Sequence[str], options: Iterable[Option], headroom: float = 0.25) -> Packing | None:
    """Exact, by the standard set-partition dynamic programme over subsets (the O(3^n) baseline that
    Bjorklund, Husfeldt & Koivisto, "Set partitioning via inclusion-exclusion", SIAM J. Comput. 2009, improve
    on): best[mask] = min over sub-masks `sub` of `mask` that contain its lowest set bit of
    cost(sub) + best[mask ^ sub]. Fixing the lowest bit in the first group counts each partition once. A mask
    of k tenants has 2^(k-1) such sub-masks, so the work is sum_k C(n, k) 2^(k-1) = (3^n - 1) / 2 steps, in
    O(2^n) memory.
    """
    table = _table(tenants, options, headroom)
    masks = _exact(table)
    return None if masks is None else _packing(table, masks)


def _exact(table: _Table) -> list[int] | None:
    """The DP, vectorised one layer at a time: the masks of k tenants depend only on masks of fewer, so a whole
    layer is one (masks x 2^(k-1) sub-masks) array. Ties in $/h go to fewer servers, then fewer groups, then
    the first group's names; that is the full order of `_key`, because the first group holds the lowest tenant
    in every candidate, so two candidates of one mask already differ in it."""
    n = len(table.names)
    if n > EXACT_LIMIT:
        raise ValueError(f"the exact solver holds 2^n states: {n} tenants is too many (max {EXACT_LIMIT})")
    size = 1 << n
    group_cost = np.full(size, UNSERVABLE, dtype=np.int64)
    group_servers = np.zeros(size, dtype=np.int64)
    for mask, choice in table.groups.items():
        group_cost[mask] = choice.cost
        group_servers[mask] = choice.replicas
    rank, layers = _structure(n)
    cost = np.full(size, UNSERVABLE, dtype=np.int64)  # micro-$/h of the best partition of each mask
    cost[0] = 0
    servers = np.zeros(size, dtype=np.int64)
    count = np.zeros(size, dtype=np.int64)
    first = np.zeros(size, dtype=np.int64)  # its group holding the lowest tenant; the rest is best[mask ^ first]
    for layer, groups, rest in layers:
        total = group_cost[groups] + cost[rest]
        tied = total == total.min(axis=1, keepdims=True)
        tied = _narrow(tied, group_servers[groups] + servers[rest])
        tied = _narrow(tied, count[rest])
        pick = np.where(tied, rank[groups], size).argmin(axis=1)
        rows = np.arange(len(layer))
        chosen = groups[rows, pick]
        cost[layer] = np.minimum(total[rows, pick], UNSERVABLE)
        first[layer] = chosen
        servers[layer] = group_servers[chosen] + servers[layer ^ chosen]
        count[layer] = 1 + count[layer ^ chosen]
    if cost[size - 1] >= UNSERVABLE:
        return None
    return _unwind([int(m) for m in first], size - 1)


def _structure(n: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """What the DP over n tenants enumerates, whatever the table: the names order of every mask, and per layer
    of k tenants its masks, their candidate first groups and the remainders. Small ones are kept: the heuristic
    re-packs thousands of small sets."""
    return _small_structure(n) if n <= RESOLVE_MAX else _build_structure(n)


def _build_structure(n: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    every = np.arange(1 << n, dtype=np.int64)
    popcount = ((every[:, None] >> np.arange(n)) & 1).sum(axis=1)
    layers = []
    for k in range(1, n + 1):
        layer = every[popcount == k]
        groups = _first_groups(layer, k, n)
        layers.append((layer, groups, layer[:, None] ^ groups))
    for array in (every, *(a for layer in layers for a in layer)):
        array.flags.writeable = False  # shared through the cache
    return _lex_rank(n), layers


_small_structure = functools.lru_cache(maxsize=None)(_build_structure)


def _first_groups(layer: np.ndarray, k: int, n: int) -> np.ndarray:
    """For each mask of k tenants, every group within it that holds its lowest tenant: the lowest bit plus each
    of the 2^(k-1) sub-masks of the other k - 1 bits (sub-mask j takes the b-th other bit when bit b of j is 1)."""
    _, columns = np.nonzero((layer[:, None] >> np.arange(n)) & 1)
    positions = columns.reshape(len(layer), k)  # row-major nonzero: each row's bits in increasing order
    j = np.arange(1 << (k - 1), dtype=np.int64)[None, :]
    groups = np.left_shift(1, positions[:, :1]).astype(np.int64) + 0 * j
    for b in range(k - 1):
        groups |= ((j >> b) & 1) << positions[:, b + 1 : b + 2]
    return groups


def _narrow(tied: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Of the tied candidates in each row, those with the least value."""
    masked = np.where(tied, values, np.iinfo(np.int64).max)
    return tied & (masked == masked.min(axis=1, keepdims=True))


def _lex_rank(n: int) -> np.ndarray:
    """Each mask's place when groups are ordered by their sorted tenant names (index order is name order)."""
    order = sorted(range(1 << n), key=lambda m: [i for i in range(n) if m >> i & 1])
    rank = np.empty(1 << n, dtype=np.int64)
    rank[order] = np.arange(1 << n)
    rank.flags.writeable = False
    return rank


def _unwind(first: list[int], mask: int) -> list[int]:
    groups = []
    while mask:
        groups.append(first[mask])
        mask ^= first[mask]
    return groups


def brute_force(tenants: Sequence[str], options: Iterable[Option], headroom: float = 0.25) -> Packing | None:
    """Every set partition, each scored in full (Bell(n) of them: 877 at 7): the reference the tests trust."""
    table = _table(tenants, options, headroom)
    n = len(table.names)
    if n > BRUTE_FORCE_MAX:
        raise ValueError(f"brute force over {n} tenants: Bell({n}) partitions is too many (max {BRUTE_FORCE_MAX})")
    best = None
    best_key = None
    for blocks in _partitions(list(range(n))):
        masks = [sum(1 << i for i in block) for block in blocks]
        if all(m in table.groups for m in masks):
            key = _key(table, masks)
            if best_key is None or key < best_key:
                best, best_key = masks, key
    return None if best is None else _packing(table, best)


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Set partitions by the standard recursion: the first item joins each block of a partition of the rest, or
    stands alone."""
    if not items:
        yield []
        return
    head, tail = items[0], items[1:]
    for partition in _partitions(tail):
        for i in range(len(partition)):
            yield [*partition[:i], [head, *partition[i]], *partition[i + 1 :]]
        yield [[head], *partition]


def solve_heuristic(tenants: Sequence[str], options: Iterable[Option], headroom: float = 0.25) -> Packing | None:
    """A good packing for many tenants, without the exact DP's 3^n: greedy starts improved by local search.

    Starts: (1) best fit decreasing: tenants by utilisation (1 / scale alone; those that cannot run alone first,
    each opening the cheapest group per tenant that holds it), each into the group, or alone, where it adds the
    least $/h; (2) every tenant alone. Local search takes the first step that lowers ($/h, servers, groups):
    merge two groups; move one tenant to another group or alone; swap two tenants of different groups; take
    two tenants of different groups out together as a new group; split a group (up to SPLIT_MAX tenants) in
    two; and, when none of those helps, re-pack the tenants of two or three groups exactly (up to RESOLVE_MAX
    tenants). Iterated local search then kicks the optimum KICKS times. Only groups with a feasible option are
    ever formed. The better of the two results wins.

    No optimality guarantee: benchmarks/packing_solver.py measures the gap to the exact DP. None when no start
    finds a partition, which with sparse tables can happen even where one exists.
    """
    table = _table(tenants, options, headroom)
    if not table.names:
        return Packing(())
    starts = [s for s in (_best_fit(table), _singletons(table)) if s is not None]
    if not starts:
        return None
    memo: dict[int, list[int] | None] = {}  # exact re-packings by tenant set: kicks revisit the same unions
    optima = [_iterated(table, start, memo) for start in starts]
    return _packing(table, min(optima, key=lambda masks: _key(table, masks)))


def _iterated(table: _Table, start: list[int], memo: dict[int, list[int] | None]) -> list[int]:
    """Iterated local search (Lourenco, Martin & Stutzle, "Iterated Local Search", 2003): from the best local
    optimum so far, a kick of KICK_MOVES random feasible moves that ignore cost, then local search again; an
    equal result is accepted too, to drift along plateaus of equal $/h. Seeded, so the same table gives the
    same packing."""
    rng = np.random.default_rng(KICK_SEED)
    best = _local_search(table, start, memo)
    for _ in range(KICKS):
        candidate = _local_search(table, _kick(table, best, rng), memo)
        if _total(table, candidate) <= _total(table, best):
            best = candidate
    return best


def _kick(table: _Table, groups: list[int], rng: np.random.Generator) -> list[int]:
    kicked = list(groups)
    for _ in range(KICK_MOVES):
        moves = [(old, new) for old, new in _moves(table, kicked) if all(m in table.groups for m in new if m)]
        if not moves:
            break
        old, new = moves[int(rng.integers(len(moves)))]
        for m in old:
            kicked.remove(m)
        kicked.extend(m for m in new if m)
    return kicked


def _singletons(table: _Table) -> list[int] | None:
    alone = [1 << i for i in range(len(table.names))]
    return alone if all(m in table.groups for m in alone) else None


def _best_fit(table: _Table) -> list[int] | None:
    n = len(table.names)

    def utilisation(i: int) -> float:
        alone = table.groups.get(1 << i)
        return math.inf if alone is None else 1 / alone.option.scale

    groups: list[int] = []
    used = 0
    for i in sorted(range(n), key=lambda i: (-utilisation(i), i)):
        bit = 1 << i
        if used & bit:
            continue  # placed already, by a group chosen for a tenant that cannot run alone
        # Extra $/h of each place it could go: an existing group, or alone.
        fits = [
            (table.groups[g | bit].cost - table.groups[g].cost, j)
            for j, g in enumerate(groups)
            if g | bit in table.groups
        ]
        if bit in table.groups:
            fits.append((table.groups[bit].cost, len(groups)))
        if fits:
            _, j = min(fits)
            if j == len(groups):
                groups.append(bit)
            else:
                groups[j] |= bit
            used |= bit
            continue
        # No group so far takes it and it cannot run alone: open the cheapest group per tenant that holds it
        # among the tenants not yet placed.
        fresh = [(c.cost / m.bit_count(), m) for m, c in table.groups.items() if m & bit and not m & used]
        if not fresh:
            return None
        _, m = min(fresh)
        groups.append(m)
        used |= m
    return groups


def _total(table: _Table, masks: Iterable[int]) -> tuple[int, int, int]:
    chosen = [table.groups[m] for m in masks if m]
    return (sum(c.cost for c in chosen), sum(c.replicas for c in chosen), len(chosen))


def _local_search(table: _Table, start: list[int], memo: dict[int, list[int] | None]) -> list[int]:
    groups = list(start)
    while True:
        step = _first_improvement(table, _moves(table, groups)) or _first_improvement(
            table, _resolves(table, groups, memo)
        )
        if step is None:
            return groups
        old, new = step
        for m in old:
            groups.remove(m)
        groups.extend(m for m in new if m)


def _first_improvement(table: _Table, steps: Iterable[tuple[tuple[int, ...], tuple[int, ...]]]):
    for old, new in steps:
        if all(m in table.groups for m in new if m) and _total(table, new) < _total(table, old):
            return old, new
    return None


def _resolves(
    table: _Table, groups: list[int], memo: dict[int, list[int] | None]
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Large-neighbourhood steps, tried once the single moves are exhausted: the tenants of two, then three,
    groups re-packed exactly by the DP, when they are at most RESOLVE_MAX tenants (at 10, 29,524 steps each)."""
    ordered = sorted(groups)
    for size in (2, 3):
        for old in itertools.combinations(ordered, size):
            union = 0
            for m in old:
                union |= m
            if union.bit_count() <= RESOLVE_MAX:
                if union not in memo:
                    memo[union] = _exact_within(table, union)
                best = memo[union]
                if best is not None:
                    yield old, tuple(best)


def _exact_within(table: _Table, universe: int) -> list[int] | None:
    """The exact packing of the tenants in `universe` alone: the DP on the table restricted to them."""
    expand = [0]  # expand[c]: the mask in `table` of the compact mask c over the universe's tenants
    for bit in _bits(universe):
        expand += [m | bit for m in expand]
    sub = _Table(
        tuple(n for i, n in enumerate(table.names) if universe >> i & 1),
        {c: table.groups[m] for c, m in enumerate(expand) if m in table.groups},
    )
    masks = _exact(sub)
    return None if masks is None else [expand[c] for c in masks]


def _moves(table: _Table, groups: list[int]) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Neighbouring partitions as (groups taken out, groups put in); an empty group (0) is dropped."""
    ordered = sorted(groups)
    for a, b in itertools.combinations(ordered, 2):
        yield (a, b), (a | b,)
    for a in ordered:
        for bit in _bits(a):
            if a != bit:
                yield (a,), (a ^ bit, bit)
            for b in ordered:
                if b != a:
                    yield (a, b), (a ^ bit, b | bit)
    for a, b in itertools.combinations(ordered, 2):
        for x in _bits(a):
            for y in _bits(b):
                yield (a, b), (a ^ x | y, b ^ y | x)  # swap x and y
                yield (a, b), (a ^ x, b ^ y, x | y)  # x and y leave together, as a new group
    for a in ordered:
        if 2 < a.bit_count() <= SPLIT_MAX:
            low = a & -a
            rest = a ^ low
            sub = (rest - 1) & rest
            while sub:  # every proper split, the part holding the lowest tenant being sub | low
                yield (a,), (sub | low, a ^ (sub | low))
                sub = (sub - 1) & rest
            yield (a,), (low, rest)


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]


def shapley(tenants: Sequence[str], cost: Callable[[frozenset[str]], float]) -> dict[str, float]:
    """Each tenant's Shapley value in the cooperative cost game `cost(coalition)` (Shapley 1953):
    phi_i = sum over coalitions S without i of |S|! (n - |S| - 1)! / n! x (cost(S + i) - cost(S)),
    the average over every joining order of what i adds. Exact: 2^n coalitions, each costed once (cost of the
    empty coalition is 0 and is not asked). The shares sum to cost(everyone) (efficiency), identical tenants
    pay the same (symmetry), and a tenant that never changes the cost pays 0 (null player).
    """
    names = list(tenants)
    n = len(names)
    if len(set(names)) != n:
        raise ValueError(f"duplicate tenant names in {names}")
    if n > SHAPLEY_MAX:
        raise ValueError(f"exact Shapley over {n} tenants needs 2^{n} coalition costs (max {SHAPLEY_MAX} tenants)")
    value = [0.0] * (1 << n)
    for mask in range(1, 1 << n):
        value[mask] = float(cost(frozenset(t for i, t in enumerate(names) if mask >> i & 1)))
    weight = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    shares = {}
    for i, name in enumerate(names):
        bit = 1 << i
        shares[name] = sum(
            weight[mask.bit_count()] * (value[mask | bit] - value[mask]) for mask in range(1 << n) if not mask & bit
        )
    return shares


# synthetic_options: the shape of the tables, chosen to make packing non-trivial. A typical tenant fills about
# 0.3 of a server at its target rate, so two or three share one; heavy ones fill more than 0.9 and need
# replicas at headroom 0.25; light ones fit anywhere. Interference slows each member by a share of its own
# work per neighbour, and a few pairs cannot share a server at all.
SYNTH_TYPICAL_UTILISATION = 0.3
SYNTH_UTILISATION_SIGMA = 0.5  # lognormal spread around the typical tenant
SYNTH_HEAVY_FRACTION = 0.15
SYNTH_HEAVY_RANGE = (0.9, 2.5)
SYNTH_LIGHT_FRACTION = 0.2
SYNTH_LIGHT_RANGE = (0.02, 0.1)
SYNTH_MEAN_INTERFERENCE = 0.15  # mean slow-down one neighbour causes (exponential)
SYNTH_CLASH_PROBABILITY = 0.08  # a pair that cannot share a server
SYNTH_INSTANCE_SIGMA = 0.3  # lognormal spread of a bigger instance's capacity per dollar, per tenant
SYNTH_INSTANCE = "synthetic"
SYNTH_USD_PER_HOUR = 1.0


def synthetic_options(
    n: int, seed: int, instances: dict[str, float] | None = None, max_size: int | None = None
) -> tuple[list[str], list[Option]]:
    """Seeded random capacity tables: tenant names t00, t01, ... and an option for every non-empty group of at
    most `max_size` tenants (all of them by default) on every instance type of `instances` (name -> $/h).

    Tenant t fills u_t of the cheapest instance at its target rate; on an instance costing p times as much it
    fills u_t / (p g_t), g_t lognormal around 1 (bigger instances are better per dollar for some tenants and
    worse for others). A group's scale is 1 / sum over t of u_t (1 + sum of t's slow-downs from the others);
    a clashing pair gives scale 0. The same seed gives the same table.
    """
    rng = np.random.default_rng(seed)
    kind = rng.random(n)
    typical = SYNTH_TYPICAL_UTILISATION * np.exp(SYNTH_UTILISATION_SIGMA * rng.standard_normal(n))
    heavy = rng.uniform(*SYNTH_HEAVY_RANGE, n)
    light = rng.uniform(*SYNTH_LIGHT_RANGE, n)
    utilisation = np.where(
        kind < SYNTH_HEAVY_FRACTION, heavy, np.where(kind < SYNTH_HEAVY_FRACTION + SYNTH_LIGHT_FRACTION, light, typical)
    )
    slowdown = rng.exponential(SYNTH_MEAN_INTERFERENCE, (n, n))  # slowdown[t, j]: what j costs t
    clash = np.triu(rng.random((n, n)) < SYNTH_CLASH_PROBABILITY, 1)
    slowdown[clash | clash.T] = np.inf
    np.fill_diagonal(slowdown, 0.0)
    prices = dict(instances) if instances else {SYNTH_INSTANCE: SYNTH_USD_PER_HOUR}
    cheapest = min(prices.values())
    names = [f"t{i:02d}" for i in range(n)]
    options = []
    for instance in sorted(prices):
        price = prices[instance]
        per_dollar = np.exp(SYNTH_INSTANCE_SIGMA * rng.standard_normal(n)) if price != cheapest else np.ones(n)
        share = utilisation / (price / cheapest * per_dollar)
        for size in range(1, (max_size or n) + 1):
            for members in itertools.combinations(range(n), size):
                idx = list(members)
                load = float(np.sum(share[idx] * (1 + slowdown[np.ix_(idx, idx)].sum(axis=1))))
                scale = 0.0 if not math.isfinite(load) else 1 / load
                options.append(Option(frozenset(names[i] for i in idx), scale, price, instance))
    return names, options
