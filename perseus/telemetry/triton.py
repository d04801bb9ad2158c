"""Triton's Prometheus ``/metrics``, parsed with prometheus_client's own text parser."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

SOURCE = "triton"
# Triton's own families: per-model inference counters and durations, CPU/memory, and GPU (via DCGM).
PREFIX = "nv_"


def parse(text: str) -> Iterator[tuple[str, str, float]]:
    """(metric, labels-as-JSON, value) for every nv_* sample in a Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(PREFIX):
                # The parser names counter samples <family>_total; Triton's documented names have no
                # suffix (nv_inference_count), so keep those.
                name = (
                    family.name if family.type == "counter" and sample.name == f"{family.name}_total" else sample.name
                )
                yield name, json.dumps(sample.labels, sort_keys=True), float(sample.value)


def scrape(metrics_url: str, timeout_s: float = 2.0) -> str:
    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as resp:  # noqa: S310 - loopback URL we built
        return resp.read().decode("utf-8", errors="replace")


def sample_rows(metrics_url: str, t_s: float) -> list[tuple] | None:
    """One scrape as telemetry rows; None when the endpoint did not answer or its text did not parse
    (the caller counts it: perseus/telemetry/scrapes.py)."""
    if not metrics_url:
        return []  # a remote server without a metrics URL: nothing to scrape, nothing failed
    try:
        text = scrape(metrics_url)
        parsed = list(parse(text))
    except (OSError, ValueError):
        return None
    return [(t_s, SOURCE, metric, labels, value) for metric, labels, value in parsed]


# Execution-level counters from Triton's statistics API (GET /v2/models/stats), in the same long rows.
# /metrics credits every request of a dynamically batched execution with the whole execution's compute
# time, so summing per-request durations counts a batch once per request. The statistics API's
# batch_stats count each execution once, at its batch size: the server's real busy time.
STATS_COMPUTE_US = "stats_execution_compute_us"  # sum over executions of compute input + infer + output
STATS_EXECUTIONS = "stats_execution_count"
STATS_PHASES = ("compute_input", "compute_infer", "compute_output")


def stats_rows_from(reply: object, t_s: float) -> list[tuple]:
    """Rows from one statistics reply, validated: anything that is not the documented shape is skipped."""
    models = reply.get("model_stats") if isinstance(reply, dict) else None
    rows = []
    for model in models if isinstance(models, list) else []:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            continue
        compute_ns, executions = 0.0, 0.0
        for batch in model.get("batch_stats") or []:
            if not isinstance(batch, dict):
                continue
            for phase in STATS_PHASES:
                ns = (batch.get(phase) or {}).get("ns", 0)
                compute_ns += float(ns) if isinstance(ns, int | float) else 0.0
            count = (batch.get("compute_infer") or {}).get("count", 0)
            executions += float(count) if isinstance(count, int | float) else 0.0
        labels = json.dumps({"model": model["name"], "version": str(model.get("version", ""))}, sort_keys=True)
        rows.append((t_s, SOURCE, STATS_COMPUTE_US, labels, compute_ns / 1e3))
        rows.append((t_s, SOURCE, STATS_EXECUTIONS, labels, executions))
    return rows


def stats_rows(url: str, t_s: float, timeout_s: float = 2.0) -> list[tuple] | None:
    """One read of the statistics API as telemetry rows: none without a server URL, None when it fails."""
    if not url:
        return []  # embedded: no server
    try:
        with urllib.request.urlopen(f"{url}/v2/models/stats", timeout=timeout_s) as resp:  # noqa: S310 - server URL
            reply = json.loads(resp.read().decode("utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    return stats_rows_from(reply, t_s)
