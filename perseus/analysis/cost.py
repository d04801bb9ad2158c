"""Cost, chargeback, Triton's server-side rates and GPU energy: pure functions over tables.

- Cost per million inferences: instance $/h x measured time / completed requests.
- Savings are measured at capacity only (perseus/analysis/at_capacity.py); at the offered load the
  shared-vs-dedicated difference is a count of servers (perseus/analysis/verdict.py).
- Cost per million *good* inferences: a request that missed its SLA or failed costs money and delivers
  nothing, so it is left out of the denominator.
- Busy fraction: the server's execution compute time / (window x model instances), from the execution
  counters of Triton's statistics API (a dynamically batched execution counts once).
- Chargeback: a shared server's cost split among its tenants by their share of execution compute time
  (statistics API; per-request /metrics durations when a run has no statistics, which count a batch once
  per request) and, side by side, by their share of completed requests.
- Server-side rates per (deployment, tenant) from Triton's cumulative counters, between the scrape nearest
  the measurement start (t = 0) and the last scrape.
- Energy from NVML's energy counter over the same kind of window, per completed request; per tenant
  split by compute share.

Telemetry is the long format of results.read_telemetry: ``t_s, source, metric, labels, value, deployment``.
Triton labels its per-model counters with ``model``, which is the tenant's name (models are served under it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

SECONDS_PER_HOUR = 3600.0

TRITON = "triton"
NVML = "nvml"
# column -> Triton counter (cumulative since the server started)
COUNTERS = {
    "inferences": "nv_inference_count",  # a request of batch n counts n
    "executions": "nv_inference_exec_count",  # model executions (batches)
    "requests": "nv_inference_request_success",
    "queue_us": "nv_inference_queue_duration_us",
    "compute_input_us": "nv_inference_compute_input_duration_us",
    "compute_infer_us": "nv_inference_compute_infer_duration_us",
    "compute_output_us": "nv_inference_compute_output_duration_us",
    # Triton's statistics API (telemetry/triton.py stats_rows): each execution once, however batched.
    "exec_compute_us": "stats_execution_compute_us",
    "exec_count": "stats_execution_count",
}
COMPUTE_COLUMNS = ("compute_input_us", "compute_infer_us", "compute_output_us")

SERVER_COLUMNS = [
    "deployment",
    "tenant",
    "window_s",
    *COUNTERS,
    "inferences_per_s",
    "executions_per_s",
    "avg_batch",
    "queue_ms",  # mean per request (Triton accumulates durations per request)
    "compute_ms",  # mean per request: input + infer + output
    "compute_s",  # total compute time credited to the tenant's requests (a batch once per request)
    "exec_compute_s",  # total execution compute time (a batch once): the time the tenant kept the server busy
]
CHARGEBACK_COLUMNS = [
    "deployment",
    "tenant",
    "completed",
    "good",
    "request_share",
    "compute_share",
    "cost_by_requests_usd",
    "cost_by_compute_usd",
    "cost_per_million_by_requests_usd",
    "cost_per_million_by_compute_usd",
    "cost_per_million_good_by_compute_usd",
    "cost_per_million_good_by_requests_usd",
    "compute_counter",  # which counters the compute share rests on (EXECUTION or PER_REQUEST)
]
EXECUTION = "execution (statistics API)"
PER_REQUEST = "per request (/metrics; a batch counted once per request)"
ENERGY_COLUMNS = [
    "deployment",
    "gpus",
    "window_s",
    "energy_j",
    "mean_power_w",
    "gpu_util_percent",
    "memory_max_gb",
    "completed",
    "j_per_inference",
]
NO_GPU = "no NVIDIA GPU: GPU metrics not collected"


# --- cost ------------------------------------------------------------------------------------------------


def cost_usd(usd_per_hour: float, seconds: float, servers: int = 1) -> float:
    return usd_per_hour * servers * seconds / SECONDS_PER_HOUR


def per_million(total_usd: float, completed: int) -> float:
    return total_usd / completed * 1e6 if completed > 0 else math.nan


def savings(shared_per_million: float, solo_per_million: float) -> float:
    """Fraction saved by sharing: 1 - shared / solo (negative means sharing costs more)."""
    if not (solo_per_million > 0) or math.isnan(shared_per_million):
        return math.nan
    return 1.0 - shared_per_million / solo_per_million


def shares(values: Sequence[float]) -> list[float]:
    """Each value's fraction of the total; NaN everywhere when the total is not positive or any value is NaN."""
    v = np.asarray(values, dtype=float)
    total = v.sum()
    if len(v) == 0 or not np.isfinite(total) or total <= 0:
        return [math.nan] * len(v)
    return list(v / total)


