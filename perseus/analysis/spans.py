"""Per-request server spans: Triton's trace timestamps joined with the client's own records.

Triton's trace at TIMESTAMPS level gives, per traced request, when the server received it
(``HTTP_RECV_END``), queued it (``QUEUE_START``), started and ended its execution (``COMPUTE_START``,
``COMPUTE_INPUT_END``, ``COMPUTE_OUTPUT_START``, ``COMPUTE_END``). The client knows when it sent the
request and when the answer was in. Joined on the request id, one request's service time
(``done - sent``) splits into consecutive parts that add up to it exactly:

    net_in_ms         sent -> HTTP_RECV_END (GRPC_RECV_END): the request on the wire and read in,
                      including any wait for a busy front end to start reading it
    handling_ms       HTTP_RECV_END -> QUEUE_START: Triton parsing the request and routing it
    queue_ms          QUEUE_START -> COMPUTE_START: waiting for a model instance
    compute_input_ms  COMPUTE_START -> COMPUTE_INPUT_END
    compute_infer_ms  COMPUTE_INPUT_END -> COMPUTE_OUTPUT_START
    compute_output_ms COMPUTE_OUTPUT_START -> COMPUTE_END
    net_out_ms        COMPUTE_END -> done: the response built, sent and read by the client

``net_out_ms`` can be a little below zero: Triton may send the response (``HTTP_SEND_END``) before
the backend stamps ``COMPUTE_END`` (seen in the committed sample, tests/data/traces), and a fast client
reads it before that stamp.

The server's timestamps are ``std::chrono::steady_clock`` nanoseconds, which on Linux is
CLOCK_MONOTONIC, the clock of Python's ``time.perf_counter`` that the load engine stamps with; on one
host the two timelines are therefore the same, and ``t0_s`` (the engine's ``perf_counter`` at the
measurement start) puts the server's stamps on the records' time axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The trace's timestamps kept in spans.parquet, as <name lowercased>_s (HTTP and gRPC receive/send
# merged under recv_/send_, since a request arrives by one of them).
STAMPS = {
    "HTTP_RECV_START": "recv_start_s",
    "GRPC_RECV_START": "recv_start_s",
    "HTTP_RECV_END": "recv_end_s",
    "GRPC_RECV_END": "recv_end_s",
    "REQUEST_START": "request_start_s",
    "QUEUE_START": "queue_start_s",
    "COMPUTE_START": "compute_start_s",
    "COMPUTE_INPUT_END": "compute_input_end_s",
    "COMPUTE_OUTPUT_START": "compute_output_start_s",
    "COMPUTE_END": "compute_end_s",
    "REQUEST_END": "request_end_s",
    "HTTP_SEND_START": "send_start_s",
    "GRPC_SEND_START": "send_start_s",
    "HTTP_SEND_END": "send_end_s",
    "GRPC_SEND_END": "send_end_s",
}
STAMP_COLUMNS = tuple(dict.fromkeys(STAMPS.values()))
# (component, from, to), consecutive: they add up to done_s - sent_s.
COMPONENTS = (
    ("net_in_ms", "sent_s", "recv_end_s"),
    ("handling_ms", "recv_end_s", "queue_start_s"),
    ("queue_ms", "queue_start_s", "compute_start_s"),
    ("compute_input_ms", "compute_start_s", "compute_input_end_s"),
    ("compute_infer_ms", "compute_input_end_s", "compute_output_start_s"),
    ("compute_output_ms", "compute_output_start_s", "compute_end_s"),
    ("net_out_ms", "compute_end_s", "done_s"),
)
COMPONENT_NAMES = tuple(name for name, _, _ in COMPONENTS)
REQUEST_COLUMNS = (
    "tenant",
    "deployment",
    "scheduled_s",
    "sent_s",
    "done_s",
    "latency_ms",
    "service_ms",
    "ok",
    "warmup",
)
SPAN_COLUMNS = (
    "request_id",
    *REQUEST_COLUMNS,
    "trace_id",
    "server_model",
    *STAMP_COLUMNS,
    *COMPONENT_NAMES,
    "batch_size",
)


def request_id(tenant: str, scheduled_s: float) -> str:
    """The id a request carries to the server: its tenant and its scheduled time, both in its record.

    A tenant's scheduled times are distinct (drawn from a continuous distribution, or read from the
    clock for closed loop), and ``repr`` of a float round-trips exactly, so the id can be rebuilt
    from requests.parquet without a column of its own.
    """
    return f"{tenant}@{float(scheduled_s)!r}"


def join(requests: pd.DataFrame, server: pd.DataFrame, t0_s: float) -> pd.DataFrame:
    """One row per traced request: its client record, its server stamps (seconds since the
    measurement start), the components of its service time, and its execution's batch size.

    ``server``: one row per trace (``trace_id``, ``model``, ``request_id``, and each stamp name in
    ns, as ``perseus.server.tracing.read_traces`` gives). Requests missing from the trace (traced
    every Nth, or none) are simply absent; traces matching no request are dropped.

    ``batch_size`` counts the traced requests that share one execution (the same model, compute
    start and compute end): exact at trace_rate 1, a lower bound when only every Nth is traced.
    """
    if requests.empty or server.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SPAN_COLUMNS})
    client = requests.loc[:, list(REQUEST_COLUMNS)].copy()
    client["tenant"] = client["tenant"].astype(str)
    client["request_id"] = [request_id(t, s) for t, s in zip(client["tenant"], client["scheduled_s"], strict=True)]
    stamps = pd.DataFrame({"request_id": server["request_id"], "trace_id": server["trace_id"]})
    stamps["server_model"] = server["model"]
    seconds = stamp_seconds(server, t0_s)
    for column in STAMP_COLUMNS:  # by position: an index repeated in ``server`` must not multiply rows
        stamps[column] = seconds[column].to_numpy()
    # An id seen twice on either side cannot be matched with certainty: leave it out, not guess.
    client = client.drop_duplicates("request_id", keep=False)
    stamps = stamps.drop_duplicates("request_id", keep=False)
    spans = client.merge(stamps, on="request_id", how="inner")
    for name, start, end in COMPONENTS:
        spans[name] = (spans[end] - spans[start]) * 1e3
    execution = [spans["server_model"], spans["compute_start_s"], spans["compute_end_s"]]
    spans["batch_size"] = spans.groupby(execution, dropna=False)["request_id"].transform("size").astype("int64")
    return spans.loc[:, list(SPAN_COLUMNS)].sort_values("sent_s", kind="stable").reset_index(drop=True)


def stamp_seconds(server: pd.DataFrame, t0_s: float = 0.0) -> pd.DataFrame:
    """Each trace's stamps as seconds since ``t0_s`` on the server's clock, one column per
    ``STAMP_COLUMNS`` (HTTP's and gRPC's merged; NaN where a trace has no such stamp), on ``server``'s index.
    """
    stamps = pd.DataFrame(index=server.index)
    for name, column in STAMPS.items():
        if name in server:
            values = server[name].astype(float) / 1e9 - t0_s
            stamps[column] = stamps[column].fillna(values) if column in stamps else values
    for column in STAMP_COLUMNS:
        if column not in stamps:
            stamps[column] = np.nan
    return stamps.loc[:, list(STAMP_COLUMNS)]


def _dtype(column: str) -> str:
    if column in ("request_id", "tenant", "deployment", "server_model"):
        return "object"
    if column in ("ok", "warmup"):
        return "bool"
    return "int64" if column in ("trace_id", "batch_size") else "float64"
