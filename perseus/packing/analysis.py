"""`perseus plan`'s figures, computed once as data (pure): the plan's rows, the fleets it is compared with,
who pays for what, and how well the capacity predictions did.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from perseus.analysis.at_capacity import per_million
from perseus.analysis.bracket import Search
from perseus.packing.predict import subsets
from perseus.packing.probes import group_label
from perseus.packing.solve import Option, Packing, shapley, solve
from perseus.packing.variants import Member, models_of

PLAN_COLUMNS = [
    "group",
    "tenants",
    "models",
    "instance",
    "replicas",
    "capacity_scale",
    "capacity_low",
    "capacity_high",
    "predicted_scale",
    "usd_per_hour",
    "busy_fraction",
    "verified",
    "measured_in",  # "here", or the --from folder the group's capacity was measured in
]
HERE = "here"
SHAPLEY_MAX = 4  # a Shapley chargeback needs every coalition measured: 2^N - 1 groups


@dataclass(frozen=True)
class Fleet:
    """One way to serve every tenant at its target rate, with headroom."""

    name: str  # "plan", "all shared", "all dedicated"
    servers: int | None  # None: not feasible (or not measured)
    usd_per_hour: float
    usd_per_million: float  # at the tenants' target rates
    note: str = ""


@dataclass(frozen=True)
class PlanSummary:
    plan: pd.DataFrame  # PLAN_COLUMNS, one row per group
    fleets: list[Fleet]
    chargeback: pd.DataFrame  # per tenant: group, share, usd_per_hour, usd_per_million
    shapley: pd.DataFrame | None  # per tenant: Shapley share of the fleet's $/h (all coalitions measured)
    predictions: pd.DataFrame  # per measured group of 2+: predicted vs measured scale, error
    median_prediction_error: float
    verdict: str
    verified: bool


def summarize_plan(
    *,
    tenants: list[str],
    rates: Mapping[str, float],
    table: Mapping[str, Member],
    options: list[Option],
    searches: Mapping[tuple[str, frozenset[str]], Search],
    predicted: Mapping[frozenset[str], float],
    packing: Packing | None,
    names: list[str],
    headroom: float,
    verification: Mapping[str, Mapping[str, dict]],
    busy: Mapping[str, float],
    shares: Mapping[str, Mapping[str, float]],
    infeasible: list[str],
    interrupted: bool,
) -> PlanSummary:
    """``table``: every member (a tenant serving one of its model variants); ``options``: every measured group,
    here and imported; ``searches``: each one's capacity search by (source, members), source "" being here;
    ``predicted``: the prediction made before measuring a group here; ``verification``: group name -> tenant ->
    its summary row in the verification run; ``busy``: group name -> busy fraction there; ``shares``: group name
    -> tenant -> its execution-time share there."""
    rows = []
    for name, group in zip(names, packing.groups if packing else (), strict=True):
        o = group.option
        search = searches[(o.source, o.members)]
        checked = verification.get(name, {})
        ok = bool(checked) and all(bool(r["valid"]) and bool(r["sla_met"]) for r in checked.values())
        models = models_of(o.members, table)
        rows.append(
            {
                "group": name,
                "tenants": " ".join(group.tenants),
                "models": " ".join(models[t] for t in group.tenants),
                "instance": o.instance,
                "replicas": group.replicas,
                "capacity_scale": search.capacity or 0.0,
                "capacity_low": search.capacity or 0.0,
                "capacity_high": search.upper if search.upper is not None else math.inf,
                "predicted_scale": math.nan if o.source else predicted.get(o.members, math.nan),
                "usd_per_hour": group.usd_per_hour,
                "busy_fraction": busy.get(name, math.nan),
                "verified": ok,
                "measured_in": o.source or HERE,
            }
        )
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    verified = bool(rows) and bool(plan["verified"].all()) and not infeasible and not interrupted
    feasible = [t for t in tenants if t not in infeasible]
    total_rate = sum(rates[t] for t in feasible)
    fleets = [
        _fleet("plan", packing, total_rate),
        _fleet("all shared", _only(feasible, options, headroom, lambda g: len(g) == len(feasible)), total_rate),
        _fleet("all dedicated", _only(feasible, options, headroom, lambda g: len(g) == 1), total_rate),
    ]
    return PlanSummary(
        plan=plan,
        fleets=fleets,
        chargeback=_chargeback(packing, names, rates, table, searches, shares),
        shapley=_shapley(feasible, options, headroom),
        predictions=(preds := _predictions(searches, predicted)),
        median_prediction_error=_median_error(preds),
        verdict=_verdict(packing, fleets, infeasible, _solo_uppers(table, searches), verified, interrupted, plan),
        verified=verified,
    )


def _only(tenants: list[str], measured: list[Option], headroom: float, keep) -> Packing | None:
    chosen = [o for o in measured if keep(o.tenants) and o.tenants <= set(tenants)]
    return solve(tenants, chosen, headroom) if tenants else None


def _fleet(name: str, packing: Packing | None, total_rate: float) -> Fleet:
    if packing is None:
        note = "not feasible" if name != "all shared" else "not feasible, or the group of all was not measured"
        return Fleet(name, None, math.nan, math.nan, note)
    return Fleet(name, packing.servers, packing.usd_per_hour, per_million(packing.usd_per_hour, total_rate))


def _chargeback(packing, names, rates, table, searches, shares) -> pd.DataFrame:
    """Each group's $/h split among its tenants: by their execution-time share in the verification run,
    else by their utilisation alone (1 / solo capacity of the variant it serves, where it was measured)."""
    rows = []
    for name, group in zip(names, packing.groups if packing else (), strict=True):
        measured = shares.get(name, {})
        if group.tenants and all(math.isfinite(measured.get(t, math.nan)) for t in group.tenants):
            weights, how = [measured[t] for t in group.tenants], "execution time"
        else:
            member = {table[m].tenant: m for m in group.option.members}
            solo = [searches.get((group.option.source, frozenset([member[t]]))) for t in group.tenants]
            weights = [1 / (s.capacity or math.inf) if s is not None else 0.0 for s in solo]
            how = "utilisation alone"
        total = sum(weights)
        for t, w in zip(group.tenants, weights, strict=True):
            share = w / total if total > 0 else 1 / len(group.tenants)
            dollars = share * group.usd_per_hour
            rows.append(
                {
                    "tenant": t,
                    "group": name,
                    "share": share,
                    "split_by": how,
                    "usd_per_hour": dollars,
                    "usd_per_million": per_million(dollars, rates[t]),
                }
            )
    return pd.DataFrame(rows, columns=["tenant", "group", "share", "split_by", "usd_per_hour", "usd_per_million"])


def _shapley(tenants: list[str], measured: list[Option], headroom: float) -> pd.DataFrame | None:
    """The fleet cost's Shapley split, when every coalition of tenants was measured (N <= SHAPLEY_MAX)."""
    known = {o.tenants for o in measured}
    if not 1 < len(tenants) <= SHAPLEY_MAX:
        return None
    everyone = frozenset(tenants)
    if any(c not in known for c in subsets(tenants)):
        return None

    def cost(coalition: frozenset[str]) -> float:
        best = solve(sorted(coalition), [o for o in measured if o.tenants <= coalition], headroom)
        return best.usd_per_hour if best else math.inf

    if not math.isfinite(cost(everyone)) or any(not math.isfinite(cost(c)) for c in subsets(tenants)):
        return None  # a coalition with no feasible packing has no cost to share
    values = shapley(tenants, cost)
    return pd.DataFrame(
        [{"tenant": t, "usd_per_hour": values[t], "share": values[t] / cost(everyone)} for t in tenants]
    )


