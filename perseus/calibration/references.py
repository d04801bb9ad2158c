"""The references a calibration run is judged against, per percentile: pure functions over arrays.

Why more than the exact M/D/1 distribution. One 60 s run's p99 varies between Poisson draws by
about +-12% at rho 0.5 and +-25% at rho 0.8 (issue 19's side-by-side runs), so a run compared with
the stationary distribution mostly measures its own draw. Three references separate that noise from
the harness's error:

- **M/D/1 on the run's own arrivals** (``conditioned_sojourns``): Lindley's recursion over the very
  arrival times the run scheduled, with a fixed service time. No trace needed; always on.
- **Trace-driven**: the same recursion with each request's own time on the instance as the server
  traced it (one instance, FIFO), plus the server's own I/O for that request: the latency a perfect
  client would have seen, request by request. It judges the harness.
- **The unconditioned M/D/1 distribution** (``theory.md1_percentiles``) with the 95% band that runs
  of the same length would scatter over (``sampling_band``): it judges the machine, not the harness.

Lindley's recursion (Lindley 1952, "The theory of queues with a single server", Proc. Cambridge
Philos. Soc. 48(2), 277-289): W[0] = 0 and W[n+1] = max(0, W[n] + S[n] - A[n+1]), with S[n] the
service time of customer n and A[n+1] the gap between arrivals n and n+1. Its solution
W[n] = C[n] - min(C[0..n]), C = cumsum(S[n-1] - A[n]) with C[0] = 0, runs without a Python loop.
"""

from __future__ import annotations

import numpy as np

# Simulated runs per band. The band's ends are the 2.5% and 97.5% quantiles of the runs'
# percentiles: with 400 runs, 10 lie beyond each end, enough that the band's coverage stays within
# about 1.5 points of 95% (tests check the coverage on fresh draws).
BAND_RUNS = 400
BAND_LEVEL = 0.95
# Runs simulated at once: bounds memory to about this many x customers x 8 bytes x a few arrays.
BAND_CHUNK = 50


def lindley_waits(arrivals_s: np.ndarray, services_s: np.ndarray | float) -> np.ndarray:
    """Waiting times (s) of a FIFO single-server queue that starts empty, by Lindley's recursion.

    ``arrivals_s`` must be sorted along the last axis; ``services_s`` is one service time for all or
    one per customer (same shape). Several independent queues can be stacked along the first axis.
    """
    arrivals = np.asarray(arrivals_s, dtype=float)
    services = np.broadcast_to(np.asarray(services_s, dtype=float), arrivals.shape)
    steps = services[..., :-1] - np.diff(arrivals, axis=-1)
    c = np.concatenate([np.zeros((*arrivals.shape[:-1], 1)), np.cumsum(steps, axis=-1)], axis=-1)
    return c - np.minimum.accumulate(c, axis=-1)


def sojourns(scheduled_s: np.ndarray, services_s: np.ndarray | float) -> np.ndarray:
    """Sojourn times (s), wait plus service, for arrivals in any order; returned in the input's order.

    The queue serves in order of scheduled arrival (FIFO), whatever order the records came in.
    """
    scheduled = np.asarray(scheduled_s, dtype=float)
    services = np.broadcast_to(np.asarray(services_s, dtype=float), scheduled.shape)
    order = np.argsort(scheduled, kind="stable")
    out = np.empty_like(scheduled)
    out[order] = lindley_waits(scheduled[order], services[order]) + services[order]
    return out


def percentiles_ms(values_s: np.ndarray, qs) -> dict[int, float]:
    values = np.asarray(values_s, dtype=float)
    if values.size == 0:
        return {q: float("nan") for q in qs}
    return {q: float(np.percentile(values, q)) * 1e3 for q in qs}


