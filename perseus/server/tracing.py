"""Triton's trace API for a local server: the flags that turn it on, and the trace files read back.

``--trace-config`` (Triton >= 2.33; docs/user_guide/trace.md in triton-inference-server/server):
level TIMESTAMPS, ``rate`` N traces every Nth request the server receives (all models together),
``count=-1`` never stops, and ``log-frequency`` writes a file of that many traces as they fill
(``trace.json.0``, ``.1``, ...; the rest goes to ``trace.json.<k>`` or ``trace.json`` at exit), so a
server killed before it exits loses at most that many traces.

A trace file is a JSON array of objects, several per trace, each keyed by the trace's ``id``: one
with ``model_name``, ``model_version`` and the request's ``request_id`` (the ``id`` in its JSON
header), and one per timestamp, ``{"timestamps": [{"name": ..., "ns": ...}]}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from perseus.plan import Deployment
from perseus.scenario import Scenario

TRACE_DIR = "trace"
TRACE_FILE = "trace.json"
# Traces per file: about 1.2 kB each, so ~120 kB files, and fewer than this many lost when the server
# is killed before it writes its last traces at exit.
LOG_FREQUENCY = 100

# Triton 2.51 (the nvidia-pytriton wheel's) unlocks a trace's mutex after freeing the trace, in
# TraceManager::TraceRelease: a use-after-free that crashes a traced server under load, fixed upstream
# in April 2025 (triton-inference-server/server#8144, src/tracer.cc), after the newest wheel was built.
# The crash comes when another thread reuses the freed memory before the unlock. A large per-thread
# malloc cache (glibc's tcache; 7 chunks per size by default) keeps a freed trace in the freeing
# thread's own cache, out of other threads' reach. Measured here (benchmarks/trace_crash.py), closed
# loop at concurrency 8 on the no-work model with every request traced: by default the server crashed
# within 2.4 s and 10.5k requests in 3 runs of 3; with this setting after 697k and 806k requests, and
# not within 150 s (1.34M) in the third (docs/benchmarks.md, "Tracing and Triton 2.51's crash"). It
# narrows the window; it does not close it, so a traced server's crash is named as this bug (CRASH_NOTE).
SERVER_ENV = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=65535"}
CRASH_NOTE = (
    "tracing was on, and Triton 2.51's tracer can crash a server under load "
    "(a use-after-free fixed upstream: triton-inference-server/server#8144); run again, or set trace_rate = 0"
)


def traced(scenario: Scenario, deployment: Deployment) -> bool:
    """Whether this deployment's server traces: tracing is on and there is a Triton server to trace."""
    return scenario.run.trace_rate > 0 and deployment.strategy != "embedded"


def server_args(folder: Path, rate: int) -> tuple[str, ...]:
    """tritonserver flags that write TIMESTAMPS traces of every ``rate``-th request into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return (
        f"--trace-config=triton,file={folder / TRACE_FILE}",
        f"--trace-config=triton,log-frequency={LOG_FREQUENCY}",
        f"--trace-config=rate={rate}",
        "--trace-config=level=TIMESTAMPS",
        "--trace-config=count=-1",
    )


def read_traces(folder: Path, *, untagged: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Every trace in ``folder``'s trace files: one row per traced request (``trace_id``, ``model``,
    ``request_id``, ``parent_id``, then one column per timestamp name in ns), and the names of files
    that could not be read (a file cut short when the server was killed).

    Traces without a request id are dropped: only a request the client sent with its id can be joined.
    ``untagged`` keeps those a client sent without one (another tool's: benchmarks/vs_loadgen.py
    matches them by order); an ensemble's steps, which carry a ``parent_id``, are dropped either way.
    """
    traces: dict[int, dict] = {}
    unreadable = []
    for path in sorted(Path(folder).glob(f"{TRACE_FILE}*")):
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            unreadable.append(path.name)
            continue
        for entry in entries if isinstance(entries, list) else ():
            _merge(traces, entry)

    def sent_by_a_client(t: dict) -> bool:
        return bool(t.get("request_id") or (untagged and "model" in t)) and not t.get("parent_id")

    rows = [t for t in traces.values() if sent_by_a_client(t)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame({"trace_id": pd.Series(dtype="int64"), "model": [], "request_id": []})
    return frame, unreadable


def _merge(traces: dict[int, dict], entry: dict) -> None:
    if not isinstance(entry, dict) or "id" not in entry:
        return
    trace = traces.setdefault(int(entry["id"]), {"trace_id": int(entry["id"])})
    if "model_name" in entry:
        trace["model"] = str(entry["model_name"])
        trace["request_id"] = str(entry.get("request_id") or "")
        trace["parent_id"] = int(entry.get("parent_id") or 0)
    for stamp in entry.get("timestamps") or ():
        # The first stamp of a name wins: a request has one of each.
        trace.setdefault(str(stamp["name"]), int(stamp["ns"]))
