"""What perseus's Python-backend model reports in the server log: the execution providers it runs on.

The model (perseus/models/backend_model.py) runs inside Triton's Python-backend stub, which cannot
import perseus, so each model instance prints one marked JSON line to the server's output, which
the launcher writes to ``<deployment>/server.log``. Reading them back tells which onnxruntime
providers each tenant really ran on (a ``KIND_GPU`` instance refuses to start on the CPU alone).
Models served by another backend (docker's native onnxruntime, a remote server) print nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

# Must equal PROVIDERS_MARK in perseus/models/backend_model.py (tests/unit/test_backend_model.py checks it).
PROVIDERS_MARK = "perseus-backend providers "


def providers(log_path: Path) -> dict[str, list[str]]:
    """Model name -> the providers its session uses, from a server log (the last line per model wins;
    every instance of a model prints the same). Lines that are not well formed are skipped."""
    out: dict[str, list[str]] = {}
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        at = line.find(PROVIDERS_MARK)
        if at < 0:
            continue
        try:
            entry = json.loads(line[at + len(PROVIDERS_MARK) :])
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        name, used = entry.get("model"), entry.get("providers")
        if isinstance(name, str) and isinstance(used, list) and all(isinstance(p, str) for p in used):
            out[name] = used
    return out


def tenant_providers(log_path: Path, served: dict[str, str]) -> dict[str, list[str]]:
    """Tenant -> providers, for the tenants whose served model reported them."""
    by_model = providers(log_path)
    return {tenant: by_model[model] for tenant, model in served.items() if model in by_model}
