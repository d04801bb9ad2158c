"""What perseus's Python-backend model reports in the server log: the execution providers it runs on,
and each batched execution that failed and was rerun one request at a time.

The model (perseus/models/backend_model.py) runs inside Triton's Python-backend stub, which cannot
import perseus, so each model instance prints one marked JSON line to the server's output, which
the launcher writes to ``<deployment>/server.log``. Reading them back tells which onnxruntime
providers each tenant really ran on (a ``KIND_GPU`` instance refuses to start on the CPU alone).
Models served by another backend (docker's native onnxruntime, a remote server) print nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

# Must equal the marks in perseus/models/backend_model.py (tests/unit/test_gpu_providers.py and
# tests/integration/test_batch_fallback.py check them).
PROVIDERS_MARK = "perseus-backend providers "
FALLBACK_MARK = "perseus-backend batch-fallback "


def _entries(log_path: Path, mark: str):
    """The JSON objects of the log's lines that carry ``mark``; lines that are not well formed are skipped."""
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        at = line.find(mark)
        if at < 0:
            continue
        try:
            entry = json.loads(line[at + len(mark) :])
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("model"), str):
            yield entry


def providers(log_path: Path) -> dict[str, list[str]]:
    """Model name -> the providers its session uses, from a server log (the last line per model wins;
    every instance of a model prints the same). Lines that are not well formed are skipped."""
    out: dict[str, list[str]] = {}
    for entry in _entries(log_path, PROVIDERS_MARK):
        used = entry.get("providers")
        if isinstance(used, list) and all(isinstance(p, str) for p in used):
            out[entry["model"]] = used
    return out


def fallbacks(log_path: Path) -> dict[str, int]:
    """Model name -> batched executions that failed and were rerun request by request (one line each)."""
    out: dict[str, int] = {}
    for entry in _entries(log_path, FALLBACK_MARK):
        out[entry["model"]] = out.get(entry["model"], 0) + 1
    return out


def tenant_providers(log_path: Path, served: dict[str, str]) -> dict[str, list[str]]:
    """Tenant -> providers, for the tenants whose served model reported them."""
    by_model = providers(log_path)
    return {tenant: by_model[model] for tenant, model in served.items() if model in by_model}


def tenant_fallbacks(log_path: Path, served: dict[str, str]) -> dict[str, int]:
    """Tenant -> batch fallbacks, for the tenants that had any."""
    by_model = fallbacks(log_path)
    return {tenant: by_model[model] for tenant, model in served.items() if by_model.get(model)}
