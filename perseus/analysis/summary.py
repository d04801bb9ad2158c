"""The Summary: every statistic and verdict of a run, computed once, as data.

Renderers (report.md, report.html, plots, summary.csv) only format what is here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from perseus.analysis import breakdown as breakdown_mod
from perseus.analysis import cost
from perseus.analysis.at_capacity import AtCapacity, cost_at_capacity
from perseus.analysis.frameworks import compare_frameworks
from perseus.analysis.observer import cpu_us_per_request, mean_cpu, observer_note, shares_host
from perseus.analysis.pipeline import pipeline_steps
from perseus.analysis.ramp import ramps
from perseus.analysis.roles import first_of_kind
from perseus.analysis.stats import PERCENTILES, percentiles, sla_attainment, sla_latency
from perseus.analysis.strategies import compare_strategies
from perseus.analysis.trials import quantile_interval, trials_table
from perseus.analysis.validity import judge
from perseus.analysis.verdict import Comparison, compare, why_no_comparison
from perseus.kinds import DeploymentKind, TelemetrySource, is_open_loop

# server.csv: Triton's rates per (deployment, tenant), then completions, compute share and energy.
SERVER_COLUMNS = [*cost.SERVER_COLUMNS, "completed", "compute_share", "energy_j", "j_per_inference"]

DEFAULT_MIN_DURATION_S = 10.0
DEFAULT_MIN_REQUESTS = 100

ROW_COLUMNS = [
    "deployment",
    "tenant",
    "model",
    "protocol",  # how its requests travelled: http | grpc (Triton's protocols) | in-process (embedded)
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
    "good",  # requests that completed within the SLA
    "goodput_rps",  # good / the measured window
    "busy_fraction",  # the tenant's execution time / (window x its model instances)
    "cost_per_million_good_usd",  # the deployment's cost per million good inferences (late or failed: nothing)
    "evidence_ok",  # enough time and requests (and, when the SLA holds, early-stopping evidence) for a verdict
]
DEPLOYMENT_COLUMNS = [
    "deployment",
    "kind",
    "status",
    "tenants",
    "servers",
    "replicas",
    "usd_per_hour",
    "duration_s",
    "completed",
    "good",
    "cost_usd",
    "cost_per_million_usd",
    "cost_per_million_good_usd",
    "busy_fraction",
    "slas_met",
    "valid",
    "failed_scrapes",  # telemetry scrapes that failed, all sources (the manifest has them by source)
    "loadgen_cpu_percent",  # the load generator's mean CPU (% of one core) over the measured window
    "loadgen_cpu_us_per_request",  # its CPU per request sent in that window (perseus/analysis/observer.py)
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
    rate: float | None = None  # the configured rate (req/s) of poisson and constant loads
    protocol: str = "http"  # load.protocol: http | grpc


@dataclass(frozen=True)
class Summary:
    scenario: str
    rows: pd.DataFrame  # one row per (deployment, tenant): summary.csv
    deployments: pd.DataFrame  # one row per deployment: cost of the deployment
    comparison: Comparison | None  # shared vs solo (perseus/analysis/verdict.py)
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Server side, from telemetry (empty frames without it): see perseus/analysis/cost.py.
    server: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SERVER_COLUMNS))
    chargeback: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=cost.CHARGEBACK_COLUMNS))
    energy: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=cost.ENERGY_COLUMNS))
    gpu_note: str | None = cost.NO_GPU  # None when NVML telemetry exists
    # Repeated trials (--repeat): Student-t intervals per (deployment, tenant); empty with one trial.
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Embedded vs external serving per tenant (empty unless strategies include "embedded").
    strategies: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Serving frameworks side by side per tenant (empty unless [run] servers names kinds).
    frameworks: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Stress ramps: per (deployment, tenant) the rate that held and the rate that broke the SLA.
    ramps: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Ensemble tenants: each step's server-side time (empty without pipelines).
    pipeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Cost at capacity, from a capacity table in the run folder (None without one).
    at_capacity: AtCapacity | None = None
    # Why there is no comparison (``comparison`` None), naming what stopped or never started; "" otherwise.
    no_comparison: str = ""
    # Traced runs (run.trace_rate > 0): where latency went at p50/p99 per (deployment, tenant), and
    # shared vs solo split into compute, queueing, client and network (analysis/breakdown.py).
    breakdown: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=breakdown_mod.BREAKDOWN_COLUMNS))
    attribution: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=breakdown_mod.ATTRIBUTION_COLUMNS))


def tenant_specs(effective_scenario: dict) -> dict[str, TenantSpec]:
    return {
        t["name"]: TenantSpec(
            name=t["name"],
            model=t["model"],
            sla_ms=float(t["sla_ms"]),
            sla_percentile=float(t["sla_percentile"]),
            open_loop=is_open_loop(t["load"]["arrival"]),
            rate=_configured_rate(t["load"]),
            protocol=t["load"].get("protocol", "http"),  # older runs spoke HTTP only
        )
        for t in effective_scenario["tenants"]
    }


def _configured_rate(load: dict) -> float | None:
    """The rate a poisson or constant load is asked for; None for the shapes whose rate varies."""
    rate = load.get("rate")
    return float(rate) if load.get("arrival") in ("poisson", "constant") and rate is not None else None


@dataclass(frozen=True)
class Minimums:
    duration_s: float = DEFAULT_MIN_DURATION_S
    requests: int = DEFAULT_MIN_REQUESTS


def tenant_row(
    deployment: str,
    spec: TenantSpec,
    frame: pd.DataFrame,
    duration_s: float,
    minimums: Minimums = Minimums(),
    status: str = "completed",
) -> dict:
    """Statistics of one tenant in one deployment, from its measured (non-warm-up) records.

    ``status``: the deployment's. One that did not complete (failed, interrupted, or a crashed run whose
    manifest still says running) is counted over the time its records actually cover, is never VALID
    and carries no verdict (its schedule was not completed)."""
    finished = status == "completed"
    lat = frame["latency_ms"].to_numpy(dtype=float)
    ok = frame["ok"].to_numpy(dtype=bool)
    completed = int(ok.sum())
    if not finished and len(frame):
        duration_s = min(duration_s, float(frame["done_s"].max()))
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
        status=status,
    )
    good = int(np.sum(ok & (lat <= spec.sla_ms)))
    # A miss with enough evidence is a conclusive miss; only a thin measurement (short, few requests, or
    # an SLA that holds without the requests to show it) or one cut short leaves the verdict open.
    conclusive_miss = validity.early_stopping_ok or not sla_met
    evidence = finished and validity.duration_ok and validity.requests_ok and conclusive_miss
    return {
        "deployment": deployment,
        "tenant": spec.name,
        "model": spec.model,
        "protocol": spec.protocol,
        "requests": len(frame),
        "errors": int(len(frame) - completed),
        "duration_s": window,
        "throughput_rps": completed / window if window > 0 else math.nan,
        # The offered rate: the schedule's measured arrivals over the measured window. For poisson and
        # constant that is the configured rate; for step, spike and trace it is their mean.
        # A deployment cut short offered only its first part, so over the cut window the arrivals match
        # the throughput by construction; its target is the configured rate when there is one.
        "target_rps": (
            spec.rate
            if spec.open_loop and not finished and spec.rate is not None
            else (len(frame) / duration_s if spec.open_loop and duration_s > 0 else math.nan)
        ),
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
        "good": good,
        "goodput_rps": good / window if window > 0 else math.nan,
        "evidence_ok": bool(evidence),
    }


def summarize(
    requests: pd.DataFrame,
    effective_scenario: dict,
    deployments: dict[str, dict],
    usd_per_hour: float | None,
    notes: tuple[str, ...] = (),
    telemetry: pd.DataFrame | None = None,
    pipelines: dict[str, dict[str, list[str]]] | None = None,
    capacity: pd.DataFrame | None = None,
    not_started: Sequence[str] = (),
    spans: pd.DataFrame | None = None,
) -> Summary:
    """Pure: records + scenario + deployment metadata + price (+ telemetry) -> Summary.

    ``deployments`` maps name -> its manifest record: {"tenants": [...], "duration_s": float, "status": str,
    "kind", "replicas", and, from the report, "instances" (tenant -> model instances served) and
    "usd_per_hour" (when priced as another instance than ``usd_per_hour``'s)}, in run order.
    ``telemetry`` is the long table of results.read_telemetry (with its ``deployment`` column), or None.
    ``capacity``: a `perseus capacity` table (capacity.csv) for cost at capacity, or None.
    ``not_started``: the deployments of the run that never started (not in ``deployments``).
    ``spans``: every traced deployment's spans.parquet rows, or None.
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

    rates = cost.server_rates(cost.triton_counters(telemetry)).set_index(["deployment", "tenant"])
    rows, dep_rows, observer_notes = [], [], []
    for name, meta in deployments.items():
        status = str(meta.get("status", "completed"))
        ran = meta.get("models") or {}  # a model variant that ran instead of the scenario's model
        tenant_rows = [
            tenant_row(
                name,
                replace(specs[t], model=ran.get(t, specs[t].model)),
                groups.get((name, t), empty),
                float(meta["duration_s"]),
                minimums,
                status,
            )
            for t in meta["tenants"]
        ]
        if meta.get("kind") == DeploymentKind.EMBEDDED:  # no server, so no protocol: the model ran in-process
            for r in tenant_rows:
                r["protocol"] = "in-process"
        price = meta.get("usd_per_hour", usd_per_hour)
        dep = deployment_row(name, meta, tenant_rows, rates, price)
        dep.update(generator_cpu(telemetry, name, float(meta["duration_s"]), tenant_rows))
        if shares_host(effective_scenario, dep["kind"]):
            note = observer_note(name, dep["loadgen_cpu_percent"], dep["loadgen_cpu_us_per_request"])
            observer_notes.extend([note] if note else [])
        rows.extend(tenant_rows)
        dep_rows.append(dep)

    rows_df = pd.DataFrame(rows, columns=ROW_COLUMNS)
    dep_df = pd.DataFrame(dep_rows, columns=DEPLOYMENT_COLUMNS)
    server, charge, energy = server_side(rows_df, dep_df, deployments, telemetry, pipelines)
    gpu = cost.has_gpu_metrics(telemetry)
    shared = first_of_kind(deployments, DeploymentKind.SHARED)
    shares = dict(zip(charge.loc[charge["deployment"] == shared, "tenant"], charge["compute_share"], strict=False))
    at_capacity = cost_at_capacity(capacity, usd_per_hour, shares) if capacity is not None else None
    comparison = compare(dep_df, deployments, rows_df, at_capacity)
    return Summary(
        scenario=effective_scenario["name"],
        rows=rows_df,
        deployments=dep_df,
        comparison=comparison,
        no_comparison="" if comparison else why_no_comparison(deployments, list(specs), not_started),
        at_capacity=at_capacity,
        notes=(
            *notes,
            *lag_notes(rows_df),
            *observer_notes,
            *scrape_notes(deployments),
            *counter_notes(charge),
            *fallback_notes(deployments),
        ),
        server=server,
        chargeback=charge,
        energy=energy,
        gpu_note=None if gpu else cost.NO_GPU,
        trials=trials_table(rows_df, deployments),
        strategies=compare_strategies(rows_df, telemetry, deployments),
        frameworks=compare_frameworks(rows_df, telemetry, deployments),
        ramps=ramps(measured, effective_scenario, deployments),
        pipeline=pipeline_steps(telemetry, pipelines or {}),
        **traced_tables(spans, deployments, list(specs)),
    )


def traced_tables(spans: pd.DataFrame | None, deployments: dict[str, dict], tenants: list[str]) -> dict:
    """The Summary's breakdown and attribution tables (empty without spans)."""
    if spans is None or spans.empty:
        return {}
    analysed = spans[spans["deployment"].astype(str).isin(list(deployments))]
    table = breakdown_mod.breakdown(analysed)
    shared = first_of_kind(deployments, DeploymentKind.SHARED)
    pairs = {}
    for tenant in tenants:
        solo = first_of_kind(deployments, DeploymentKind.SOLO, tenant)
        if shared and solo:
            pairs[tenant] = (shared, solo)
    return {"breakdown": table, "attribution": breakdown_mod.attribution(table, pairs)}


def deployment_row(name: str, meta: dict, tenant_rows: list[dict], rates: pd.DataFrame, price: float | None) -> dict:
    """One deployment's cost and busy fraction; its tenants' rows get theirs (busy, cost per good inference).

    A group of ``replicas`` is measured as one replica, so its fleet costs replicas x one server and
    serves replicas x the replica's requests: the same per inference as one replica."""
    replicas = int(meta.get("replicas", 1))
    window = max((r["duration_s"] for r in tenant_rows), default=float(meta["duration_s"]))
    completed = sum(r["requests"] - r["errors"] for r in tenant_rows)
    good = sum(r["good"] for r in tenant_rows)
    dep_cost = cost.cost_usd(price, window, servers=replicas) if price is not None else math.nan
    per_m = cost.per_million(dep_cost, completed * replicas)
    per_good = cost.per_million(dep_cost, good * replicas)
    instances = meta.get("instances") or {}
    exec_s, windows = [], []
    for r in tenant_rows:
        key = (name, r["tenant"])
        seconds = float(rates.loc[key, "exec_compute_s"]) if key in rates.index else math.nan
        span = float(rates.loc[key, "window_s"]) if key in rates.index else math.nan
        r["busy_fraction"] = cost.busy_fraction(seconds, span, instances.get(r["tenant"], math.nan))
        # One server's cost spread over every inference it served: the same for every tenant of it.
        r["cost_per_million_usd"], r["cost_per_million_good_usd"] = per_m, per_good
        exec_s.append(seconds)
        windows.append(span)
    total_instances = sum(instances.get(r["tenant"], math.nan) for r in tenant_rows)
    busy = cost.busy_fraction(sum(exec_s), max(windows, default=math.nan), total_instances)
    return {
        "deployment": name,
        "kind": str(meta.get("kind", DeploymentKind.SHARED)),
        "status": meta.get("status", "completed"),
        "tenants": len(meta["tenants"]),
        "servers": replicas,
        "replicas": replicas,
        "usd_per_hour": price if price is not None else math.nan,
        "duration_s": window,
        "completed": completed,
        "good": good,
        "cost_usd": dep_cost,
        "cost_per_million_usd": per_m,
        "cost_per_million_good_usd": per_good,
        "busy_fraction": busy,
        "slas_met": all(r["sla_met"] for r in tenant_rows),
        "valid": all(r["valid"] for r in tenant_rows),
        "failed_scrapes": sum((meta.get("failed_scrapes") or {}).values()),
    }


def generator_cpu(telemetry: pd.DataFrame | None, name: str, duration_s: float, tenant_rows: list[dict]) -> dict:
    """The load generator's CPU over a deployment's measured window: its share of a core, and per request."""
    percent = mean_cpu(telemetry, name, "loadgen", until_s=duration_s)
    sent = sum(int(r["requests"]) for r in tenant_rows)
    return {
        "loadgen_cpu_percent": percent,
        "loadgen_cpu_us_per_request": cpu_us_per_request(percent, duration_s, sent),
    }


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


# What each telemetry source's scrapes back in the report, for the warning when some failed.
SCRAPE_BACKS = {
    TelemetrySource.TRITON_METRICS: ("Triton /metrics", "the server breakdown (server.csv)"),
    TelemetrySource.TRITON_STATS: ("the statistics API", "the chargeback and the busy fraction"),
    TelemetrySource.HOST: ("host CPU and memory", "the CPU figures"),
    TelemetrySource.NVML: ("NVML", "the energy figures"),
    TelemetrySource.FRAMEWORK_METRICS: ("the framework's /metrics", "its server-side figures"),
}


def scrape_notes(deployments: dict[str, dict]) -> list[str]:
    """A warning per deployment whose telemetry scrapes failed: its counters are read between the
    scrapes that worked, so the figures they back rest on fewer (or no) readings."""
    notes = []
    for name, meta in deployments.items():
        failed = {s: n for s, n in (meta.get("failed_scrapes") or {}).items() if n}
        if not failed:
            continue
        known = [SCRAPE_BACKS.get(s, (s, "")) for s in failed]
        sources = ", ".join(f"{word} {n}" for (word, _), n in zip(known, failed.values(), strict=True))
        figures = ", ".join(dict.fromkeys(what for _, what in known if what))
        notes.append(
            f"deployment {name}: {sum(failed.values())} telemetry scrapes failed ({sources}): "
            f"{figures} rest on missing scrapes"
        )
    return notes


def fallback_notes(deployments: dict[str, dict]) -> list[str]:
    """Where the backend model's batched executions failed and were rerun request by request: those
    requests were served, but not as the batches the configuration asked for (server.log says why)."""
    return [
        f"deployment {name}, tenant {tenant}: {n} batched executions failed and were rerun one request at a "
        "time (the backend's error is in server.log), so its requests were not served as batches"
        for name, meta in deployments.items()
        for tenant, n in (meta.get("batch_fallbacks") or {}).items()
        if n
    ]


def counter_notes(chargeback: pd.DataFrame) -> list[str]:
    """Where the chargeback fell back from execution counters to per-request ones (said, not silent)."""
    fell_back = chargeback.loc[chargeback["compute_counter"] == cost.PER_REQUEST, "deployment"].unique()
    return [
        f"deployment {name}: the statistics API's execution counters are missing, so its chargeback uses "
        "Triton's per-request compute time, which counts a dynamically batched execution once per request "
        "(a batching tenant's share is overstated)"
        for name in fell_back
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
    good_of = {(r["deployment"], r["tenant"]): int(r["good"]) for r in rows.to_dict("records")}
    by_dep = deps.set_index("deployment")

    server_rows, charge_frames, energy_rows = [], [], []
    for name, meta in deployments.items():
        tenants = list(meta["tenants"])
        per_tenant = [
            rates.loc[(name, t)].to_dict() if (name, t) in rates.index else {c: math.nan for c in rates.columns}
            for t in tenants
        ]
        steps = (pipelines or {}).get(name, {})
        column, counter = "exec_compute_s", cost.EXECUTION
        compute = tenant_compute(name, tenants, per_tenant, steps, rates, column)
        if not all(math.isfinite(c) for c in compute):  # a run without the statistics API's counters
            column, counter = "compute_s", cost.PER_REQUEST
            compute = tenant_compute(name, tenants, per_tenant, steps, rates, column)
        compute_share = cost.shares(compute)
        done = [completed.get((name, t), 0) for t in tenants]
        good = [good_of.get((name, t), 0) for t in tenants]
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
            dep_cost = float(by_dep.loc[name, "cost_usd"])
            replicas = int(by_dep.loc[name, "replicas"])
            # A replicated group's fleet served replicas x one replica's requests.
            fleet_done, fleet_good = [n * replicas for n in done], [g * replicas for g in good]
            charge_frames.append(cost.chargeback(name, dep_cost, tenants, fleet_done, compute, fleet_good, counter))
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


def tenant_compute(
    name: str, tenants: list[str], per_tenant: list[dict], steps: dict, rates: pd.DataFrame, column: str
) -> list[float]:
    """Each tenant's compute seconds from ``column``; an ensemble's are its steps' (the ensemble itself
    only routes tensors, so its own counter is NaN or 0)."""
    out = []
    for t, r in zip(tenants, per_tenant, strict=True):
        own = float(r[column])
        if steps.get(t):
            own = 0.0 if math.isnan(own) else own
            own += sum(float(rates.loc[(name, m), column]) for m in steps[t] if (name, m) in rates.index)
        out.append(own)
    return out
