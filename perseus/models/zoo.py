"""ONNX graph builders for the bundled model zoo.

Each model is described by a :class:`Recipe` (an architecture ``kind`` plus size parameters) and built
locally with :mod:`onnx.helper` from seeded random weights, so no download or deep-learning framework
is needed. The weights are meaningless but scaled (He / Xavier / BERT-style) so activations stay finite
and the compute cost matches a trained network of the same shape.

Three kinds exist:

- ``resnet``: a ResNet (basic or bottleneck residual blocks) with batch-norm folded into conv biases.
- ``bert``: a BERT encoder (post-LN transformer) with a tanh pooler on the first token.
- ``timeseries``: a stacked LSTM forecaster.

Every graph has one input and one output whose first dimension is the dynamic batch ``N``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
"""ONNX opset: 17 is the first with LayerNormalization; onnxruntime has supported it since 1.13."""

IR_VERSION = 8
"""IR version that goes with opset 17; old enough for the onnxruntime in Triton images since 22.x."""

BATCH_DIM = "N"
"""Name of the symbolic batch dimension of every input and output."""

_ONNX_DTYPES = {"FP32": TensorProto.FLOAT, "INT64": TensorProto.INT64}


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output, as Triton sees it."""

    name: str
    dtype: str  # Triton datatype string: "FP32", "INT64"
    dims: tuple[int, ...]  # without the batch dimension


@dataclass(frozen=True)
class Recipe:
    """How to build one zoo model: the architecture kind and its size parameters."""

    kind: str  # "resnet" | "bert" | "timeseries"
    params: dict = field(default_factory=dict)
    seed: int = 0
    max_batch_size: int = 32
    description: str = ""


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------

RECIPES: dict[str, Recipe] = {
    # Tiny models: well under 1 ms per inference on one core; for tests and smoke runs.
    "resnet_tiny": Recipe(
        kind="resnet",
        params={
            "image_size": 32,
            "channels": 3,
            "stem_width": 8,
            "stages": [[1, 8], [1, 16]],
            "bottleneck": False,
            "num_classes": 10,
        },
        description="Tiny ResNet (2 basic blocks, 32x32) for tests and smoke runs.",
    ),
    "bert_tiny": Recipe(
        kind="bert",
        params={
            "vocab": 1000,
            "seq_len": 16,
            "hidden": 32,
            "heads": 2,
            "layers": 1,
            "intermediate": 64,
        },
        description="Tiny BERT encoder (1 layer, hidden 32, seq 16) for tests and smoke runs.",
    ),
    "lstm_tiny": Recipe(
        kind="timeseries",
        params={"seq_len": 16, "features": 4, "hidden": 16, "layers": 1, "outputs": 4},
        description="Tiny LSTM forecaster (1 layer, hidden 16, 16 steps) for tests and smoke runs.",
    ),
    # Small models: a few ms per inference on one CPU core; the default CPU scenario.
    "resnet": Recipe(
        kind="resnet",
        params={
            "image_size": 128,
            "channels": 3,
            "stem_width": 32,
            "stages": [[2, 32], [2, 64], [2, 128], [2, 256]],
            "bottleneck": False,
            "num_classes": 100,
        },
        description="ResNet-18-style classifier at 128x128 with half widths (CPU-friendly).",
    ),
    "bert": Recipe(
        kind="bert",
        params={
            "vocab": 8192,
            "seq_len": 64,
            "hidden": 256,
            "heads": 4,
            "layers": 2,
            "intermediate": 1024,
        },
        description="Small BERT encoder (2 layers, hidden 256, seq 64) (CPU-friendly).",
    ),
    "lstm": Recipe(
        kind="timeseries",
        params={"seq_len": 64, "features": 8, "hidden": 256, "layers": 3, "outputs": 8},
        description="3-layer LSTM forecaster (hidden 256, 64 steps) (CPU-friendly).",
    ),
    # Full-size models for GPU hosts.
    "resnet50": Recipe(
        kind="resnet",
        params={
            "image_size": 224,
            "channels": 3,
            "stem_width": 64,
            "stages": [[3, 256], [4, 512], [6, 1024], [3, 2048]],
            "bottleneck": True,
            "num_classes": 1000,
        },
        description="ResNet-50 (bottleneck [3,4,6,3], 224x224, 1000 classes), BN folded.",
    ),
    "bert_base": Recipe(
        kind="bert",
        params={
            "vocab": 30522,
            "seq_len": 128,
            "hidden": 768,
            "heads": 12,
            "layers": 12,
            "intermediate": 3072,
        },
        description="BERT-base encoder (12 layers, hidden 768, 12 heads, seq 128) with pooler.",
    ),
}

