"""Per-request records, streamed to disk while the run goes.

Records go to an Arrow IPC *stream* file (``requests.arrows``) once a second: a stream is readable up
to its last complete batch even if the process dies, so a crash loses at most the last second.
``close()`` converts the stream to the contract's ``requests.parquet``; ``recover()`` does the same
for a stream left behind by a crashed run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

STREAM_SUFFIX = ".arrows"


class StreamWriter:
    """Buffers rows (tuples in schema order) and appends them as record batches to a stream file."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = Path(path)
        self.schema = schema
        self.stream_path = self.path.with_suffix(STREAM_SUFFIX)
        self._rows: list[tuple] = []
        self._sink = pa.OSFile(str(self.stream_path), "wb")
        self._writer = ipc.new_stream(self._sink, schema)
        self.written = 0

    def add(self, row: tuple) -> None:
        self._rows.append(row)

    @property
    def count(self) -> int:
        """Rows added so far, written or not."""
        return self.written + len(self._rows)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        batch = pa.record_batch(
            [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)], schema=self.schema
        )
        self._writer.write_batch(batch)
        self._sink.flush()
        self.written += len(rows)

    def close(self) -> Path:
        self.flush()
        self._writer.close()
        self._sink.close()
        return finalize(self.stream_path, self.path, self.schema)


def finalize(stream_path: Path, parquet_path: Path, schema: pa.Schema) -> Path:
    """Convert a (possibly truncated) stream file into Parquet, then remove the stream."""
    table = read_stream(stream_path, schema)
    tmp = parquet_path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(parquet_path)
    stream_path.unlink(missing_ok=True)
    return parquet_path


def read_stream(stream_path: Path, schema: pa.Schema) -> pa.Table:
    """Every complete batch of a stream file; a torn last batch (crash mid-write) is dropped."""
    batches = []
    try:
        with pa.OSFile(str(stream_path), "rb") as source:
            reader = ipc.open_stream(source)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError):
        pass  # truncated header or batch: keep what was complete
    return pa.Table.from_batches(batches, schema=schema)


def recover(folder: Path, schemas: dict[str, pa.Schema]) -> list[Path]:
    """Finalize streams a crashed run left in ``folder``; ``schemas`` maps parquet file name -> schema."""
    done = []
    for name, schema in schemas.items():
        parquet_path = Path(folder) / name
        stream_path = parquet_path.with_suffix(STREAM_SUFFIX)
        if stream_path.exists() and not parquet_path.exists():
            done.append(finalize(stream_path, parquet_path, schema))
    return done
