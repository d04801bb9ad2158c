"""Records at scale: the report path stays exact, and a large results folder goes through `perseus report`.

Timings are in benchmarks/scale.py and benchmarks/recorder.py, never asserted here.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks.synth import synthesize
from perseus import report, results
from perseus.analysis.stats import PERCENTILES
from perseus.records import StreamWriter, finalize, read_stream
from tests.conftest import run_cli

SCHEMA = results.REQUEST_SCHEMA


def _known_folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A synthetic folder whose solo-vision deployment holds latencies 1..1000 ms (shuffled), plus
    warm-up rows and failures that no percentile may see."""
    run_dir = synthesize(tmp_path / "run", 4000, duration_s=60.0, warmup_s=5.0, chunk=1500)
    rng = np.random.default_rng(7)
    measured = rng.permutation(np.arange(1.0, 1001.0))
    n_warm, n_err = 50, 20
    lat = np.concatenate([measured, np.full(n_warm, 1e6), np.full(n_err, 1e-3)])
    warm = np.r_[np.zeros(1000, bool), np.ones(n_warm, bool), np.zeros(n_err, bool)]
    ok = np.r_[np.ones(1000 + n_warm, bool), np.zeros(n_err, bool)]
    scheduled = np.where(warm, -1.0, np.linspace(0, 59, len(lat)))
    done = scheduled + lat / 1e3
    n = len(lat)
    table = pa.table(
        {
            "tenant": ["vision"] * n,
            "model": ["resnet"] * n,
            "deployment": ["solo-vision"] * n,
            "scheduled_s": scheduled,
            "sent_s": scheduled,
            "done_s": done,
            "latency_ms": lat,
            "service_ms": lat,
            "ok": ok,
            "error": [None if o else "HTTP 500: boom" for o in ok],
            "warmup": warm,
        },
        schema=SCHEMA,
    )
    pq.write_table(table, run_dir / "solo-vision" / results.REQUESTS, row_group_size=300)
    return run_dir, measured


def test_report_percentiles_equal_numpy_exactly(tmp_path: Path):
    run_dir, measured = _known_folder(tmp_path)
    summary = report.build(run_dir)
    rows = summary.rows.set_index(["deployment", "tenant"])

    # Known values: latencies 1..1000 ms, numpy's linear method, failures and warm-up left out.
    solo = rows.loc[("solo-vision", "vision")]
    expected = dict(zip(PERCENTILES, np.percentile(measured, PERCENTILES), strict=True))
    for q in PERCENTILES:
        assert solo[f"p{q}_ms"] == expected[q]  # exact, not approximately
    assert solo["p50_ms"] == 500.5 and solo["p99_ms"] == 990.01
    assert solo["requests"] == 1020 and solo["errors"] == 20

    # Synthetic values: every (deployment, tenant) of the shared deployment against numpy on the file.
    table = pq.read_table(run_dir / "shared" / results.REQUESTS)
    keep = pc.and_(pc.invert(table["warmup"]), table["ok"])
    for tenant in ("vision", "text", "series", "audio"):
        sel = pc.and_(keep, pc.equal(table["tenant"], tenant))
        lat = table.filter(sel)["latency_ms"].to_numpy()
        got = rows.loc[("shared", tenant)]
        for q, v in zip(PERCENTILES, np.percentile(lat, PERCENTILES), strict=True):
            assert got[f"p{q}_ms"] == v


def test_a_300k_record_folder_goes_through_perseus_report(tmp_path: Path):
    n = 300_000
    run_dir = synthesize(tmp_path / "run", n, chunk=100_000)
    proc = run_cli(["report", run_dir], tmpdir=tmp_path / "tmp", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir / results.REPORT_HTML)

    frame = pq.read_table(list(run_dir.glob(f"*/{results.REQUESTS}"))).to_pandas()
    assert len(frame) == n
    measured = frame[~frame["warmup"]]
    expected = measured.groupby(["deployment", "tenant"]).agg(requests=("ok", "size"), ok=("ok", "sum"))
    with open(run_dir / results.SUMMARY_CSV, newline="", encoding="utf-8") as f:
        summary = list(csv.DictReader(f))
    assert [(r["deployment"], r["tenant"]) for r in summary] == [
        ("shared", "vision"),
        ("shared", "text"),
        ("shared", "series"),
        ("shared", "audio"),
        ("solo-vision", "vision"),
    ]
    for r in summary:
        want = expected.loc[(r["deployment"], r["tenant"])]
        assert int(r["requests"]) == want["requests"]
        assert int(r["errors"]) == want["requests"] - want["ok"]
    assert sum(int(r["requests"]) for r in summary) == len(measured)
    assert (run_dir / results.REPORT_HTML).stat().st_size > 0


