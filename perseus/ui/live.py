"""Live per-tenant statistics for ``perseus ui``, from perseus's own raw records (not Locust's buckets).

Every record the load engine writes also lands here (latency, ok, done time), so the web page shows
exact percentiles computed the way the report computes them (``perseus.analysis.stats``), over the
measured (non-warm-up) requests so far. Pure: no Locust, no gevent, no I/O.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

from perseus.analysis.stats import percentiles, sla_attainment, sla_latency

# Columns of a request record (results.REQUEST_SCHEMA order).
_TENANT, _DONE, _LATENCY, _OK, _WARMUP = 0, 5, 6, 8, 10
RECENT_S = 10.0  # the "last 10 s" p99 window
WINDOW_S = 10.0  # the PERSEUS tab's charts: p50, p99 and throughput per 10 s of completions


@dataclass
class _Series:
    latency_ms: array = field(default_factory=lambda: array("d"))
    ok: array = field(default_factory=lambda: array("b"))
    done_s: array = field(default_factory=lambda: array("d"))
    warmup: int = 0


@dataclass(frozen=True)
class TenantInfo:
    name: str
    model: str
    sla_ms: float
    sla_percentile: float
    load: str  # e.g. "poisson 25/s", "closed x4"
    target_rps: float | None = None  # the mean rate asked for; None for closed loop


class LiveStats:
    """Accumulates records per tenant; ``rows(now_s)`` summarises them."""

    def __init__(self, tenants: list[TenantInfo]):
        self.tenants = tenants
        self._series = {t.name: _Series() for t in tenants}

    def add(self, row: tuple) -> None:
        series = self._series.get(row[_TENANT])
        if series is None:
            return
        if row[_WARMUP]:
            series.warmup += 1
            return
        series.latency_ms.append(row[_LATENCY])
        series.ok.append(bool(row[_OK]))
        series.done_s.append(row[_DONE])

    def rows(self, now_s: float, duration_s: float = math.inf) -> list[dict]:
        """One dict per tenant: counts, p50/p99 (ms), SLA latency, attainment and verdict so far.

        Throughput is over the measured window as the summary takes it: the measured seconds so far
        (at most ``duration_s``), stretched to the last completion.

        Numbers are plain floats rounded for display; a value that does not exist yet is None
        (JSON null), and an SLA percentile that falls on a failed request is the string "failed".
        """
        out = []
        for t in self.tenants:
            s = self._series[t.name]
            lat = np.frombuffer(s.latency_ms, dtype=np.float64) if len(s.latency_ms) else np.empty(0)
            ok = np.frombuffer(s.ok, dtype=np.int8).astype(bool) if len(s.ok) else np.empty(0, dtype=bool)
            done = np.frombuffer(s.done_s, dtype=np.float64) if len(s.done_s) else np.empty(0)
            pcts = percentiles(lat[ok], (50, 99))
            recent = ok & (done >= now_s - RECENT_S)
            sla_lat = sla_latency(lat, ok, t.sla_percentile)
            completed = int(ok.sum())
            window = max(min(now_s, duration_s), float(done[ok].max()) if completed else 0.0)
            out.append(
                {
                    "tenant": t.name,
                    "model": t.model,
                    "load": t.load,
                    "warmup": s.warmup,
                    "requests": len(lat),
                    "errors": len(lat) - completed,
                    "rps": _num(completed / window if window > 0.5 else math.nan, 1),
                    "p50": _num(pcts[50]),
                    "p99": _num(pcts[99]),
                    "p99recent": _num(percentiles(lat[recent], (99,))[99]),
                    "sla": f"p{t.sla_percentile:g} <= {t.sla_ms:g} ms",
                    "slalatency": "failed" if math.isinf(sla_lat) else _num(sla_lat),
                    "attainment": _num(100 * sla_attainment(lat, ok, t.sla_ms), 2),
                    "met": None if len(lat) == 0 else ("yes" if sla_lat <= t.sla_ms else "no"),
                }
            )
        return out

    def series(self, now_s: float, duration_s: float = math.inf) -> list[dict]:
        """Per tenant, its SLA, target rate and one point per ``WINDOW_S`` of measured completions: the
        window's end ``t`` (s), p50 and p99 (ms) of the requests completed in it, and their rate (req/s).
        The window in progress is included, over its elapsed part, so a chart has a point from the start."""
        end = max(min(now_s, duration_s), 0.0)
        out = []
        for t in self.tenants:
            s = self._series[t.name]
            done = np.frombuffer(s.done_s, dtype=np.float64) if len(s.done_s) else np.empty(0)
            lat = np.frombuffer(s.latency_ms, dtype=np.float64) if len(s.latency_ms) else np.empty(0)
            ok = np.frombuffer(s.ok, dtype=np.int8).astype(bool) if len(s.ok) else np.empty(0, dtype=bool)
            last = max(end, float(done.max()) if len(done) else 0.0)  # a drain after the end still counts
            points = []
            start = 0.0
            while start < last:
                stop = min(start + WINDOW_S, last)
                inside = ok & (done >= start) & (done < stop if stop < last else done <= stop)
                pcts = percentiles(lat[inside], (50, 99))
                span = stop - start
                points.append(
                    {
                        "t": round(stop, 2),
                        "p50": _num(pcts[50]),
                        "p99": _num(pcts[99]),
                        "rps": _num(int(inside.sum()) / span if span >= 0.5 else math.nan, 1),
                    }
                )
                start = stop
            out.append(
                {
                    "tenant": t.name,
                    "sla_ms": t.sla_ms,
                    "sla_percentile": t.sla_percentile,
                    "target_rps": t.target_rps,
                    "windows": points,
                }
            )
        return out


def _num(value: float, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def load_text(arrival: str, rate: float | None, concurrency: int | None) -> str:
    if arrival == "closed":
        return f"closed x{concurrency}"
    return f"{arrival} {rate:g}/s" if rate is not None else arrival
