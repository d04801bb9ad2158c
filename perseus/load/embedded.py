"""Embedded serving: the tenant's ONNX model run in-process by the load generator, no server, no RPC.

onnxruntime's ``run`` releases the GIL, so it runs in native threads (gevent's thread pool) while
the event loop keeps dispatching on schedule. The pool has ``instances`` threads, like Triton's
instance count: requests beyond that wait their turn, and that wait counts in latency as usual.
The load generator's CPU is shared with the model here; the report says so and shows its CPU use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from gevent.threadpool import ThreadPool

from perseus.errors import InputError
from perseus.load.inputs import INT_HIGH, VARIABLE_DIM

SWITCH_INTERVAL_S = 0.0002

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def onnx_file(repository: Path, model: str) -> Path:
    """The model's ONNX file: model.onnx in its highest numeric version folder."""
    versions = sorted((p for p in (repository / model).glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    for version in reversed(versions):
        if (version / "model.onnx").is_file():
            return version / "model.onnx"
    raise InputError(repository / model, None, "embedded serving needs an ONNX model (no <version>/model.onnx)")


class EmbeddedModel:
    """One tenant's in-process model; ``transport(connections)`` gives the engine its sender."""

    def __init__(self, path: Path, batch: int, rng: np.random.Generator, *, instances: int = 1, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.feed = {}
        for spec in self.session.get_inputs():
            dtype = _ORT_TYPES.get(spec.type)
            if dtype is None:
                raise InputError(path, spec.name, f"input type {spec.type} is not supported for embedded serving")
            dims = [d if isinstance(d, int) and d > 0 else VARIABLE_DIM for d in spec.shape]
            if spec.shape and not (isinstance(spec.shape[0], int) and spec.shape[0] > 0):
                dims[0] = batch  # a dynamic leading axis is the batch
            if np.issubdtype(dtype, np.integer):
                self.feed[spec.name] = rng.integers(0, INT_HIGH, size=dims).astype(dtype)
            elif dtype is np.bool_:
                self.feed[spec.name] = rng.integers(0, 2, size=dims).astype(bool)
            else:
                self.feed[spec.name] = rng.standard_normal(size=dims).astype(dtype)
        self.pool = ThreadPool(instances)
        # The event loop holds the GIL while it runs Python (dispatching, recording); a model thread
        # finishing then waits up to the interpreter's 5 ms switch interval to hand back its result. A short
        # interval keeps that hand-off from showing up as latency.
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    def __call__(self, connections: int) -> EmbeddedModel:
        """The engine's transport factory: one in-process model serves every connection."""
        return self

    def send(self) -> tuple[bool, str | None, int]:
        outputs = self.pool.apply(self.session.run, (None, self.feed))
        return True, None, int(sum(o.nbytes for o in outputs))

    def close(self) -> None:
        """The pool lives as long as the deployment (closed by ``shutdown``)."""

    def shutdown(self) -> None:
        self.pool.kill()
        sys.setswitchinterval(self._switch)