def test_read_requests_dictionary_encodes_the_low_cardinality_columns(tmp_path: Path):
    run_dir = synthesize(tmp_path / "run", 5000, chunk=2000)
    plain = results.read_requests(run_dir, report.ANALYSIS_COLUMNS)
    coded = results.read_requests(run_dir, report.ANALYSIS_COLUMNS, dictionary=True)
    for name in ("tenant", "model", "deployment"):
        assert pa.types.is_dictionary(coded.schema.field(name).type)
        assert coded[name].cast(pa.string()).equals(plain[name])
    assert coded.drop_columns(["tenant", "model", "deployment"]).equals(
        plain.drop_columns(["tenant", "model", "deployment"])
    )
    frame = report.read_analysis_frame(run_dir)
    assert str(frame["tenant"].dtype) == "category"
    assert frame["tenant"].astype(str).tolist() == plain["tenant"].to_pylist()

    empty = tmp_path / "empty"
    empty.mkdir()
    results.write_json_atomic(empty / results.MANIFEST, {"deployments": {}})
    none = results.read_requests(empty, report.ANALYSIS_COLUMNS, dictionary=True)
    assert none.num_rows == 0 and none.schema.names == report.ANALYSIS_COLUMNS
    assert len(report.read_analysis_frame(empty)) == 0


def _row(i: int) -> tuple:
    t = i * 1e-3
    ok = i % 9 != 0
    return ("text", "bert", "shared", t, t + 1e-5, t + 0.007, 7.0, 6.99, ok, None if ok else "HTTP 503: busy", i < 5)


def test_recorder_encodes_every_batch_rows_and_flush_writes_the_rest(tmp_path: Path):
    w = StreamWriter(tmp_path / results.REQUESTS, SCHEMA, batch_rows=128)
    rows = [_row(i) for i in range(300)]
    for r in rows:
        w.add(r)
    assert (w.written, w.count) == (256, 300)  # two batches encoded, 44 rows pending
    w.flush()
    assert (w.written, w.count) == (300, 300)
    stream = read_stream(w.stream_path, SCHEMA)  # readable before close, as after a crash
    assert stream.num_rows == 300
    assert [b.num_rows for b in stream.to_batches()] == [128, 128, 44]
    w.close()
    table = pq.read_table(tmp_path / results.REQUESTS)
    assert table.schema.equals(SCHEMA)
    assert [tuple(d.values()) for d in table.to_pylist()] == rows


def test_finalize_writes_bounded_row_groups(tmp_path: Path):
    w = StreamWriter(tmp_path / results.REQUESTS, SCHEMA, batch_rows=64)
    rows = [_row(i) for i in range(1000)]
    for r in rows:
        w.add(r)
    w.flush()
    w._writer.close()  # a closed stream, not converted yet
    w._out.close()
    out = finalize(w.stream_path, tmp_path / results.REQUESTS, SCHEMA, row_group_rows=300)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == 1000
    assert all(meta.row_group(i).num_rows <= 320 for i in range(meta.num_row_groups))
    assert meta.num_row_groups >= 3
    assert [tuple(d.values()) for d in pq.read_table(out).to_pylist()] == rows
    assert not w.stream_path.exists()


def test_recorder_keeps_odd_rows_in_order(tmp_path: Path):
    """Rows the typed buffers refuse (a None float or bool, a list) go through Arrow's row converter."""
    w = StreamWriter(tmp_path / results.REQUESTS, SCHEMA)
    odd_float = ("text", "bert", "shared", 1.0, None, 1.5, 7.0, 6.9, False, "aborted: drain", False)
    odd_bool = ("text", "bert", "shared", 2.0, 2.0, 2.5, 7.0, 6.9, None, None, False)
    rows = [_row(0), _row(1), odd_float, _row(2), odd_bool, _row(3)]
    for r in rows:
        w.add(r)
    assert w.count == 6
    w.close()
    got = [tuple(d.values()) for d in pq.read_table(tmp_path / results.REQUESTS).to_pylist()]
    assert got == rows


def test_recorder_rejects_a_row_of_the_wrong_width(tmp_path: Path):
    w = StreamWriter(tmp_path / results.REQUESTS, SCHEMA)
    w.add(_row(0))
    with pytest.raises(ValueError, match="10 values for 11 columns"):
        w.add(_row(1)[:-1])
    assert w.count == 1
    w.close()


def test_recorder_round_trips_telemetry_rows(tmp_path: Path):
    schema = results.TELEMETRY_SCHEMA
    w = StreamWriter(tmp_path / results.TELEMETRY, schema)
    rows = [(i * 0.5, "host", "cpu_percent", f'{{"process": "{p}"}}', float(i)) for i in range(50) for p in ("a", "b")]
    for r in rows:
        w.add(r)
    w.close()
    got = [tuple(d.values()) for d in pq.read_table(tmp_path / results.TELEMETRY).to_pylist()]
    assert got == rows