_BOTTLENECK_EXPANSION = 4
"""A bottleneck block's inner width is its output width / 4, as in ResNet-50."""


# ---------------------------------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------------------------------


def signature(recipe: Recipe) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The model's inputs and outputs (dims without the batch dimension)."""
    p = recipe.params
    if recipe.kind == "resnet":
        size = int(p["image_size"])
        inputs = [TensorSpec("image", "FP32", (int(p.get("channels", 3)), size, size))]
        outputs = [TensorSpec("logits", "FP32", (int(p["num_classes"]),))]
    elif recipe.kind == "bert":
        inputs = [TensorSpec("input_ids", "INT64", (int(p["seq_len"]),))]
        outputs = [TensorSpec("pooled", "FP32", (int(p["hidden"]),))]
    elif recipe.kind == "timeseries":
        inputs = [TensorSpec("series", "FP32", (int(p["seq_len"]), int(p["features"])))]
        outputs = [TensorSpec("forecast", "FP32", (int(p["outputs"]),))]
    else:
        raise ValueError(f"unknown model kind {recipe.kind!r} (expected one of {sorted(_BUILDERS)})")
    return inputs, outputs


def build_onnx(recipe: Recipe) -> onnx.ModelProto:
    """Build the recipe's ONNX model from seeded random weights and check it with onnx.checker."""
    if recipe.kind not in _BUILDERS:
        raise ValueError(f"unknown model kind {recipe.kind!r} (expected one of {sorted(_BUILDERS)})")
    inputs, outputs = signature(recipe)
    model = helper.make_model(
        helper.make_graph(
            [],
            f"perseus_{recipe.kind}",
            [_value_info(s) for s in inputs],
            [_value_info(s) for s in outputs],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="perseus",
        doc_string=recipe.description,
    )
    # Nodes and weights go straight into the model's graph, so each weight exists once in memory.
    g = _Graph(np.random.default_rng(recipe.seed), model.graph)
    out_name = _BUILDERS[recipe.kind](g, recipe.params, inputs[0].name)
    g.node("Identity", [out_name], [outputs[0].name])
    model.ir_version = IR_VERSION
    _check(model)
    return model


_FULL_CHECK_MAX_BYTES = 128 * 1024 * 1024
"""Above this many weight bytes, check the graph without its weights: onnx.checker serialises the
whole model first, which for BERT-base (440 MB) takes seconds and gigabytes for no added check."""


def _check(model: onnx.ModelProto) -> None:
    weight_bytes = sum(len(init.raw_data) for init in model.graph.initializer)
    if weight_bytes <= _FULL_CHECK_MAX_BYTES:
        onnx.checker.check_model(model)
        return
    # Same nodes, with every weight declared as a typed graph input instead of carrying its data.
    g = model.graph
    weights = [helper.make_tensor_value_info(i.name, i.data_type, i.dims) for i in g.initializer]
    skeleton = helper.make_model(
        helper.make_graph(list(g.node), g.name, [*g.input, *weights], list(g.output)),
        opset_imports=list(model.opset_import),
    )
    skeleton.ir_version = model.ir_version
    onnx.checker.check_model(skeleton)


def param_count(model: onnx.ModelProto) -> int:
    """Number of trainable parameters: the elements of all floating-point initializers."""
    floating = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
    return sum(math.prod(init.dims) for init in model.graph.initializer if init.data_type in floating)


def expected_param_count(recipe: Recipe) -> int:
    """The parameter count of ``build_onnx(recipe)``, computed analytically (no weights built)."""
    p = recipe.params
    if recipe.kind == "resnet":
        return _resnet_params(p)
    if recipe.kind == "bert":
        h, inter = int(p["hidden"]), int(p["intermediate"])
        embeddings = int(p["vocab"]) * h + int(p["seq_len"]) * h + 2 * h  # word + position + LN
        layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 2 * (2 * h)
        pooler = h * h + h
        return embeddings + int(p["layers"]) * layer + pooler
    if recipe.kind == "timeseries":
        h, total, width = int(p["hidden"]), 0, int(p["features"])
        for _ in range(int(p["layers"])):
            total += 4 * h * width + 4 * h * h + 8 * h  # W, R, B (input and recurrent biases)
            width = h
        return total + h * int(p["outputs"]) + int(p["outputs"])
    raise ValueError(f"unknown model kind {recipe.kind!r}")


# ---------------------------------------------------------------------------------------------------
# Graph construction
# ---------------------------------------------------------------------------------------------------


def _value_info(spec: TensorSpec) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(spec.name, _ONNX_DTYPES[spec.dtype], [BATCH_DIM, *spec.dims])


class _Graph:
    """Appends nodes and weights to a GraphProto; hands out unique tensor names."""

    def __init__(self, rng: np.random.Generator, graph: onnx.GraphProto) -> None:
        self.rng = rng
        self.graph = graph
        self._counter = 0

    def name(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | None = None, **attrs):
        """Add a node; return its single output name (or the list of outputs when several)."""
        if outputs is None:
            outputs = [self.name(op.lower())]
        self.graph.node.append(helper.make_node(op, list(inputs), list(outputs), self.name(op), **attrs))
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def weight(self, hint: str, array: np.ndarray) -> str:
        """Add a trainable parameter (an initializer)."""
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """Add a non-trainable constant (a Constant node, so it is not counted as a parameter)."""
        name = self.name("const")
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), name + "_value")
        self.graph.node.append(helper.make_node("Constant", [], [name], self.name("Constant"), value=tensor))
        return name

    def normal(self, shape: Sequence[int], std: float) -> np.ndarray:
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)

    def uniform(self, shape: Sequence[int], bound: float) -> np.ndarray:
        return self.rng.uniform(-bound, bound, tuple(shape)).astype(np.float32)

    def linear(self, x: str, n_in: int, n_out: int, std: float, hint: str) -> str:
        """x @ W + b over the last axis (MatMul + Add, so any leading dims work)."""
        w = self.weight(f"{hint}_w", self.normal((n_in, n_out), std))
        b = self.weight(f"{hint}_b", np.zeros(n_out, np.float32))
        return self.node("Add", [self.node("MatMul", [x, w]), b])


