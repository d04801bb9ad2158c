"""Calibration verdicts, computed once as data: measured percentiles vs exact M/D/1 theory, and harness overhead.

Theory is the exact Erlang/Crommelin sojourn-time distribution (``theory.md1_percentiles``), not a
simulation, so the expected figures carry no Monte-Carlo error.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from perseus.calibration.theory import md1_percentiles

QS = (50, 90, 95, 99)
# Targets (issue: "Measurement you can trust"): p50/p90/p95 within 5% of theory, p99 within 10%.
TOLERANCE = {50: 0.05, 90: 0.05, 95: 0.05, 99: 0.10}
LAG_P99_TARGET_MS = 1.0
RATE_TOLERANCE = 0.01
COMPUTE_METRICS = (
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)


def server_service_ms(telemetry: pd.DataFrame, model: str) -> float:
    """Mean time the instance spends per request (compute input + infer + output), from Triton's counters.

    Uses counter deltas between the first and last scrape, so the window does not matter.
    """
    mine = telemetry[telemetry["labels"].map(lambda s: json.loads(s).get("model") == model)]
    if mine.empty:
        return math.nan

    def delta(metric: str) -> float:
        values = mine.loc[mine["metric"] == metric].sort_values("t_s")["value"]
        return float(values.iloc[-1] - values.iloc[0]) if len(values) >= 2 else math.nan

    count = delta("nv_inference_count")
    if not count or math.isnan(count):
        return math.nan
    return sum(delta(m) for m in COMPUTE_METRICS) / count / 1e3


def client_overhead_ms(probe_requests: pd.DataFrame, service_ms: float) -> float:
    """Fixed client+HTTP+backend overhead: the unloaded round trip minus the server's compute time."""
    measured = probe_requests[(~probe_requests["warmup"]) & probe_requests["ok"]]
    return float(np.median(measured["service_ms"])) - service_ms


def verdict_rows(
    label: str,
    rho_target: float,
    requests: pd.DataFrame,
    duration_s: float,
    target_rate: float,
    service_ms: float,
    overhead_ms: float,
    seed: int = 0,
) -> list[dict]:
    """One row per percentile: measured vs exact M/D/1 theory; plus harness rows (lag, achieved rate).

    ``seed`` is unused since the theory became exact; it stays for callers that pass it.
    """
    measured = requests[~requests["warmup"]]
    ok = measured[measured["ok"]]
    lat = ok["latency_ms"].to_numpy()
    # Completed over the window stretched to the last completion, as in the run summary.
    window = max(duration_s, float(ok["done_s"].max()) if len(ok) else 0.0)
    achieved = len(ok) / window
    rate_for_theory = len(measured) / duration_s
    rho = rate_for_theory * service_ms / 1e3
    theory = md1_percentiles(rate_for_theory, service_ms / 1e3, QS) if rho < 1 else {}
    rows = []
    base = {"deployment": label, "rho_target": rho_target, "rho": rho, "service_ms": service_ms, "requests": len(lat)}
    for q in QS:
        m = float(np.percentile(lat, q)) if len(lat) else math.nan
        t = theory.get(q, math.inf) + overhead_ms
        err = (m - t) / t if math.isfinite(t) and t > 0 else math.nan
        rows.append(
            {
                **base,
                "check": f"p{q} latency",
                "measured": m,
                "expected": t,
                "error": err,
                "tolerance": TOLERANCE[q],
                "passed": bool(abs(err) <= TOLERANCE[q]) if not math.isnan(err) else False,
            }
        )
    lag = (measured["sent_s"] - measured["scheduled_s"]).to_numpy() * 1e3
    for q in (50, 99):
        value = float(np.percentile(lag, q)) if len(lag) else math.nan
        rows.append(
            {
                **base,
                "check": f"lag p{q} (scheduled to sent)",
                "measured": value,
                "expected": 0.0,
                "error": math.nan,
                "tolerance": LAG_P99_TARGET_MS if q == 99 else math.nan,
                "passed": bool(value < LAG_P99_TARGET_MS) if q == 99 else True,
            }
        )
    rate_err = achieved / target_rate - 1.0
    rows.append(
        {
            **base,
            "check": "achieved rate (req/s)",
            "measured": achieved,
            "expected": target_rate,
            "error": rate_err,
            "tolerance": RATE_TOLERANCE,
            "passed": bool(abs(rate_err) <= RATE_TOLERANCE),
        }
    )
    return rows
