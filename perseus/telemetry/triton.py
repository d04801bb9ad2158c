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


def sample_rows(metrics_url: str, t_s: float) -> list[tuple]:
    """One scrape as telemetry rows; an unreachable endpoint yields no rows (the gap is the signal)."""
    if not metrics_url:
        return []  # a remote server without a metrics URL
    try:
        text = scrape(metrics_url)
    except (OSError, ValueError):
        return []
    return [(t_s, SOURCE, metric, labels, value) for metric, labels, value in parse(text)]
