"""Request inputs built from the model's own metadata, once per tenant, not per request.

Any Triton repository works, not only ours: shapes and datatypes come from the server. The tensors
are drawn once from the tenant's generator, in the same order for either protocol, so a tenant's
schedule (drawn next from the same generator) does not depend on its protocol. Over HTTP the body is
Triton's binary-tensor JSON request; over gRPC it is a serialised ``ModelInferRequest`` that the
engine sends as raw bytes, so neither protocol builds a message per request.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import serialize_byte_tensor, triton_to_np_dtype

from perseus.errors import ServerError

# Integer inputs are drawn from [0, 100): valid token ids for any vocabulary of 100 or more, and
# valid indices for most integer-typed inputs. Our own models also fold ids into their vocabulary.
INT_HIGH = 100
# A variable (-1) dimension other than the batch gets this size.
VARIABLE_DIM = 16
# Triton's gRPC inference method (grpc_service.proto), called with the prebuilt request bytes.
GRPC_INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
# Triton's binary tensor extension: the length of the JSON header that precedes the binary data.
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Request:
    """A prebuilt inference request: the body is sent as-is for every request of the tenant."""

    path: str  # HTTP: the infer URL path; gRPC: the method
    body: bytes
    headers: dict[str, str]
    batch: int
    protocol: str = "http"  # http | grpc

    def tagged(self, request_id: str) -> tuple[bytes, dict[str, str]]:
        """The body and headers with ``"id": request_id`` in the JSON header, for Triton's trace.

        Triton records the request's ``id`` in its trace (``request_id``), which is how a trace joins
        the client's record. The JSON header is the body's first bytes (``{...}``, its length in
        ``Inference-Header-Content-Length`` when binary tensors follow), so the id goes in right after
        the opening brace and the length grows by as much: one copy of the body, no JSON re-encoding.
        A gRPC request carries it in ModelInferRequest's ``id`` field.
        """
        if self.protocol == "grpc":  # a traced request only: parsed, given its id, serialised again
            message = service_pb2.ModelInferRequest.FromString(self.body)
            message.id = request_id
            return message.SerializeToString(), self.headers
        prefix = b'{"id":' + json.dumps(request_id).encode() + b","
        headers = dict(self.headers)
        if HEADER_LENGTH in headers:
            headers[HEADER_LENGTH] = str(int(headers[HEADER_LENGTH]) + len(prefix) - 1)
        return prefix + self.body[1:], headers


def _get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback server URL
        return json.loads(resp.read())


def random_tensor(datatype: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([b"perseus"] * int(np.prod(shape)), dtype=np.object_).reshape(shape)
    dtype = triton_to_np_dtype(datatype)
    if datatype == "BOOL":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, INT_HIGH, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def _batched(url: str, served_name: str, meta: dict) -> bool:
    """Whether the model takes a batch dimension: Triton's config says so (max_batch_size); a V2 server
    without Triton's config extension (MLServer answers 404) says so by a leading -1 in every input."""
    try:
        config = _get_json(f"{url}/v2/models/{served_name}/config")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return all(spec["shape"][:1] == [-1] for spec in meta["inputs"])
    return int(config.get("max_batch_size", 0)) > 0


def build_request(
    url: str, served_name: str, batch: int, rng: np.random.Generator, protocol: str = "http", *, binary: bool = True
) -> Request:
    """Read the model's metadata (and config) from the server and build one request body.

    ``binary``: tensors in Triton's binary data extension; without it, the plain JSON body of the V2
    protocol, for servers that lack the extension (MLServer answers it with HTTP 500)."""
    try:
        meta = _get_json(f"{url}/v2/models/{served_name}")
        batched = _batched(url, served_name, meta)
    except OSError as exc:
        raise ServerError(f"cannot read metadata of model '{served_name}' from {url}: {exc}") from None
    tensors = []
    for spec in meta["inputs"]:
        dims = [VARIABLE_DIM if d < 0 else int(d) for d in spec["shape"]]
        if batched:
            dims[0] = batch
        tensors.append((spec["name"], spec["datatype"], dims, random_tensor(spec["datatype"], dims, rng)))
    outputs = [o["name"] for o in meta["outputs"]]
    batch = batch if batched else 1
    if protocol == "grpc":
        return _grpc_request(served_name, tensors, outputs, batch)
    return _http_request(served_name, tensors, outputs, batch, binary)


def _http_request(served_name: str, tensors: list, outputs: list[str], batch: int, binary: bool = True) -> Request:
    inputs = []
    for name, datatype, dims, tensor in tensors:
        infer_input = httpclient.InferInput(name, dims, datatype)
        infer_input.set_data_from_numpy(tensor, binary_data=binary)
        inputs.append(infer_input)
    requested = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in outputs]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=requested)
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if json_size is not None:
        headers[HEADER_LENGTH] = str(json_size)
    return Request(path=f"/v2/models/{served_name}/infer", body=bytes(body), headers=headers, batch=batch)


def _grpc_request(served_name: str, tensors: list, outputs: list[str], batch: int) -> Request:
    request = service_pb2.ModelInferRequest(model_name=served_name)
    for name, datatype, dims, tensor in tensors:
        spec = request.inputs.add()
        spec.name, spec.datatype = name, datatype
        spec.shape.extend(dims)
        # raw_input_contents: each tensor's bytes in row-major order; BYTES elements length-prefixed.
        raw = serialize_byte_tensor(tensor).item() if datatype == "BYTES" else tensor.tobytes()
        request.raw_input_contents.append(raw)
    for name in outputs:
        request.outputs.add().name = name
    return Request(path=GRPC_INFER_METHOD, body=request.SerializeToString(), headers={}, batch=batch, protocol="grpc")


def build_bentoml_request(url: str, served_name: str, batch: int, rng: np.random.Generator) -> Request:
    """The request body for a tenant's BentoML API (perseus.server.bentoml): ``{"tensor": [...]}``, drawn
    from the same generator and shapes as the V2 body, so each kind receives the same numbers."""
    try:
        meta = _post_json(f"{url}/{served_name}/metadata")
    except OSError as exc:
        raise ServerError(f"cannot read metadata of model '{served_name}' from {url}: {exc}") from None
    (spec,) = meta["inputs"]
    batched = spec["shape"][:1] == [-1]
    dims = [VARIABLE_DIM if d < 0 else int(d) for d in spec["shape"]]
    if batched:
        dims[0] = batch
    tensor = random_tensor(spec["datatype"], dims, rng)
    return Request(
        path=f"/{served_name}",
        body=json.dumps({spec["name"]: tensor.tolist()}).encode(),
        headers={"Content-Type": "application/json"},
        batch=batch if batched else 1,
    )


def _post_json(url: str, timeout: float = 10.0) -> dict:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})  # noqa: S310 - a server URL we built
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback server URL
        return json.loads(resp.read())
