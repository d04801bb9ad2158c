"""The Summary: every statistic and verdict of a run, computed once, as data.

Renderers (report.md, report.html, plots, summary.csv) only format what is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perseus.analysis import cost
from perseus.analysis.pipeline import pipeline_steps
from perseus.analysis.ramp import ramps
from perseus.analysis.roles import first_of_kind
from perseus.analysis.stats import PERCENTILES, percentiles, sla_attainment, sla_latency
from perseus.analysis.strategies import compare_strategies
from perseus.analysis.trials import quantile_interval, trials_table
from perseus.analysis.validity import judge
from perseus.kinds import DeploymentKind, is_open_loop

# server.csv: Triton's rates per (deployment, tenant), then completions, compute share and energy.
SERVER_COLUMNS = [*cost.SERVER_COLUMNS, "completed", "compute_share", "energy_j", "j_per_inference"]

DEFAULT_MIN_DURATION_S = 10.0
DEFAULT_MIN_REQUESTS = 100

ROW_COLUMNS = [
    "deployment",
    "tenant",
    "model",
    "requests",
    "errors",
    "duration_s",
    "throughput_rps",
    "target_rps",
    *[f"p{q}_ms" for q in PERCENTILES],
    "sla_ms",
    "sla_percentile",
    "sla_latency_ms",
    "sla_attainment",
    "sla_met",
    "valid",
    "verdict",
    "cost_per_million_usd",
    "p99_ci_low_ms",
    "p99_ci_high_ms",
    "send_lag_p99_ms",
]
# A load generator that keeps up sends within about 2 ms of schedule at p99 here (docs/benchmarks.md,
# "Distributed load"); past this, its own delay is a visible part of the latency it reports.
SEND_LAG_NOTE_MS = 5.0


@dataclass(frozen=True)
class TenantSpec:
    name: str
    model: str
    sla_ms: float
    sla_percentile: float
    open_loop: bool  # closed-loop tenants have no target rate


@dataclass(frozen=True)
class Comparison:
    """Shared server vs one server per tenant, for the whole tenant mix."""

    shared_cost_per_million_usd: float
    solo_cost_per_million_usd: float
    savings: float  # 1 - shared / solo
    shared_slas_met: bool
    solo_slas_met: bool
    servers_solo: int
    verdict: str
    # The savings that count: ``savings`` when both sides meet every SLA, else NaN with the reason.
    savings_counted: float = math.nan
    savings_note: str = ""


@dataclass(frozen=True)
class Summary:
    scenario: str
    rows: pd.DataFrame  # one row per (deployment, tenant): summary.csv
    deployments: pd.DataFrame  # one row per deployment: cost of the deployment
    comparison: Comparison | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Server side, from telemetry (empty frames without it): see perseus/analysis/cost.py.
    server: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SERVER_COLUMNS))
    chargeback: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=cost.CHARGEBACK_COLUMNS))
    energy: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=cost.ENERGY_COLUMNS))
    gpu_note: str | None = cost.NO_GPU  # None when NVML telemetry exists
    # Repeated trials (--repeat): bootstrap intervals per (deployment, tenant); empty with one trial.
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Embedded vs external serving per tenant (empty unless strategies include "embedded").
    strategies: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Stress ramps: per (deployment, tenant) the rate that held and the rate that broke the SLA.
    ramps: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Ensemble tenants: each step's server-side time (empty without pipelines).
    pipeline: pd.DataFrame = field(default_factory=pd.DataFrame)


def tenant_specs(effective_scenario: dict) -> dict[str, TenantSpec]:
    return {
        t["name"]: TenantSpec(
            name=t["name"],
            model=t["model"],
            sla_ms=float(t["sla_ms"]),
            sla_percentile=float(t["sla_percentile"]),
            open_loop=is_open_loop(t["load"]["arrival"]),
        )
        for t in effective_scenario["tenants"]
    }


@dataclass(frozen=True)
class Minimums:
    duration_s: float = DEFAULT_MIN_DURATION_S
    requests: int = DEFAULT_MIN_REQUESTS


def tenant_row(
    deployment: str, spec: TenantSpec, frame: pd.DataFrame, duration_s: float, minimums: Minimums = Minimums()
) -> dict:
    """Statistics of one tenant in one deployment, from its measured (non-warm-up) records."""
    lat = frame["latency_ms"].to_numpy(dtype=float)
    ok = frame["ok"].to_numpy(dtype=bool)
    completed = int(ok.sum())
    # Throughput over the measured window, stretched to the last completion: an overloaded server
    # that finishes late is not credited with the offered rate.
    last_done = float(frame.loc[frame["ok"], "done_s"].max()) if completed else 0.0
    window = max(duration_s, last_done)
    pcts = percentiles(lat[ok])
    p99_lo, p99_hi = quantile_interval(np.sort(lat[ok]), 0.99)
    sla_lat = sla_latency(lat, ok, spec.sla_percentile)
    sla_met = bool(len(frame) > 0 and sla_lat <= spec.sla_ms)
    validity = judge(
        duration_s=min(duration_s, window),
        requests=len(frame),
        over_sla=int(np.sum(~ok | (lat > spec.sla_ms))),
        sla_met=sla_met,
        percentile=spec.sla_percentile,
        min_duration_s=minimums.duration_s,
        min_requests=minimums.requests,
    )
    return {
        "deployment": deployment,
        "tenant": spec.name,
        "model": spec.model,
        "requests": len(frame),
        "errors": int(len(frame) - completed),
        "duration_s": window,
        "throughput_rps": completed / window if window > 0 else math.nan,
        # The offered rate: the schedule's measured arrivals over the measured window. For poisson and
        # constant that is the configured rate; for step, spike and trace it is their mean.
        "target_rps": len(frame) / duration_s if spec.open_loop and duration_s > 0 else math.nan,
        **{f"p{q}_ms": v for q, v in pcts.items()},
        "sla_ms": spec.sla_ms,
        "sla_percentile": spec.sla_percentile,
        "sla_latency_ms": sla_lat,
        "sla_attainment": sla_attainment(lat, ok, spec.sla_ms),
        "sla_met": sla_met,
        "valid": validity.valid,
        "verdict": validity.verdict,
        "p99_ci_low_ms": p99_lo,
        "p99_ci_high_ms": p99_hi,
        # Open loop only: a closed-loop request is sent when it is scheduled, by definition.
        "send_lag_p99_ms": float(frame["send_lag_ms"].quantile(0.99))
        if spec.open_loop and len(frame) and "send_lag_ms" in frame
        else math.nan,
    }


def summarize(
    requests: pd.DataFrame,
    effective_scenario: dict,
    deployments: dict[str, dict],
    usd_per_hour: float | None,
    notes: tuple[str, ...] = (),
    telemetry: pd.DataFrame | None = None,
    pipelines: dict[str, dict[str, list[str]]] | None = None,
) -> Summary:
    """Pure: records + scenario + deployment metadata + price (+ telemetry) -> Summary.

    ``deployments`` maps name -> {"tenants": [...], "duration_s": float, "status": str}, in run order.
    ``telemetry`` is the long table of results.read_telemetry (with its ``deployment`` column), or None.
    """
    specs = tenant_specs(effective_scenario)
    run = effective_scenario.get("run", {})
    minimums = Minimums(
        float(run.get("min_duration_s", DEFAULT_MIN_DURATION_S)), int(run.get("min_requests", DEFAULT_MIN_REQUESTS))
    )
    measured = requests[~requests["warmup"]] if len(requests) else requests
    groups = (
        {key: g for key, g in measured.groupby(["deployment", "tenant"], sort=False, observed=True)}
        if len(measured)
        else {}
    )
    empty = measured.iloc[0:0]

    rows, dep_rows = [], []
    for name, meta in deployments.items():
        tenant_rows = [
            tenant_row(name, specs[t], groups.get((name, t), empty), float(meta["duration_s"]), minimums)
            for t in meta["tenants"]
        ]
        window = max((r["duration_s"] for r in tenant_rows), default=float(meta["duration_s"]))
        completed = sum(r["requests"] - r["errors"] for r in tenant_rows)
        dep_cost = cost.cost_usd(usd_per_hour, window) if usd_per_hour is not None else math.nan
        per_m = cost.per_million(dep_cost, completed)
        for r in tenant_rows:
            # One server's cost spread over every inference it served: the same per inference for
            # every tenant of a shared server.
            r["cost_per_million_usd"] = per_m
        rows.extend(tenant_rows)
        dep_rows.append(
            {
                "deployment": name,
                "kind": str(meta.get("kind", DeploymentKind.SHARED)),
                "status": meta.get("status", "completed"),
                "tenants": len(meta["tenants"]),
                "servers": 1,
                "replicas": int(meta.get("replicas", 1)),
                "duration_s": window,
                "completed": completed,
                "cost_usd": dep_cost,
                "cost_per_million_usd": per_m,
                "slas_met": all(r["sla_met"] for r in tenant_rows),
                "valid": all(r["valid"] for r in tenant_rows),
            }
        )

    rows_df = pd.DataFrame(rows, columns=ROW_COLUMNS)
    dep_df = pd.DataFrame(
        dep_rows,
        columns=[
            "deployment",
            "kind",
            "status",
            "tenants",
            "servers",
            "replicas",
            "duration_s",
            "completed",
            "cost_usd",
            "cost_per_million_usd",
            "slas_met",
            "valid",
        ],
    )
    server, charge, energy = server_side(rows_df, dep_df, deployments, telemetry, pipelines)
    gpu = cost.has_gpu_metrics(telemetry)
    return Summary(
        scenario=effective_scenario["name"],
        rows=rows_df,
        deployments=dep_df,
        comparison=compare(dep_df, deployments, list(specs)),
        notes=(*notes, *lag_notes(rows_df)),
        server=server,
        chargeback=charge,
        energy=energy,
        gpu_note=None if gpu else cost.NO_GPU,
        trials=trials_table(rows_df, deployments),
        strategies=compare_strategies(rows_df, telemetry, deployments),
        ramps=ramps(measured, effective_scenario, deployments),
        pipeline=pipeline_steps(telemetry, pipelines or {}),
    )


def lag_notes(rows: pd.DataFrame) -> list[str]:
    """Where the load generator fell behind its schedule: latency counts from the scheduled time (no
    coordinated omission), so the generator's own delay is in it, and the server looks slower than it is.
    """
    late = rows[rows["send_lag_p99_ms"] > SEND_LAG_NOTE_MS]
    return [
        f"deployment {r.deployment}, tenant {r.tenant}: the load generator sent late (send lag p99 "
        f"{r.send_lag_p99_ms:.1f} ms), so its own delay is part of the latency: send from more "
        "processes (perseus run --workers N) or a larger client machine"
        for r in late.itertuples()
    ]


def server_side(
    rows: pd.DataFrame,
    deps: pd.DataFrame,
    deployments: dict[str, dict],
    telemetry: pd.DataFrame | None,
    pipelines: dict[str, dict[str, list[str]]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(server, chargeback, energy) tables: Triton's rates and energy per (deployment, tenant), the cost
    split of every multi-tenant deployment, and GPU energy per deployment.

    An ensemble tenant's compute time is that of the models its steps ran (the ensemble itself only
    routes tensors), so chargeback and energy follow the composing models."""
    rates = cost.server_rates(cost.triton_counters(telemetry)).set_index(["deployment", "tenant"])
    energy = cost.gpu_energy(telemetry).set_index("deployment")
    completed = {(r["deployment"], r["tenant"]): int(r["requests"] - r["errors"]) for r in rows.to_dict("records")}
    by_dep = deps.set_index("deployment")

    server_rows, charge_frames, energy_rows = [], [], []
    for name, meta in deployments.items():
        tenants = list(meta["tenants"])
        per_tenant = [
            rates.loc[(name, t)].to_dict() if (name, t) in rates.index else {c: math.nan for c in rates.columns}
            for t in tenants
        ]
        steps = (pipelines or {}).get(name, {})
        compute = [
            (0.0 if steps.get(t) and math.isnan(float(r["compute_s"])) else float(r["compute_s"]))
            + sum(float(rates.loc[(name, m), "compute_s"]) for m in steps.get(t, []) if (name, m) in rates.index)
            for t, r in zip(tenants, per_tenant, strict=True)
        ]
        compute_share = cost.shares(compute)
        done = [completed.get((name, t), 0) for t in tenants]
        dep_energy = float(energy.loc[name, "energy_j"]) if name in energy.index else math.nan
        for t, r, share, n in zip(tenants, per_tenant, compute_share, done, strict=True):
            joules = dep_energy * share
            server_rows.append(
                {
                    "deployment": name,
                    "tenant": t,
                    **r,
                    "completed": n,
                    "compute_share": share,
                    "energy_j": joules,
                    "j_per_inference": cost.per_inference(joules, n),
                }
            )
        if len(tenants) > 1:
            charge_frames.append(cost.chargeback(name, float(by_dep.loc[name, "cost_usd"]), tenants, done, compute))
        if name in energy.index:
            energy_rows.append(
                {
                    "deployment": name,
                    **energy.loc[name].to_dict(),
                    "gpus": int(energy.loc[name, "gpus"]),
                    "completed": sum(done),
                    "j_per_inference": cost.per_inference(dep_energy, sum(done)),
                }
            )
    charge = (
        pd.concat(charge_frames, ignore_index=True) if charge_frames else pd.DataFrame(columns=cost.CHARGEBACK_COLUMNS)
    )
    return (
        pd.DataFrame(server_rows, columns=SERVER_COLUMNS),
        charge,
        pd.DataFrame(energy_rows, columns=cost.ENERGY_COLUMNS),
    )