def chargeback(
    deployment: str,
    cost: float,
    tenants: Sequence[str],
    completed: Sequence[int],
    compute_s: Sequence[float],
    good: Sequence[int] | None = None,
    counter: str = EXECUTION,
) -> pd.DataFrame:
    """Split one server's ``cost`` among its tenants by compute-time share and by completed-request share.

    ``good``: each tenant's requests that met its SLA (default: all completed)."""
    good = list(completed) if good is None else list(good)
    req_share, comp_share = shares(completed), shares(compute_s)
    rows = []
    for t, n, g, rs, cs in zip(tenants, completed, good, req_share, comp_share, strict=True):
        by_req, by_comp = cost * rs, cost * cs
        rows.append(
            {
                "deployment": deployment,
                "tenant": t,
                "completed": int(n),
                "good": int(g),
                "request_share": rs,
                "compute_share": cs,
                "cost_by_requests_usd": by_req,
                "cost_by_compute_usd": by_comp,
                "cost_per_million_by_requests_usd": per_million(by_req, int(n)),
                "cost_per_million_by_compute_usd": per_million(by_comp, int(n)),
                "cost_per_million_good_by_compute_usd": per_million(by_comp, int(g)),
                "cost_per_million_good_by_requests_usd": per_million(by_req, int(g)),
                "compute_counter": counter,
            }
        )
    return pd.DataFrame(rows, columns=CHARGEBACK_COLUMNS)


def busy_fraction(compute_s: float, window_s: float, instances: float) -> float:
    """The share of a server's model-instance time spent executing: compute / (window x instances).

    Each model instance executes one batch at a time, so ``window x instances`` is all the execution
    time the server had; NaN when a figure is missing."""
    return _div(compute_s, window_s * instances) if instances and np.isfinite(instances) else math.nan


# --- counters ------------------------------------------------------------------------------------------------


def counter_increase(values: Iterable[float]) -> float:
    """How much a cumulative counter grew over ordered samples; after a reset (a drop) it counts from 0.

    NaN with fewer than two samples.
    """
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan
    steps = np.diff(v)
    return float(np.where(steps >= 0, steps, v[1:]).sum())


def window(times: Iterable[float]) -> tuple[float, float] | None:
    """(start, end) sample times: the sample nearest the measurement start (t = 0), and the last one.

    Telemetry starts with the warm-up (t < 0); counters are read from the sample closest to the start
    of measurement so that warm-up traffic is not counted. None with fewer than two usable samples.
    """
    t = np.unique(np.asarray(list(times), dtype=float))
    t = t[np.isfinite(t)]
    if len(t) < 2:
        return None
    start, end = float(t[np.argmin(np.abs(t))]), float(t.max())
    return (start, end) if end > start else None


def _label(labels: pd.Series, key: str) -> pd.Series:
    """One key of the JSON labels column (parsed once per distinct label set)."""
    parsed = {s: json.loads(s).get(key) if s else None for s in labels.unique()}
    return labels.map(parsed)


def triton_counters(telemetry: pd.DataFrame | None) -> pd.DataFrame:
    """Per (deployment, tenant): the window and the increase of each Triton counter in it.

    Label sets of one tenant (e.g. model versions) are summed per scrape before taking the increase.
    """
    columns = ["deployment", "tenant", "window_s", *COUNTERS]
    if telemetry is None or not len(telemetry):
        return pd.DataFrame(columns=columns)
    names = {v: k for k, v in COUNTERS.items()}
    tri = telemetry[(telemetry["source"] == TRITON) & telemetry["metric"].isin(list(names))]
    if not len(tri):
        return pd.DataFrame(columns=columns)
    tri = tri.assign(tenant=_label(tri["labels"], "model"), column=tri["metric"].map(names))
    tri = tri[tri["tenant"].notna()]
    rows = []
    for dep, d in tri.groupby("deployment", sort=False):
        bounds = window(d["t_s"])
        if bounds is None:
            continue
        t0, t1 = bounds
        d = d[(d["t_s"] >= t0) & (d["t_s"] <= t1)]
        summed = d.groupby(["tenant", "column", "t_s"], sort=False)["value"].sum()
        for tenant, per_tenant in summed.groupby(level="tenant", sort=False):
            row = {"deployment": dep, "tenant": tenant, "window_s": t1 - t0}
            for col in COUNTERS:
                try:
                    series = per_tenant.xs(col, level="column").sort_index()
                except KeyError:
                    row[col] = math.nan
                    continue
                row[col] = counter_increase(series.to_numpy())
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _div(a: float, b: float) -> float:
    return a / b if b and b > 0 and np.isfinite(a) and np.isfinite(b) else math.nan