# --- resnet ----------------------------------------------------------------------------------------


def _conv(g: _Graph, x: str, c_in: int, c_out: int, k: int, stride: int, gain: float = 1.0) -> str:
    """Conv with a bias: batch-norm folded into the conv, as inference runtimes do anyway."""
    std = gain * math.sqrt(2.0 / (c_in * k * k))  # He init, for the ReLU that follows
    w = g.weight("conv_w", g.normal((c_out, c_in, k, k), std))
    b = g.weight("conv_b", g.normal((c_out,), 0.01))
    pad = k // 2
    return g.node("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def _stage_plan(p: dict) -> list[tuple[int, int]]:
    """(width, stride) of every residual block: stride 2 at the start of every stage but the first."""
    plan = []
    for s, (blocks, width) in enumerate(p["stages"]):
        for i in range(int(blocks)):
            plan.append((int(width), 2 if (i == 0 and s > 0) else 1))
    return plan


def _build_resnet(g: _Graph, p: dict, x: str) -> str:
    channels, stem = int(p.get("channels", 3)), int(p["stem_width"])
    bottleneck = bool(p.get("bottleneck", False))
    plan = _stage_plan(p)
    # Scale each residual branch's last conv down so the un-normalised residual stream grows slowly
    # with depth (the idea behind Fixup init) instead of doubling its variance at every block.
    branch_gain = 1.0 / math.sqrt(2.0 * max(len(plan), 1))

    x = g.node("Relu", [_conv(g, x, channels, stem, 7, 2)])
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = stem
    for width, stride in plan:
        if bottleneck:
            mid = width // _BOTTLENECK_EXPANSION
            y = g.node("Relu", [_conv(g, x, c, mid, 1, 1)])
            y = g.node("Relu", [_conv(g, y, mid, mid, 3, stride)])
            y = _conv(g, y, mid, width, 1, 1, gain=branch_gain)
        else:
            y = g.node("Relu", [_conv(g, x, c, width, 3, stride)])
            y = _conv(g, y, width, width, 3, 1, gain=branch_gain)
        shortcut = _conv(g, x, c, width, 1, stride) if (stride != 1 or c != width) else x
        x = g.node("Relu", [g.node("Add", [y, shortcut])])
        c = width

    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    classes = int(p["num_classes"])
    w = g.weight("fc_w", g.normal((c, classes), math.sqrt(1.0 / c)))
    b = g.weight("fc_b", np.zeros(classes, np.float32))
    return g.node("Gemm", [x, w, b])


def _resnet_params(p: dict) -> int:
    def conv(c_in: int, c_out: int, k: int) -> int:
        return c_out * c_in * k * k + c_out

    channels, stem = int(p.get("channels", 3)), int(p["stem_width"])
    total, c = conv(channels, stem, 7), stem
    for width, stride in _stage_plan(p):
        if p.get("bottleneck", False):
            mid = width // _BOTTLENECK_EXPANSION
            total += conv(c, mid, 1) + conv(mid, mid, 3) + conv(mid, width, 1)
        else:
            total += conv(c, width, 3) + conv(width, width, 3)
        if stride != 1 or c != width:
            total += conv(c, width, 1)
        c = width
    return total + c * int(p["num_classes"]) + int(p["num_classes"])


# --- bert ------------------------------------------------------------------------------------------

_BERT_INIT_STD = 0.02
"""BERT's truncated-normal initializer range (here a plain normal)."""


def _layer_norm(g: _Graph, x: str, hidden: int) -> str:
    scale = g.weight("ln_gamma", np.ones(hidden, np.float32))
    bias = g.weight("ln_beta", np.zeros(hidden, np.float32))
    return g.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-12)


