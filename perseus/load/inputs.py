"""Request inputs built from the model's own metadata, once per tenant, not per request.

Any Triton repository works, not only ours: shapes and datatypes come from the server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import triton_to_np_dtype

from perseus.errors import ServerError

# Integer inputs are drawn from [0, 100): valid token ids for any vocabulary of 100 or more, and
# valid indices for most integer-typed inputs. Our own models also fold ids into their vocabulary.
INT_HIGH = 100
# A variable (-1) dimension other than the batch gets this size.
VARIABLE_DIM = 16


@dataclass(frozen=True)
class Request:
    """A prebuilt inference request: the body is sent as-is for every request of the tenant."""

    path: str
    body: bytes
    headers: dict[str, str]
    batch: int


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


def build_request(url: str, served_name: str, batch: int, rng: np.random.Generator, *, binary: bool = True) -> Request:
    """Read the model's metadata (and config) from the server and build one request body.

    ``binary``: tensors in Triton's binary data extension; without it, the plain JSON body of the V2
    protocol, for servers that lack the extension (MLServer answers it with HTTP 500)."""
    try:
        meta = _get_json(f"{url}/v2/models/{served_name}")
        batched = _batched(url, served_name, meta)
    except OSError as exc:
        raise ServerError(f"cannot read metadata of model '{served_name}' from {url}: {exc}") from None
    inputs = []
    for spec in meta["inputs"]:
        dims = [VARIABLE_DIM if d < 0 else int(d) for d in spec["shape"]]
        if batched:
            dims[0] = batch
        tensor = random_tensor(spec["datatype"], dims, rng)
        infer_input = httpclient.InferInput(spec["name"], dims, spec["datatype"])
        infer_input.set_data_from_numpy(tensor, binary_data=binary)
        inputs.append(infer_input)
    outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=binary) for o in meta["outputs"]]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = str(json_size)
    return Request(
        path=f"/v2/models/{served_name}/infer",
        body=bytes(body),
        headers=headers,
        batch=batch if batched else 1,
    )


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
