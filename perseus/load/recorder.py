"""Per-request records, streamed to disk while the run goes.

Records go to an Arrow IPC *stream* file (``requests.arrows``) once a second: a stream is readable up
to its last complete batch even if the process dies, so a crash loses at most the last second.
``close()`` converts the stream to the contract's ``requests.parquet``; ``recover()`` does the same
for a stream left behind by a crashed run.

Recording must not disturb what it records. ``add()`` runs on the event loop that also times the next
request, so the work is cut small: every ``BATCH_ROWS`` rows are converted to an Arrow batch at once
(about 0.1 ms) into an in-memory buffer, and ``flush()`` only converts the remainder and hands the
buffer to the OS. No call blocks the loop for longer than one small batch, whatever the request rate,
and memory holds at most a second of records. ``finalize`` converts the stream to Parquet one row
group at a time, so closing a 10M-record run does not load it whole.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

STREAM_SUFFIX = ".arrows"
# Rows converted in one go. Converting a row costs ~0.5 us (its Python objects are read one by one),
# so a batch holds the event loop ~0.05-0.1 ms: the most recording can add to a request's send lag.
BATCH_ROWS = 128
# Encoded batches collect here and reach the file when it fills or at flush(): one write, not dozens
# of small ones per batch.
BUFFER_BYTES = 1 << 20
ROW_GROUP_ROWS = 1 << 20  # Parquet row group size at finalize (pyarrow's default, bounded memory)


class StreamWriter:
    """Collects rows (tuples in schema order), appends them as record batches to a stream file."""

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        self.schema = schema
        self.stream_path = self.path.with_suffix(STREAM_SUFFIX)
        self.batch_rows = batch_rows
        self._struct = pa.struct(list(schema))
        # Arrow's first conversion from Python objects imports pandas (~0.5 s): pay it here, not on
        # the event loop in the middle of a run.
        pa.array([], type=self._struct)
        self._rows: list[tuple] = []
        self._sink = pa.OSFile(str(self.stream_path), "wb")
        self._out = pa.BufferedOutputStream(self._sink, BUFFER_BYTES)
        self._writer = ipc.new_stream(self._out, schema)
        self.written = 0  # rows encoded into the stream (on disk after the next flush)

    def add(self, row: tuple) -> None:
        rows = self._rows
        rows.append(row)
        if len(rows) >= self.batch_rows:
            self._encode()

    @property
    def count(self) -> int:
        """Rows added so far, written or not."""
        return self.written + len(self._rows)

    def _encode(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        # Tuples -> struct array in one pass of Arrow's converter (no per-column transposing in Python).
        batch = pa.RecordBatch.from_struct_array(pa.array(rows, type=self._struct))
        self._writer.write_batch(batch)
        self.written += len(rows)

    def flush(self) -> None:
        """Encode what is pending and hand every complete batch to the OS (readable after a crash)."""
        self._encode()
        self._out.flush()

    def close(self) -> Path:
        self.flush()
        self._writer.close()
        self._out.close()  # closes the file under it too
        return finalize(self.stream_path, self.path, self.schema)


def finalize(stream_path: Path, parquet_path: Path, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Convert a (possibly truncated) stream file into Parquet, then remove the stream.

    One row group at a time: memory stays near one row group whatever the number of records.
    """
    tmp = parquet_path.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in iter_stream(stream_path):
            pending.append(batch)
            rows += batch.num_rows
            if rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending, schema).combine_chunks(), row_group_rows)
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema).combine_chunks(), row_group_rows)
    tmp.replace(parquet_path)
    stream_path.unlink(missing_ok=True)
    return parquet_path


def iter_stream(stream_path: Path):
    """Yield every complete batch of a stream file; a torn last batch (crash mid-write) ends it."""
    try:
        with pa.OSFile(str(stream_path), "rb") as source:
            reader = ipc.open_stream(source)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
    except (pa.ArrowInvalid, OSError):
        return  # truncated header or batch: keep what was complete


def read_stream(stream_path: Path, schema: pa.Schema) -> pa.Table:
    """Every complete batch of a stream file; a torn last batch (crash mid-write) is dropped."""
    return pa.Table.from_batches(list(iter_stream(stream_path)), schema=schema)


def recover(folder: Path, schemas: dict[str, pa.Schema]) -> list[Path]:
    """Finalize streams a crashed run left in ``folder``; ``schemas`` maps parquet file name -> schema."""
    done = []
    for name, schema in schemas.items():
        parquet_path = Path(folder) / name
        stream_path = parquet_path.with_suffix(STREAM_SUFFIX)
        if stream_path.exists() and not parquet_path.exists():
            done.append(finalize(stream_path, parquet_path, schema))
    return done