def conditioned_percentiles(scheduled_s: np.ndarray, measured: np.ndarray, service_s: float, qs) -> dict[int, float]:
    """M/D/1 on the run's own arrivals: percentiles (ms) of the measured requests' sojourn times.

    Every scheduled arrival enters the queue, warm-up included (the server saw them too, and the
    queue they left carries into the measurement); only ``measured`` ones are counted.
    """
    times = sojourns(scheduled_s, service_s)
    return percentiles_ms(times[np.asarray(measured, dtype=bool)], qs)


def trace_driven_percentiles(
    scheduled_s: np.ndarray, held_s: np.ndarray, measured: np.ndarray, qs, beside_s: np.ndarray | None = None
) -> dict[int, float]:
    """The trace-driven reference, in ms: Lindley's waits with each request's traced time on the instance
    (``held_s``), plus what the request spent in the server outside the queue (``beside_s``: its compute
    and the server's own I/O; ``held_s`` when None).

    A request without a trace (NaN: traced every Nth, or lost) is given the traced medians, so it still
    occupies the server; none traced gives NaN percentiles.
    """
    if np.isnan(np.asarray(held_s, dtype=float)).all():
        return {q: float("nan") for q in qs}
    return percentiles_ms(trace_driven_latencies(scheduled_s, held_s, beside_s)[np.asarray(measured, dtype=bool)], qs)


def trace_driven_latencies(
    scheduled_s: np.ndarray, held_s: np.ndarray, beside_s: np.ndarray | None = None
) -> np.ndarray:
    """Each request's trace-driven latency (s), in the input's order: what ``trace_driven_percentiles``
    takes the percentiles of. At least one request must be traced."""
    held = np.asarray(held_s, dtype=float)
    beside = held if beside_s is None else np.asarray(beside_s, dtype=float)
    traced = ~np.isnan(held)
    held = np.where(traced, held, np.median(held[traced]))
    beside = np.where(np.isnan(beside), np.nanmedian(beside), beside)
    return sojourns(scheduled_s, held) - held + beside


def simulated_run_percentiles(
    service_s: float,
    n_warmup: int,
    n_measured: int,
    warmup_s: float,
    duration_s: float,
    qs,
    runs: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sojourn percentiles (ms), one row per simulated run, shaped like a perseus run.

    Each run draws Poisson arrivals conditioned on the run's counts, as perseus schedules them
    (sorted uniforms: ``n_warmup`` on [-warmup, 0) and ``n_measured`` on [0, duration)), and counts
    only the measured ones (the counts fix the rate).
    """
    rows = []
    for start in range(0, runs, BAND_CHUNK):
        k = min(BAND_CHUNK, runs - start)
        warm = np.sort(rng.uniform(-warmup_s, 0.0, size=(k, n_warmup)), axis=1)
        meas = np.sort(rng.uniform(0.0, duration_s, size=(k, n_measured)), axis=1)
        waits = lindley_waits(np.concatenate([warm, meas], axis=1), service_s)[:, n_warmup:]
        rows.append(np.percentile(waits + service_s, list(qs), axis=1).T * 1e3)
    return np.concatenate(rows) if rows else np.empty((0, len(qs)))


def sampling_band(
    service_s: float,
    n_warmup: int,
    n_measured: int,
    warmup_s: float,
    duration_s: float,
    qs,
    runs: int = BAND_RUNS,
    seed: int = 0,
) -> dict[int, tuple[float, float]]:
    """The 95% band (ms) of each percentile over simulated M/D/1 runs of the run's length and counts.

    A measured percentile outside it is unlikely (5%) for a machine that is an M/D/1 server.
    """
    if n_measured == 0:
        return {q: (float("nan"), float("nan")) for q in qs}
    per_run = simulated_run_percentiles(
        service_s, n_warmup, n_measured, warmup_s, duration_s, qs, runs, np.random.default_rng(seed)
    )
    tail = (1.0 - BAND_LEVEL) / 2.0
    lo = np.quantile(per_run, tail, axis=0)
    hi = np.quantile(per_run, 1.0 - tail, axis=0)
    return {q: (float(lo[i]), float(hi[i])) for i, q in enumerate(qs)}
