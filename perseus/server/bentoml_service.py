"""BentoML service that serves each tenant's ``model.onnx`` with onnxruntime, one API per tenant.

perseus copies this file into every BentoML folder it renders (as ``perseus_bento.py``, beside
``perseus-bento.json``, which names the tenants), the way it writes ``model.py`` for Triton's Python
backend. It runs only inside ``bentoml serve``, in the framework's own virtual environment
(``perseus servers install bentoml``), so perseus itself never imports it.

Per tenant, from perseus-bento.json:
- ``POST /<tenant>`` with the JSON body ``{"tensor": [...]}``: the model's one input, its answer the
  model's one output (the zoo's models have one of each; perseus refuses others for this kind);
- ``POST /<tenant>/metadata``: the input's and output's name, datatype and shape in the V2 protocol's
  metadata form, from which the load generator builds its request body once;
- with ``batching``, a batchable API: BentoML's adaptive batching concatenates requests along the
  first axis (``max_batch_size``, ``max_latency_ms``) and splits the answers back.
The onnxruntime thread settings are the Triton backend model's (``intra_op_num_threads``,
``inter_op_num_threads``, ``allow_spinning``), so every kind runs the same work.
"""

import json
import os

import bentoml
import numpy as np
import onnxruntime as ort

SPEC_FILE = "perseus-bento.json"
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, SPEC_FILE), encoding="utf-8") as _f:
    SPEC = json.load(_f)

# The V2 protocol's datatypes of the zoo's tensors, as numpy types.
DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8}


def _session(tenant):
    threads = tenant.get("threads", {})
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads.get("intra_op_num_threads", 1))
    options.inter_op_num_threads = int(threads.get("inter_op_num_threads", 1))
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spinning = str(threads.get("allow_spinning", "0"))
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    path = os.path.join(HERE, tenant["onnx"])
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def _infer(tenant):
    name, feed = tenant["name"], tenant["onnx_input"]
    dtype = DTYPES[tenant["metadata"]["inputs"][0]["datatype"]]

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return self.sessions[name].run(None, {feed: np.asarray(tensor, dtype=dtype)})[0]

    options = {"route": f"/{name}", "name": tenant["method"]}
    if tenant.get("batching"):
        options.update(batchable=True, **tenant["batching"])
    infer.__name__ = tenant["method"]
    return bentoml.api(**options)(infer)


def _metadata(tenant):
    metadata = tenant["metadata"]

    def metadata_api(self) -> dict:
        return metadata

    metadata_api.__name__ = f"{tenant['method']}_metadata"
    return bentoml.api(route=f"/{tenant['name']}/metadata", name=metadata_api.__name__)(metadata_api)


def _init(self):
    self.sessions = {tenant["name"]: _session(tenant) for tenant in SPEC["tenants"]}


_namespace = {"__init__": _init, "__module__": __name__}
for _tenant in SPEC["tenants"]:
    _namespace[_tenant["method"]] = _infer(_tenant)
    _namespace[f"{_tenant['method']}_metadata"] = _metadata(_tenant)

Perseus = bentoml.service(name="perseus", workers=int(SPEC["workers"]))(type("Perseus", (), _namespace))