def server_rates(counters: pd.DataFrame) -> pd.DataFrame:
    """Rates from counter increases: inferences/s, executions/s, average batch, mean queue and compute ms."""
    out = counters.reindex(columns=["deployment", "tenant", "window_s", *COUNTERS]).copy()
    rows = out.to_dict("records")
    for r in rows:
        compute_us = sum(float(r[c]) for c in COMPUTE_COLUMNS)
        r["inferences_per_s"] = _div(r["inferences"], r["window_s"])
        r["executions_per_s"] = _div(r["executions"], r["window_s"])
        r["avg_batch"] = _div(r["inferences"], r["executions"])
        r["queue_ms"] = _div(r["queue_us"], r["requests"]) / 1e3
        r["compute_ms"] = _div(compute_us, r["requests"]) / 1e3
        r["compute_s"] = compute_us / 1e6
        r["exec_compute_s"] = float(r["exec_compute_us"]) / 1e6
    return pd.DataFrame(rows, columns=SERVER_COLUMNS)


# --- energy --------------------------------------------------------------------------------------------


def device_rows(nv: pd.DataFrame) -> pd.DataFrame:
    """Whole-GPU rows (not MIG instances, not processes), with their ``gpu`` index; only the GPUs our server
    used (those with a process row) when any process rows exist."""
    gpu, mig, pid = _label(nv["labels"], "gpu"), _label(nv["labels"], "mig"), _label(nv["labels"], "pid")
    nv = nv.assign(gpu=gpu)
    used = set(nv.loc[pid.notna(), "gpu"].dropna())
    devices = nv[mig.isna() & pid.isna() & gpu.notna()]
    return devices[devices["gpu"].isin(used)] if used else devices


def gpu_energy(telemetry: pd.DataFrame | None) -> pd.DataFrame:
    """Per deployment with NVML telemetry: energy over the window (summed over GPUs), mean power,
    mean utilisation and peak memory in the measured part (t >= 0)."""
    if telemetry is None or not len(telemetry):
        return pd.DataFrame(columns=ENERGY_COLUMNS)
    nv_all = telemetry[telemetry["source"] == NVML]
    rows = []
    for dep, nv in nv_all.groupby("deployment", sort=False):
        dev = device_rows(nv)
        if not len(dev):
            continue
        energy = dev[dev["metric"] == "energy_j"]
        bounds = window(energy["t_s"]) if len(energy) else None
        if bounds is not None:
            t0, t1 = bounds
            e = energy[(energy["t_s"] >= t0) & (energy["t_s"] <= t1)]
            per_gpu = [counter_increase(g.sort_values("t_s")["value"]) for _, g in e.groupby("gpu")]
            joules = float(np.nansum(per_gpu)) if any(np.isfinite(per_gpu)) else math.nan
            span = t1 - t0
        else:
            joules, span = math.nan, math.nan
        measured = dev[dev["t_s"] >= 0]
        util = measured[measured["metric"] == "gpu_util_percent"]
        memory = measured[measured["metric"] == "memory_used_bytes"]
        power = measured[measured["metric"] == "power_w"]
        # Mean over time of the sum over GPUs: average per GPU, then sum (power) or average (utilisation).
        mean_power = (
            _div(joules, span)
            if np.isfinite(joules)
            else (float(power.groupby("gpu")["value"].mean().sum()) if len(power) else math.nan)
        )
        rows.append(
            {
                "deployment": dep,
                "gpus": int(dev["gpu"].nunique()),
                "window_s": span,
                "energy_j": joules,
                "mean_power_w": mean_power,
                "gpu_util_percent": float(util["value"].mean()) if len(util) else math.nan,
                "memory_max_gb": float(memory.groupby("t_s")["value"].sum().max()) / 1e9 if len(memory) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=[c for c in ENERGY_COLUMNS if c not in ("completed", "j_per_inference")])


def has_gpu_metrics(telemetry: pd.DataFrame | None) -> bool:
    return telemetry is not None and bool(len(telemetry)) and bool((telemetry["source"] == NVML).any())


def per_inference(energy_j: float, completed: int) -> float:
    """Joules per completed request; NaN without completions or without energy."""
    return energy_j / completed if completed > 0 and np.isfinite(energy_j) else math.nan
