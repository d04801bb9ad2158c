"""Synthetic results folders in the contract's format (docs/results.md), for benchmarks and tests.

    from benchmarks.synth import synthesize
    synthesize(Path("/tmp/scale-1m"), 1_000_000)

Writes ``manifest.json`` (the structure ``perseus run`` writes: scenario requested + effective with 4
tenants, deployments ``shared`` and ``solo-vision``, pricing, host, versions) and one
``requests.parquet`` per deployment, in row groups of ``chunk`` rows, so 10M records never exist as
Python objects. Latencies are log-normal per tenant plus a small scheduled-to-sent lag, about 0.2% of
requests fail, and ``warmup_s`` seconds of warm-up rows precede the measured window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perseus import results


@dataclass(frozen=True)
class SynthTenant:
    name: str
    model: str
    sla_ms: float
    sla_percentile: float
    share: float  # fraction of the deployment's requests
    median_ms: float  # log-normal service time
    sigma: float


TENANTS = (
    SynthTenant("vision", "resnet", 100.0, 99.0, 0.35, 8.0, 0.45),
    SynthTenant("text", "bert", 100.0, 99.0, 0.30, 7.0, 0.40),
    SynthTenant("series", "lstm", 50.0, 95.0, 0.20, 9.0, 0.30),
    SynthTenant("audio", "wav2vec", 200.0, 99.0, 0.15, 20.0, 0.50),
)
# Deployment -> (its tenants, its share of all records)
DEPLOYMENTS = {"shared": ([t.name for t in TENANTS], 0.75), "solo-vision": (["vision"], 0.25)}
ERROR_RATE = 0.002
ERRORS = ("HTTP 500: inference request failed", "ReadTimeout: timed out", "ConnectionResetError: reset by peer")
CHUNK = 1_000_000


def _tenant_doc(t: SynthTenant, rate: float, effective: bool) -> dict:
    load = {"arrival": "poisson", "rate": rate}
    server = {"instances": 1, "dynamic_batching": True, "max_queue_delay_us": 2000}
    if effective:
        load["concurrency"] = None
        server["max_batch_size"] = None
    return {
        "name": t.name,
        "model": t.model,
        "sla_ms": t.sla_ms,
        "sla_percentile": t.sla_percentile,
        "batch": 1,
        "load": load,
        "server": server,
    }


def manifest(n: int, duration_s: float, warmup_s: float, counts: dict[str, int]) -> dict:
    """A manifest shaped like the one ``perseus run`` writes (see /tmp/mixed1/manifest.json)."""
    shared_n = counts["shared"]
    # Offered rate per tenant: its measured share of the shared deployment over the window.
    rates = {t.name: round(shared_n * t.share / (duration_s + warmup_s), 3) for t in TENANTS}
    pricing = {"provider": "aws", "instance": "g4dn.xlarge", "region": "us-east-1", "market": "on-demand"}
    server = {"launcher": "local", "model_repository": "../model_repository", "device": "auto"}
    base = {"name": "scale", "description": f"synthetic: {n:,} records, 4 tenants, shared + solo-vision"}
    requested = {
        **base,
        "server": server,
        "run": {"duration_s": duration_s, "warmup_s": warmup_s, "seed": 1, "baselines": True},
        "pricing": pricing,
        "tenants": [_tenant_doc(t, rates[t.name], False) for t in TENANTS],
    }
    effective = {
        **base,
        "server": {**server, "url": None, "startup_timeout_s": 120.0},
        "run": {
            "duration_s": float(duration_s),
            "warmup_s": float(warmup_s),
            "seed": 1,
            "baselines": True,
            "request_timeout_s": 30.0,
        },
        "pricing": pricing,
        "tenants": [_tenant_doc(t, rates[t.name], True) for t in TENANTS],
    }
    return {
        "perseus": "0.1.0",
        "command": f"benchmarks/synth.py ({n} records)",
        "scenario": {"file": "scenarios/scale.toml", "requested": requested, "effective": effective},
        "seed": 1,
        "versions": {"perseus": "0.1.0", "pyarrow": pa.__version__, "numpy": np.__version__},
        "host": {"hostname": "synthetic", "platform": "synthetic", "cpu": "synthetic", "cpu_cores": 2},
        "gpus": [],
        "gpu_note": "synthetic records: nothing was measured",
        "price": None,
        "started": "2026-01-01T00:00:00.000000Z",
        "ended": "2026-01-01T00:10:00.000000Z",
        "status": "completed",
        "deployments": {
            name: {
                "tenants": tenants,
                "status": "completed",
                "duration_s": float(duration_s),
                "started": "2026-01-01T00:00:00.000000Z",
                "ended": "2026-01-01T00:10:00.000000Z",
                "requests": counts[name],
            }
            for name, (tenants, _) in DEPLOYMENTS.items()
        },
    }


def _chunk(
    rng: np.random.Generator, deployment: str, tenants: list[str], n: int, t_lo: float, t_hi: float
) -> pa.RecordBatch:
    """``n`` records scheduled uniformly in [t_lo, t_hi), in completion order."""
    by_name = {t.name: t for t in TENANTS}
    specs = [by_name[t] for t in tenants]
    shares = np.array([s.share for s in specs])
    idx = rng.choice(len(specs), size=n, p=shares / shares.sum())
    scheduled = np.sort(rng.uniform(t_lo, t_hi, n))
    median = np.array([s.median_ms for s in specs])[idx]
    sigma = np.array([s.sigma for s in specs])[idx]
    service_ms = median * np.exp(sigma * rng.standard_normal(n))
    lag_ms = rng.exponential(0.02, n)  # scheduled-to-sent: microseconds, a rare stall
    lag_ms[rng.random(n) < 1e-4] += rng.exponential(20.0)
    ok = rng.random(n) >= ERROR_RATE
    service_ms[~ok] = np.where(rng.random(int((~ok).sum())) < 0.5, 30_000.0, service_ms[~ok])
    sent = scheduled + lag_ms / 1e3
    done = sent + service_ms / 1e3
    order = np.argsort(done, kind="stable")
    idx, scheduled, sent, done, ok = idx[order], scheduled[order], sent[order], done[order], ok[order]
    names = pa.array([s.name for s in specs], pa.string())
    models = pa.array([s.model for s in specs], pa.string())
    err_codes = rng.integers(0, len(ERRORS), n)
    error = pa.array(np.where(ok, None, np.array(ERRORS, dtype=object)[err_codes]), pa.string())
    columns = [
        names.take(pa.array(idx)),
        models.take(pa.array(idx)),
        pa.array(np.full(n, deployment, dtype=object), pa.string()),
        pa.array(scheduled),
        pa.array(sent),
        pa.array(done),
        pa.array((done - scheduled) * 1e3),
        pa.array((done - sent) * 1e3),
        pa.array(ok),
        error,
        pa.array(scheduled < 0),
    ]
    return pa.record_batch(columns, schema=results.REQUEST_SCHEMA)


def synthesize(
    run_dir: Path,
    n: int,
    *,
    duration_s: float = 600.0,
    warmup_s: float = 10.0,
    seed: int = 1,
    chunk: int = CHUNK,
) -> Path:
    """Write a results folder with ``n`` request records (warm-up included) and its manifest."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(DEPLOYMENTS)
    counts = {name: round(n * DEPLOYMENTS[name][1]) for name in names}
    counts[names[0]] += n - sum(counts.values())
    span = duration_s + warmup_s
    for name in names:
        tenants = DEPLOYMENTS[name][0]
        folder = run_dir / name
        folder.mkdir(exist_ok=True)
        total = counts[name]
        with pq.ParquetWriter(folder / results.REQUESTS, results.REQUEST_SCHEMA, compression="zstd") as writer:
            start = 0
            while start < total:
                size = min(chunk, total - start)
                t_lo = -warmup_s + span * start / total
                t_hi = -warmup_s + span * (start + size) / total
                writer.write_batch(_chunk(rng, name, tenants, size, t_lo, t_hi), row_group_size=chunk)
                start += size
    results.write_json_atomic(run_dir / results.MANIFEST, manifest(n, duration_s, warmup_s, counts))
    return run_dir