def _predictions(
    searches: Mapping[tuple[str, frozenset[str]], Search], predicted: Mapping[frozenset[str], float]
) -> pd.DataFrame:
    """Predicted vs measured capacity of every group of two or more measured here (predictions are made only here)."""
    rows = []
    for (source, group), search in searches.items():
        if source or len(group) < 2 or not math.isfinite(predicted.get(group, math.nan)):
            continue
        k, p = search.capacity or 0.0, predicted[group]
        # An error means something only where the measurement is a bracket, not a floor: the group's
        # search and its tenants' solo searches each found a failing load.
        bracketed = all(
            s is not None and s.upper is not None
            for s in (search, *(searches.get(("", frozenset([m]))) for m in group))
        )
        rows.append(
            {
                "group": group_label(group),
                "predicted_scale": p,
                "measured_scale": k,
                "measured_high": search.upper if search.upper is not None else math.inf,
                "bracketed": bracketed,
                "error": (p - k) / k if k > 0 else math.nan,
                "abs_error": abs(p - k) / k if k > 0 else math.nan,
            }
        )
    columns = ["group", "predicted_scale", "measured_scale", "measured_high", "bracketed", "error", "abs_error"]
    return pd.DataFrame(rows, columns=columns)


def _median_error(predictions: pd.DataFrame) -> float:
    """Median |predicted - measured| / measured over the bracketed measurements (NaN without one)."""
    errors = predictions.loc[predictions["bracketed"].astype(bool), "abs_error"].dropna()
    return float(statistics.median(errors)) if len(errors) else math.nan


