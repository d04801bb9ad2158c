"""Per-request records: Arrow stream while running, Parquet at the end, and crash recovery."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from perseus import results
from perseus.records import STREAM_SUFFIX, StreamWriter, read_stream, recover

SCHEMA = results.REQUEST_SCHEMA


def row(i: int, ok: bool = True, warmup: bool = False) -> tuple:
    t = i * 0.01 - (1 if warmup else 0)
    return ("vision", "resnet_tiny", "shared", t, t + 0.001, t + 0.005, 5.0, 4.0, ok, None if ok else "boom", warmup)


def write_batches(path: Path, sizes: list[int]) -> StreamWriter:
    w = StreamWriter(path, SCHEMA)
    i = 0
    for size in sizes:
        for _ in range(size):
            w.add(row(i, ok=i % 7 != 0, warmup=i < 3))
            i += 1
        w.flush()
    return w


def test_round_trip_to_parquet(tmp_path: Path):
    path = tmp_path / results.REQUESTS
    w = StreamWriter(path, SCHEMA)
    rows = [row(i, ok=i != 2, warmup=i == 0) for i in range(5)]
    for r in rows[:3]:
        w.add(r)
    w.flush()
    for r in rows[3:]:
        w.add(r)
    assert w.count == 5
    assert w.written == 3
    assert w.close() == path
    assert not w.stream_path.exists()
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA)
    assert [tuple(d.values()) for d in table.to_pylist()] == rows
    assert table.column("error").to_pylist() == [None, None, "boom", None, None]


def test_empty_recorder_writes_an_empty_table(tmp_path: Path):
    path = tmp_path / results.REQUESTS
    StreamWriter(path, SCHEMA).close()
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA)


def test_truncated_stream_keeps_complete_batches(tmp_path: Path):
    w = write_batches(tmp_path / results.REQUESTS, [10, 20, 30])
    data = w.stream_path.read_bytes()
    full = read_stream(w.stream_path, SCHEMA)
    assert full.num_rows == 60  # a stream not yet closed (no end marker) reads fine
    for chop in (1, 7, 100):
        torn = tmp_path / f"torn{chop}{STREAM_SUFFIX}"
        torn.write_bytes(data[:-chop])
        table = read_stream(torn, SCHEMA)
        assert table.num_rows == 30  # the first two batches, whole
        assert table.equals(full.slice(0, 30))


def test_stream_torn_in_its_header_gives_an_empty_table(tmp_path: Path):
    w = write_batches(tmp_path / results.REQUESTS, [5])
    torn = tmp_path / f"header{STREAM_SUFFIX}"
    torn.write_bytes(w.stream_path.read_bytes()[:5])
    table = read_stream(torn, SCHEMA)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA)
    assert read_stream(tmp_path / f"absent{STREAM_SUFFIX}", SCHEMA).num_rows == 0


def test_recover_finalizes_a_leftover_stream(tmp_path: Path):
    w = write_batches(tmp_path / results.REQUESTS, [4, 6])
    w.add(row(99))  # never flushed: lost in the "crash"
    stream = w.stream_path
    assert stream.name == "requests.arrows"
    # crash: the writer is never closed
    done = recover(tmp_path, {results.REQUESTS: SCHEMA, results.TELEMETRY: results.TELEMETRY_SCHEMA})
    assert done == [tmp_path / results.REQUESTS]
    assert not stream.exists()
    table = pq.read_table(tmp_path / results.REQUESTS)
    assert table.num_rows == 10
    assert table.schema.equals(SCHEMA)
    assert not (tmp_path / results.TELEMETRY).exists()  # no stream, nothing made up


def test_recover_leaves_finished_results_alone(tmp_path: Path):
    path = tmp_path / results.REQUESTS
    write_batches(path, [3]).close()
    before = path.read_bytes()
    assert recover(tmp_path, {results.REQUESTS: SCHEMA}) == []
    assert path.read_bytes() == before
