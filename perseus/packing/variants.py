"""Model variants in a plan (pure): what a measured group is made of, when a tenant accepts several models.

A tenant that lists ``models = [...]`` can be served by any of them (INFaaS's "model-less" idea), and the
plan picks the variant that makes the fleet cheapest. The plan measures *members*: a member is a tenant
serving one of its variants, named ``tenant`` when the tenant has one model and ``tenant=model`` when it
has several. A measured group is a set of members, no two of one tenant; the solver partitions tenants,
so each member set becomes an option for its tenants, and the cheapest option of a tenant set wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from perseus.scenario import Scenario

SEP = "="  # tenant=model: a tenant name (NAME_PATTERN) never holds "=", so the first one splits a label


@dataclass(frozen=True)
class Member:
    label: str
    tenant: str
    model: str


def label(tenant: str, model: str, several: bool) -> str:
    return f"{tenant}{SEP}{model}" if several else tenant


def members(scenario: Scenario) -> dict[str, Member]:
    """Every member of the scenario's tenants, by label, in the scenario's order (each tenant's default first)."""
    out = {}
    for t in scenario.tenants:
        for model in t.variants:
            name = label(t.name, model, len(t.variants) > 1)
            out[name] = Member(name, t.name, model)
    return out


def tenants_of(group: Iterable[str], table: Mapping[str, Member]) -> frozenset[str]:
    return frozenset(table[m].tenant for m in group)


def models_of(group: Iterable[str], table: Mapping[str, Member]) -> dict[str, str]:
    """tenant -> the model it serves in this group."""
    return {table[m].tenant: table[m].model for m in group}


def is_group(group: Iterable[str], table: Mapping[str, Member]) -> bool:
    """A real group: no tenant twice (two variants of one tenant are never served together)."""
    group = list(group)
    return len(tenants_of(group, table)) == len(group)


def of_tenant(tenant: str, table: Mapping[str, Member]) -> list[str]:
    return [m.label for m in table.values() if m.tenant == tenant]


def rank(group: Iterable[str], table: Mapping[str, Member]) -> int:
    """How far a group is from its tenants' preferred models: the sum of each member's place in its tenant's
    `models` list (0 when every tenant serves its first). Among equally cheap options the lower rank wins."""
    return sum(of_tenant(table[m].tenant, table).index(m) for m in group)


def best_members(tenants: Iterable[str], table: Mapping[str, Member], solo: Mapping[str, float]) -> frozenset[str]:
    """For each tenant, its variant with the largest measured solo capacity (the default on ties): under the
    additive model (packing/predict.py) the group that uses the least of a server, which is the one to
    predict, and so to measure, first."""
    chosen = []
    for t in tenants:
        labels = of_tenant(t, table)
        chosen.append(max(labels, key=lambda m: (solo.get(m, 0.0), -labels.index(m))))
    return frozenset(chosen)