def _solo_uppers(table: Mapping[str, Member], searches: Mapping[tuple[str, frozenset[str]], Search]) -> dict:
    """tenant -> the largest failing scale among its variants' solo searches here (its capacity is below it)."""
    out: dict[str, float] = {}
    for m, member in table.items():
        search = searches.get(("", frozenset([m])))
        if search is not None:
            out[member.tenant] = max(out.get(member.tenant, 0.0), search.upper or 0.0)
    return out


def _verdict(packing, fleets, infeasible, uppers, verified, interrupted, plan) -> str:
    if interrupted:
        return "interrupted: the plan below uses what was measured before the interruption, and is not verified"
    head = ""
    if infeasible:
        caps = ", ".join(
            f"{t} (measured capacity: below {uppers.get(t, 0.0):.3g}x its target rate)" for t in infeasible
        )
        head = f"no server meets the SLA of {caps} even alone at any load tried; planned without them. "
    if packing is None:
        return head + "no packing is feasible"
    plan_fleet, shared, dedicated = fleets
    parts = [f"{plan_fleet.servers} servers at ${plan_fleet.usd_per_hour:.3g}/h"]
    if dedicated.servers:
        saved = 1 - plan_fleet.usd_per_hour / dedicated.usd_per_hour
        parts.append(f"{saved:.0%} less than all dedicated ({dedicated.servers} servers)")
    if shared.servers:
        parts.append(f"all shared needs {shared.servers} server(s) at ${shared.usd_per_hour:.3g}/h")
    check = "verified: every tenant VALID and within its SLA" if verified else _failed(plan)
    return head + "plan: " + "; ".join(parts) + f". {check}"


def _failed(plan: pd.DataFrame) -> str:
    unverified = plan.loc[~plan["verified"].astype(bool)] if len(plan) else plan
    here = unverified.loc[unverified["measured_in"] == HERE, "group"].tolist()
    elsewhere = unverified.loc[unverified["measured_in"] != HERE]
    parts = [f"{', '.join(here)} missed an SLA or lacked evidence in the verification run"] if here else []
    for folder, rows in elsewhere.groupby("measured_in", sort=True):
        parts.append(
            f"{', '.join(rows['group'])} on {', '.join(sorted(set(rows['instance'])))} come from {folder} and "
            "were not rerun here (run plan.toml on that hardware to verify them)"
        )
    return "NOT verified: " + "; ".join(parts)
