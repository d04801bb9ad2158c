"""Tracing: Triton trace files read back (a sample recorded from the bundled tritonserver), ids, and the join."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import spans
from perseus.load.inputs import HEADER_LENGTH, Request
from perseus.server import tracing

SAMPLE = Path(__file__).parents[1] / "data" / "traces" / "sample"  # recorded by ../data/traces/record_sample.py
T0 = 4560.0  # a measurement start on the sample's clock (seconds of CLOCK_MONOTONIC)


def test_sample_traces_are_read_one_row_per_request_with_every_stamp():
    server, unreadable = tracing.read_traces(SAMPLE)
    assert unreadable == []
    assert sorted(server["request_id"]) == sorted(
        ["vision@0.0", "vision@0.1", "vision@0.2", *(f"series@{1.0 + 0.001 * i!r}" for i in range(6))]
    )
    assert set(server["model"]) == {"vision", "series"}
    order = ["HTTP_RECV_START", "HTTP_RECV_END", "QUEUE_START", "COMPUTE_START", "COMPUTE_INPUT_END"]
    order += ["COMPUTE_OUTPUT_START", "COMPUTE_END"]
    stamps = server[order].to_numpy()
    assert (np.diff(stamps, axis=1) >= 0).all()  # each request's stamps in the server's own order
    # The response can leave before the backend stamps COMPUTE_END (vision@0.1 here), never before its output.
    assert (server["HTTP_SEND_END"] > server["COMPUTE_OUTPUT_START"]).all()


def test_a_file_cut_short_is_named_and_the_others_still_read(tmp_path):
    shutil.copy(SAMPLE / "trace.json.0", tmp_path / "trace.json.0")
    text = (SAMPLE / "trace.json.0").read_text()
    (tmp_path / "trace.json.1").write_text(text[: len(text) // 2])
    server, unreadable = tracing.read_traces(tmp_path)
    assert unreadable == ["trace.json.1"]
    assert len(server) == 9


def test_no_trace_files_give_an_empty_table(tmp_path):
    server, unreadable = tracing.read_traces(tmp_path)
    assert server.empty and unreadable == []
    assert spans.join(client_records(), server, T0).columns.tolist() == list(spans.SPAN_COLUMNS)


def test_server_args_turn_on_timestamps_at_the_rate(tmp_path):
    args = tracing.server_args(tmp_path / "t", 7)
    assert "--trace-config=rate=7" in args and "--trace-config=level=TIMESTAMPS" in args
    assert f"--trace-config=triton,file={tmp_path / 't' / 'trace.json'}" in args
    assert (tmp_path / "t").is_dir()


def client_records() -> pd.DataFrame:
    """The client's side of the sampled requests: sent 0.3 ms before the server began reading, done
    0.2 ms after the server's last send stamp (on the sample's clock, minus T0)."""
    server, _ = tracing.read_traces(SAMPLE)
    rows = []
    for r in server.itertuples():
        tenant, scheduled = r.request_id.split("@")
        sent = r.HTTP_RECV_START / 1e9 - T0 - 0.0003
        done = r.HTTP_SEND_END / 1e9 - T0 + 0.0002
        latency, service = (done - float(scheduled)) * 1e3, (done - sent) * 1e3
        rows.append((tenant, "shared", float(scheduled), sent, done, latency, service))
    frame = pd.DataFrame(
        rows, columns=["tenant", "deployment", "scheduled_s", "sent_s", "done_s", "latency_ms", "service_ms"]
    )
    return frame.assign(ok=True, warmup=False, error=None)


def test_join_splits_each_service_time_into_parts_that_add_up():
    server, _ = tracing.read_traces(SAMPLE)
    joined = spans.join(client_records(), server, T0)
    assert len(joined) == 9
    parts = joined[list(spans.COMPONENT_NAMES)].sum(axis=1)
    np.testing.assert_allclose(parts, joined["service_ms"], atol=1e-6)
    assert joined["net_in_ms"].min() > 0.3  # sent 0.3 ms before HTTP_RECV_START, plus the read
    assert (joined["compute_infer_ms"] > 0).all()
    # Server stamps are on the client's time axis: received after sent, compute before done.
    assert (joined["recv_end_s"] > joined["sent_s"]).all() and (joined["compute_end_s"] < joined["done_s"]).all()


def test_batch_size_counts_the_requests_of_one_execution():
    server, _ = tracing.read_traces(SAMPLE)
    joined = spans.join(client_records(), server, T0).set_index("request_id")
    assert joined.loc[["vision@0.0", "vision@0.1", "vision@0.2"], "batch_size"].tolist() == [1, 1, 1]
    # The six series requests went together: the server ran the first alone, then the other five as one batch.
    series = joined[joined["tenant"] == "series"]["batch_size"].sort_values().tolist()
    assert series == [1, 5, 5, 5, 5, 5]


def test_requests_missing_from_the_trace_are_left_out_and_unknown_traces_dropped():
    # trace_rate N: the server traced only some requests; and one trace has no client record.
    server, _ = tracing.read_traces(SAMPLE)
    some = server[server["request_id"].isin(["vision@0.1", "series@1.0", "series@1.003"])].copy()
    stray = some.iloc[[0]].assign(request_id="vision@99.0", trace_id=99)
    joined = spans.join(client_records(), pd.concat([some, stray]), T0)
    assert sorted(joined["request_id"]) == ["series@1.0", "series@1.003", "vision@0.1"]
    # Seen at a rate, series@1.003's batch of five shows only its one traced member.
    assert joined.set_index("request_id").loc["series@1.003", "batch_size"] == 1


def test_an_id_seen_twice_is_left_out_rather_than_guessed():
    server, _ = tracing.read_traces(SAMPLE)
    twice = pd.concat([server, server[server["request_id"] == "vision@0.2"].assign(trace_id=42)])
    joined = spans.join(client_records(), twice, T0)
    assert "vision@0.2" not in set(joined["request_id"]) and len(joined) == 8


def test_request_id_is_rebuilt_exactly_from_the_recorded_float():
    scheduled = np.float64(np.random.default_rng(1).uniform(-10, 60))
    assert spans.request_id("vision", scheduled) == spans.request_id("vision", float(scheduled))
    assert float(spans.request_id("vision", scheduled).split("@")[1]) == scheduled


@pytest.mark.parametrize("binary", [True, False])
def test_tagged_body_carries_the_id_and_keeps_the_tensors(binary):
    header = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}).encode()
    tail = b"\x00\x01\x02\x03" if binary else b""
    headers = {"Content-Type": "application/octet-stream"}
    if binary:
        headers[HEADER_LENGTH] = str(len(header))
    body, tagged_headers = Request("/v2/models/m/infer", header + tail, headers, 1).tagged("vision@1.5")
    length = int(tagged_headers[HEADER_LENGTH]) if binary else len(body)
    assert json.loads(body[:length])["id"] == "vision@1.5"
    assert json.loads(body[:length])["inputs"] == json.loads(header)["inputs"]
    assert body[length:] == tail
    assert headers.get(HEADER_LENGTH) == (str(len(header)) if binary else None)  # the prebuilt request is unchanged


def test_traces_sent_without_an_id_are_kept_only_when_asked(tmp_path):
    """Another tool's requests carry no id (benchmarks/vs_loadgen.py reads LoadGen's by order); an
    ensemble step, with a parent, is never a request of its own."""
    entries = [
        {"id": 1, "model_name": "m", "model_version": 1, "request_id": "t@0.5"},
        {"id": 1, "timestamps": [{"name": "QUEUE_START", "ns": 10}]},
        {"id": 2, "model_name": "m", "model_version": 1},
        {"id": 2, "timestamps": [{"name": "QUEUE_START", "ns": 20}]},
        {"id": 3, "model_name": "step", "model_version": 1, "parent_id": 2},
        {"id": 3, "timestamps": [{"name": "QUEUE_START", "ns": 21}]},
    ]
    (tmp_path / "trace.json").write_text(json.dumps(entries))
    tagged, _ = tracing.read_traces(tmp_path)
    assert tagged["trace_id"].tolist() == [1]
    every, _ = tracing.read_traces(tmp_path, untagged=True)
    assert sorted(every["trace_id"].tolist()) == [1, 2]
    assert every.set_index("trace_id").loc[2, "QUEUE_START"] == 20
