"""Per-request records, streamed to disk while the run goes.

Records go to an Arrow IPC *stream* file (``requests.arrows``) once a second: a stream is readable up
to its last complete batch even if the process dies, so a crash loses at most the last second.
``close()`` converts the stream to the contract's ``requests.parquet``; ``recover()`` does the same
for a stream left behind by a crashed run.

Recording must not disturb what it records: ``add()`` and ``flush()`` run on the event loop that also
times the next request. So the per-row work is done in ``add()``, spread evenly over the requests,
and kept cheap: the row's floats and bools are appended to typed buffers (``array.array``, a C
append each) and its strings to a small table of distinct values (a dict lookup). ``flush()`` (every
second) then builds the Arrow batch with a handful of C calls over those buffers, with no Python
loop over rows: about 1.5 ms for 20,000 rows, where converting a second's tuples row by row
held the loop for 1 to 3 us a row (tens of ms a second at 20,000 req/s, seen as send lag).
``finalize`` converts the stream to Parquet one row group at a time, so closing a 10M-record run
does not load it whole.
"""

from __future__ import annotations

from array import array
from operator import itemgetter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

STREAM_SUFFIX = ".arrows"
# Rows held before add() itself encodes a batch: bounds memory and the length of one encode when
# more than this many rows arrive between two flushes.
BATCH_ROWS = 1 << 16
# Encoded batches reach the file through this buffer: when it fills, and at every flush().
BUFFER_BYTES = 1 << 16
ROW_GROUP_ROWS = 1 << 20  # Parquet row group size at finalize (pyarrow's default, bounded memory)


def _getter(indexes: list[int]):
    """row -> tuple of row[i] for i in indexes (itemgetter, always a tuple)."""
    if len(indexes) == 1:
        i = indexes[0]
        return lambda row: (row[i],)
    return itemgetter(*indexes) if indexes else (lambda row: ())


class StreamWriter:
    """Collects rows (tuples in schema order), appends them as record batches to a stream file.

    float64 and bool fields go to typed buffers; every other field (strings) is stored as a code into
    the distinct combinations of those fields seen since the last batch (a run has a few: tenant,
    model, deployment, and an error text that is nearly always None). A row the buffers refuse (a
    None where a float goes, say) is written through Arrow's row converter instead, in order.
    """

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        self.schema = schema
        self.stream_path = self.path.with_suffix(STREAM_SUFFIX)
        self.batch_rows = batch_rows
        self._struct = pa.struct(list(schema))
        # Arrow's first conversion from Python objects imports pandas (~0.5 s): pay it here, not on
        # the event loop in the middle of a run.
        pa.array([], type=self._struct)
        types = [f.type for f in schema]
        self._floats = [i for i, t in enumerate(types) if t == pa.float64()]
        self._bools = [i for i, t in enumerate(types) if t == pa.bool_()]
        self._others = [i for i in range(len(types)) if i not in self._floats and i not in self._bools]
        self._get_floats = _getter(self._floats)
        self._get_bools = _getter(self._bools)
        self._get_others = _getter(self._others)
        self._reset()
        self._sink = pa.OSFile(str(self.stream_path), "wb")
        self._out = pa.BufferedOutputStream(self._sink, BUFFER_BYTES)
        self._writer = ipc.new_stream(self._out, schema)
        self.written = 0  # rows encoded into the stream (on disk after the next flush)

    def _reset(self) -> None:
        self._f = array("d")  # row-major: len(self._floats) values a row
        self._b = array("b")
        self._codes = array("i")  # a row's index into self._keys
        self._keys: dict[tuple, int] = {}
        self._pending = 0

    def add(self, row: tuple) -> None:
        if len(row) != len(self.schema):
            raise ValueError(f"a row of {len(row)} values for {len(self.schema)} columns")
        keys = self._keys
        try:
            self._f.extend(self._get_floats(row))
            self._b.extend(self._get_bools(row))
            key = self._get_others(row)
            code = keys.get(key)
        except TypeError:  # None or a non-number in a float/bool field, an unhashable value
            del self._f[self._pending * len(self._floats) :]  # undo a partial append
            del self._b[self._pending * len(self._bools) :]
            self._add_odd(row)
            return
        if code is None:
            code = keys[key] = len(keys)
        self._codes.append(code)
        self._pending += 1
        if self._pending >= self.batch_rows:
            self._encode()

    def _add_odd(self, row: tuple) -> None:
        self._encode()  # what came before goes first
        self._writer.write_batch(pa.RecordBatch.from_struct_array(pa.array([row], type=self._struct)))
        self.written += 1

    @property
    def count(self) -> int:
        """Rows added so far, written or not."""
        return self.written + self._pending

    def _encode(self) -> None:
        n = self._pending
        if not n:
            return
        try:
            columns: list[pa.Array | None] = [None] * len(self.schema)
            if self._floats:
                floats = np.frombuffer(self._f, dtype=np.float64).reshape(n, len(self._floats))
                for j, i in enumerate(self._floats):
                    columns[i] = pa.array(np.ascontiguousarray(floats[:, j]))
            if self._bools:
                bools = np.frombuffer(self._b, dtype=np.int8).reshape(n, len(self._bools))
                for j, i in enumerate(self._bools):
                    columns[i] = pa.array(bools[:, j] != 0)
            if self._others:
                codes = pa.array(np.frombuffer(self._codes, dtype=np.int32))
                keys = list(self._keys)  # in code order
                for j, i in enumerate(self._others):
                    columns[i] = pa.array([k[j] for k in keys], type=self.schema.field(i).type).take(codes)
            self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
            self.written += n
        finally:
            self._reset()

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
                _write_group(writer, pending, schema)
                pending, rows = [], 0
        if pending:
            _write_group(writer, pending, schema)
    tmp.replace(parquet_path)
    stream_path.unlink(missing_ok=True)
    return parquet_path


def _write_group(writer: pq.ParquetWriter, batches: list[pa.RecordBatch], schema: pa.Schema) -> None:
    """The stream's small batches as one row group (contiguous columns encode and compress better)."""
    table = pa.Table.from_batches(batches, schema).combine_chunks()
    writer.write_table(table, row_group_size=max(1, table.num_rows))


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
