"""Triton Python-backend model that serves ``model.onnx`` with onnxruntime.

perseus writes this file into every zoo model's version directory as ``model.py`` (generated, never
committed: this is the one copy in the source tree; see ``perseus/models/build.py``). It only runs
inside Triton's Python backend stub (``triton_python_backend_utils`` exists nowhere else), so perseus
itself never imports it.

With dynamic batching, Triton hands ``execute`` several requests at once: their inputs are
concatenated along the batch axis, run in one onnxruntime call, and the outputs split back per
request. If that combined run fails, each request is retried alone so one bad request cannot fail
its neighbours; every such fallback prints one marked line in the server log (with the error), so
perseus counts it per tenant instead of the batch silently becoming single runs.

A ``KIND_GPU`` instance runs on onnxruntime's ``CUDAExecutionProvider`` or not at all: without that
provider (the CPU-only ``onnxruntime`` package), or when onnxruntime quietly drops it at session
creation (it falls back to the CPU with only a warning when CUDA or cuDNN fail to load),
``initialize`` raises, so the model fails to load and the run fails naming it, instead of measuring
a "GPU" tenant on the CPU. Each instance prints the providers its session really uses, as one
marked JSON line in the server log, which perseus records per tenant (perseus/server/backend_log.py).

Config parameters read (all optional, string values):
``intra_op_num_threads`` (default 1), ``inter_op_num_threads`` (default 1),
``allow_spinning`` (default "0": idle onnxruntime threads sleep instead of burning a core that a
co-located tenant could use).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

MODEL_FILENAME = "model.onnx"
# The server-log line perseus reads back (perseus/server/backend_log.py holds the same mark; this file
# runs inside Triton's stub and cannot import perseus).
PROVIDERS_MARK = "perseus-backend providers "
FALLBACK_MARK = "perseus-backend batch-fallback "
ERROR_CHARS = 200  # of the exception's text in a fallback line: enough to say why, short if it repeats
CUDA = "CUDAExecutionProvider"


def _parameter(model_config, key, default):
    value = model_config.get("parameters", {}).get(key, {}).get("string_value", "")
    return value if value != "" else default


class TritonPythonModel:
    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.max_batch_size = int(model_config.get("max_batch_size", 0))
        self.name = model_config.get("name", "?")
        self.inputs = [
            (spec["name"], pb_utils.triton_string_to_numpy(spec["data_type"])) for spec in model_config["input"]
        ]
        self.outputs = [spec["name"] for spec in model_config["output"]]

        path = os.path.join(args["model_repository"], str(args["model_version"]), MODEL_FILENAME)
        if not os.path.isfile(path):
            # The weights are built on demand, never committed; say so instead of ORT's NO_SUCHFILE.
            raise FileNotFoundError(
                f"{path} is not built yet: build it with perseus.models.build_model "
                f"(repository {os.path.dirname(args['model_repository'])!r}, "
                f"model {model_config.get('name', '?')!r})"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(_parameter(model_config, "intra_op_num_threads", "1"))
        options.inter_op_num_threads = int(_parameter(model_config, "inter_op_num_threads", "1"))
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spinning = _parameter(model_config, "allow_spinning", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)

        name = model_config.get("name", "?")
        providers = ["CPUExecutionProvider"]
        wants_gpu = args.get("model_instance_kind") == "GPU"
        if wants_gpu:
            available = ort.get_available_providers()
            if CUDA not in available:
                raise RuntimeError(
                    f"model {name!r} has a KIND_GPU instance, but this onnxruntime has no {CUDA} "
                    f"(it has {', '.join(available)}): install onnxruntime-gpu in place of onnxruntime; "
                    "a GPU tenant is never run on the CPU"
                )
            device_id = int(args.get("model_instance_device_id", 0))
            providers.insert(0, (CUDA, {"device_id": device_id}))
        self.session = ort.InferenceSession(path, sess_options=options, providers=providers)
        used = self.session.get_providers()
        if wants_gpu and used[0] != CUDA:
            raise RuntimeError(
                f"model {name!r} has a KIND_GPU instance, but onnxruntime could not start {CUDA} "
                f"(the session uses {', '.join(used)}; see onnxruntime's warning above: CUDA or cuDNN "
                "libraries); a GPU tenant is never run on the CPU"
            )
        kind = args.get("model_instance_kind", "")
        print(PROVIDERS_MARK + json.dumps({"model": name, "kind": kind, "providers": used}), flush=True)

    def execute(self, requests):
        responses = [None] * len(requests)
        feeds = {}  # request index -> inputs, for the requests whose inputs could be read
        for i, request in enumerate(requests):
            try:
                feeds[i] = self._inputs(request)
            except Exception as exc:  # a bad request must become an error response
                responses[i] = self._error(exc)

        if self.max_batch_size > 0 and len(feeds) > 1:
            try:
                for i, response in zip(feeds, self._run_batched(list(feeds.values())), strict=True):
                    responses[i] = response
                return responses
            except Exception as exc:  # fall back to one run per request, below, and say so
                error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
                line = {"model": self.name, "requests": len(feeds), "error": error}
                print(FALLBACK_MARK + json.dumps(line), flush=True)
        for i, feed in feeds.items():
            try:
                responses[i] = self._response(self.session.run(self.outputs, feed))
            except Exception as exc:
                responses[i] = self._error(exc)
        return responses

    def finalize(self):
        self.session = None

    def _inputs(self, request):
        feed = {}
        for name, dtype in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name!r}")
            feed[name] = np.ascontiguousarray(tensor.as_numpy(), dtype=dtype)
        return feed

    def _run_batched(self, arrays):
        sizes = [len(feed[self.inputs[0][0]]) for feed in arrays]
        combined = {name: np.concatenate([feed[name] for feed in arrays], axis=0) for name, _ in self.inputs}
        results = self.session.run(self.outputs, combined)
        bounds = np.cumsum(sizes)[:-1]
        per_output = [np.split(result, bounds, axis=0) for result in results]
        return [self._response([parts[i] for parts in per_output]) for i in range(len(arrays))]

    def _response(self, results):
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(value))
            for name, value in zip(self.outputs, results, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    @staticmethod
    def _error(exc):
        message = f"{type(exc).__name__}: {exc}"
        return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))