def _gelu(g: _Graph, x: str) -> str:
    """Exact GELU in its Erf form: 0.5 * x * (1 + erf(x / sqrt(2)))."""
    erf = g.node("Erf", [g.node("Div", [x, g.const(math.sqrt(2.0), np.float32)])])
    one_plus = g.node("Add", [erf, g.const(1.0, np.float32)])
    return g.node("Mul", [g.node("Mul", [x, one_plus]), g.const(0.5, np.float32)])


def _build_bert(g: _Graph, p: dict, ids: str) -> str:
    vocab, seq, h = int(p["vocab"]), int(p["seq_len"]), int(p["hidden"])
    heads, inter = int(p["heads"]), int(p["intermediate"])
    if h % heads:
        raise ValueError(f"bert hidden ({h}) must be divisible by heads ({heads})")
    dh, std = h // heads, _BERT_INIT_STD

    # Any integer id is valid: fold it into [0, vocab) first (Mod follows the divisor's sign).
    ids = g.node("Abs", [g.node("Mod", [ids, g.const(vocab)], fmod=0)])
    word = g.weight("word_embeddings", g.normal((vocab, h), std))
    pos = g.weight("position_embeddings", g.normal((seq, h), std))
    x = g.node("Add", [g.node("Gather", [word, ids], axis=0), pos])
    x = _layer_norm(g, x, h)

    to_heads = g.const([0, 0, heads, dh])  # Reshape's 0 copies N and S from the input
    to_hidden = g.const([0, 0, h])
    scale = g.const(1.0 / math.sqrt(dh), np.float32)
    for _ in range(int(p["layers"])):
        q, k, v = (g.node("Reshape", [g.linear(x, h, h, std, n), to_heads]) for n in "qkv")
        q = g.node("Transpose", [q], perm=[0, 2, 1, 3])  # [N, heads, S, dh]
        k = g.node("Transpose", [k], perm=[0, 2, 3, 1])  # [N, heads, dh, S]
        v = g.node("Transpose", [v], perm=[0, 2, 1, 3])  # [N, heads, S, dh]
        scores = g.node("Mul", [g.node("MatMul", [q, k]), scale])
        ctx = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
        ctx = g.node("Reshape", [g.node("Transpose", [ctx], perm=[0, 2, 1, 3]), to_hidden])
        attn = g.linear(ctx, h, h, std, "attn_out")
        x = _layer_norm(g, g.node("Add", [attn, x]), h)
        ffn = g.linear(_gelu(g, g.linear(x, h, inter, std, "ffn_in")), inter, h, std, "ffn_out")
        x = _layer_norm(g, g.node("Add", [ffn, x]), h)

    first = g.node("Gather", [x, g.const(0)], axis=1)  # [N, H]: the [CLS] token
    w = g.weight("pooler_w", g.normal((h, h), std))
    b = g.weight("pooler_b", np.zeros(h, np.float32))
    return g.node("Tanh", [g.node("Gemm", [first, w, b])])