def compare(deployments: pd.DataFrame, meta: dict[str, dict], tenants: list[str]) -> Comparison | None:
    """Shared vs solo fleet: one server for everyone, or one server per tenant, same measured time."""
    by_name = deployments.set_index("deployment")
    shared_name = first_of_kind(meta, DeploymentKind.SHARED)
    solo_names = [first_of_kind(meta, DeploymentKind.SOLO, t) for t in tenants]
    if shared_name is None or None in solo_names or len(tenants) < 2:
        return None
    shared = by_name.loc[shared_name]
    solos = by_name.loc[solo_names]
    shared_pm = cost.per_million(float(shared["cost_usd"]), int(shared["completed"]))
    solo_pm = cost.per_million(float(solos["cost_usd"].sum()), int(solos["completed"].sum()))
    saved = cost.savings(shared_pm, solo_pm)
    shared_ok, solo_ok = bool(shared["slas_met"]), bool(np.all(solos["slas_met"]))
    counted, note = cost.counted_savings(saved, shared_ok, solo_ok)
    return Comparison(
        shared_cost_per_million_usd=shared_pm,
        solo_cost_per_million_usd=solo_pm,
        savings=saved,
        shared_slas_met=shared_ok,
        solo_slas_met=solo_ok,
        servers_solo=len(solo_names),
        verdict=_verdict(shared_ok, solo_ok, saved, len(solo_names)),
        savings_counted=counted,
        savings_note=note,
    )


def _verdict(shared_ok: bool, solo_ok: bool, saved: float, n: int) -> str:
    """The headline. SLAs first: a server that misses an SLA is never called the cheaper choice."""
    if shared_ok and solo_ok:
        if math.isnan(saved):
            return "share: one server meets every SLA (no price for this instance: cost not compared)"
        if saved >= 0:
            return (
                f"share: one server meets every SLA and costs {saved:.0%} less per million inferences "
                f"than {n} single-tenant servers"
            )
        return (
            f"do not share: one server meets every SLA but costs {-saved:.0%} more per million inferences "
            f"than {n} single-tenant servers"
        )
    if shared_ok:
        return (
            f"share: one server meets every SLA; {n} single-tenant servers miss at least one "
            "(no savings claimed against a fleet that misses its SLAs)"
        )
    if solo_ok:
        return "do not share: the shared server misses at least one SLA that single-tenant servers meet"
    return "neither meets every SLA: the load is too high for this instance, shared or not"
