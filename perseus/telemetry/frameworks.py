"""MLServer's and BentoML's own Prometheus endpoints, as telemetry rows beside Triton's.

Each framework's request counters and duration sums are kept (source = the kind): MLServer's
``model_infer_request_*``, ``rest_server_*`` and its inference-pool and batching queue histograms,
and BentoML's ``bentoml_*``. Histogram buckets are left out (their ``_sum`` and ``_count`` stay): at
one scrape a second, the buckets of every endpoint would be most of the telemetry for no figure the
report uses. Neither framework splits a request's server time into queue and compute the way
Triton's statistics do, so the report's server-side breakdown stays n/a for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from perseus.telemetry.triton import scrape

PREFIXES = {
    "mlserver": ("model_infer_request_", "rest_server_", "parallel_request_queue", "batch_request_queue"),
    "bentoml": ("bentoml_",),
}


def parse(text: str, kind: str) -> Iterator[tuple[str, str, float]]:
    """(metric, labels-as-JSON, value) for the kind's own samples, buckets left out."""
    prefixes = PREFIXES[kind]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(prefixes) and not sample.name.endswith("_bucket"):
                yield sample.name, json.dumps(sample.labels, sort_keys=True), float(sample.value)


def sample_rows(metrics_url: str, kind: str, t_s: float) -> list[tuple] | None:
    """One scrape as telemetry rows; None when the endpoint did not answer (counted as a failed scrape)."""
    if not metrics_url or kind not in PREFIXES:
        return []
    try:
        text = scrape(metrics_url)
    except (OSError, ValueError):
        return None
    return [(t_s, kind, metric, labels, value) for metric, labels, value in parse(text, kind)]