# --- timeseries ------------------------------------------------------------------------------------


def _build_timeseries(g: _Graph, p: dict, series: str) -> str:
    h, width = int(p["hidden"]), int(p["features"])
    layers, outputs = int(p["layers"]), int(p["outputs"])
    bound = 1.0 / math.sqrt(h)  # PyTorch's LSTM init: U(-1/sqrt(H), 1/sqrt(H))

    # Time-major [S, N, F] with the default layout=0, which every onnxruntime LSTM kernel supports.
    x = g.node("Transpose", [series], perm=[1, 0, 2])
    last_h = ""
    for layer in range(layers):
        w = g.weight("lstm_w", g.uniform((1, 4 * h, width), bound))
        r = g.weight("lstm_r", g.uniform((1, 4 * h, h), bound))
        b = g.weight("lstm_b", g.uniform((1, 8 * h), bound))
        is_last = layer == layers - 1
        # Only the last layer's final hidden state is needed; "" skips the other outputs.
        y = "" if is_last else g.name("lstm_y")
        last_h = g.name("lstm_yh") if is_last else ""
        g.node("LSTM", [x, w, r, b], [y, last_h], hidden_size=h)
        if not is_last:
            x = g.node("Squeeze", [y, g.const([1])])  # [S, 1, N, H] -> [S, N, H]
        width = h

    last = g.node("Squeeze", [last_h, g.const([0])])  # [1, N, H] -> [N, H]
    w = g.weight("head_w", g.normal((h, outputs), math.sqrt(1.0 / h)))
    b = g.weight("head_b", np.zeros(outputs, np.float32))
    return g.node("Gemm", [last, w, b])


_BUILDERS: dict[str, Callable[[_Graph, dict, str], str]] = {
    "resnet": _build_resnet,
    "bert": _build_bert,
    "timeseries": _build_timeseries,
}
