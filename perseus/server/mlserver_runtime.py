"""MLServer custom runtime that serves a model's ``model.onnx`` with onnxruntime.

perseus copies this file into every MLServer model repository it renders (as ``perseus_onnx.py``,
beside the per-tenant ``model-settings.json``), the way it writes ``model.py`` for Triton's Python
backend. It runs only inside MLServer, in the framework's own virtual environment (``perseus servers
install mlserver``), so perseus itself never imports it.

It reads, from ``parameters.extra`` in model-settings.json: ``onnx`` (the file, relative to the model's
folder), and the same
onnxruntime thread settings as the Triton backend model (``intra_op_num_threads``,
``inter_op_num_threads``, ``allow_spinning``), so both frameworks run the same work.
MLServer's adaptive batching (``max_batch_size``, ``max_batch_time``) concatenates requests along the
first axis before ``predict`` and splits the outputs back, so ``predict`` sees one batch either way.
"""

import os

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(extra.get("intra_op_num_threads", 1))
        options.inter_op_num_threads = int(extra.get("inter_op_num_threads", 1))
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spinning = str(extra.get("allow_spinning", "0"))
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        # ``onnx`` is relative to the model's folder (parameters.uri, which MLServer sets to that folder).
        path = os.path.join(self.settings.parameters.uri, extra["onnx"])
        self._session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        results = self._session.run(self._outputs, feeds)
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(name, value) for name, value in zip(self._outputs, results, strict=True)],
        )
