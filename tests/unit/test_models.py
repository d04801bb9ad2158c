"""The model zoo: ONNX graphs, Triton configs, repository layout, and the Python-backend model."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from perseus.errors import InputError
from perseus.models import (
    RECIPES,
    Recipe,
    build_model,
    build_onnx,
    expected_param_count,
    missing_models,
    param_count,
    parse_config,
    read_recipe,
    recipe_to_toml,
    render_config,
    signature,
)
from perseus.models.ensure import ensure_built

TINY = ["resnet_tiny", "bert_tiny", "lstm_tiny"]
SMALL = ["resnet", "bert", "lstm"]
NUMPY_DTYPES = {"FP32": np.float32, "INT64": np.int64}
ROOT = Path(__file__).resolve().parents[2]
REPO_MODELS = ROOT / "model_repository"
BACKEND_SOURCE = ROOT / "perseus/models/backend_model.py"


def _example_inputs(recipe: Recipe, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in signature(recipe)[0]:
        shape = (batch, *spec.dims)
        if spec.dtype == "INT64":
            # Negative and out-of-vocabulary ids too: the graph folds any id into the vocabulary.
            feed[spec.name] = rng.integers(-(10**6), 10**6, shape, dtype=np.int64)
        else:
            feed[spec.name] = rng.standard_normal(shape, dtype=np.float32)
    return feed


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, onnx.ModelProto]:
    return {name: build_onnx(RECIPES[name]) for name in TINY}


# --- graphs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_tiny_model_runs_with_finite_outputs_of_the_signature_shape(name, tiny_models):
    recipe = RECIPES[name]
    model = tiny_models[name]
    onnx.checker.check_model(model)
    inputs, outputs = signature(recipe)
    assert [i.name for i in model.graph.input] == [s.name for s in inputs]
    assert [o.name for o in model.graph.output] == [s.name for s in outputs]

    results = _session(model).run(None, _example_inputs(recipe, batch=2))

    assert len(results) == len(outputs)
    for result, spec in zip(results, outputs, strict=True):
        assert result.shape == (2, *spec.dims)
        assert result.dtype == NUMPY_DTYPES[spec.dtype]
        assert np.isfinite(result).all()
        assert not np.allclose(result[0], result[1]), "different inputs should give different outputs"


@pytest.mark.parametrize("name", TINY)
def test_batch_dimension_is_dynamic_and_rows_are_independent(name, tiny_models):
    recipe = RECIPES[name]
    session = _session(tiny_models[name])
    feed = _example_inputs(recipe, batch=3)
    together = session.run(None, feed)[0]
    alone = session.run(None, {k: v[1:2] for k, v in feed.items()})[0]
    np.testing.assert_allclose(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_build_is_deterministic_per_seed():
    recipe = RECIPES["bert_tiny"]
    assert build_onnx(recipe).SerializeToString() == build_onnx(recipe).SerializeToString()
    other = build_onnx(replace(recipe, seed=recipe.seed + 1))
    assert other.SerializeToString() != build_onnx(recipe).SerializeToString()


def test_graphs_use_opset_17_and_an_ir_version_onnxruntime_reads(tiny_models):
    for model in tiny_models.values():
        assert {o.domain: o.version for o in model.opset_import}[""] == 17
        assert model.ir_version <= onnx.IR_VERSION
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_bert_graph_has_the_named_building_blocks(tiny_models):
    ops = {node.op_type for node in tiny_models["bert_tiny"].graph.node}
    assert {"Mod", "Abs", "Gather", "Softmax", "LayerNormalization", "Erf", "Tanh"} <= ops


def test_resnet_and_lstm_graphs_use_their_named_ops(tiny_models):
    resnet_ops = {node.op_type for node in tiny_models["resnet_tiny"].graph.node}
    assert {"Conv", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm"} <= resnet_ops
    assert "LSTM" in {node.op_type for node in tiny_models["lstm_tiny"].graph.node}


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown model kind"):
        build_onnx(Recipe(kind="gpt", params={}))


# --- sizes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY + SMALL)
def test_analytic_param_count_matches_the_built_graph(name):
    recipe = RECIPES[name]
    assert param_count(build_onnx(recipe)) == expected_param_count(recipe)


def test_resnet50_has_resnet50_parameter_count():
    # Built for real (about 1 s): 25.56M in torchvision; folding BN into conv biases gives 25.53M.
    model = build_onnx(RECIPES["resnet50"])
    assert param_count(model) == expected_param_count(RECIPES["resnet50"])
    assert abs(param_count(model) - 25.5e6) <= 0.5e6


def test_bert_base_has_bert_base_parameter_count():
    # Analytic only: building it takes seconds and ~600 MB. 110M in the paper; this graph has
    # position embeddings for 128 tokens (not 512) and no token-type embeddings.
    assert abs(expected_param_count(RECIPES["bert_base"]) - 109e6) <= 3e6


def test_registry_has_the_documented_models():
    assert set([*TINY, *SMALL, "resnet50", "bert_base"]) <= set(RECIPES)
    for recipe in RECIPES.values():
        assert recipe.description
        assert recipe.max_batch_size > 0


# --- Triton config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TINY, "resnet50", "bert_base"])
@pytest.mark.parametrize("platform", ["python", "onnxruntime"])
def test_rendered_config_parses_back_with_the_signature(name, platform):
    recipe = RECIPES[name]
    cfg = parse_config(render_config(name, recipe, platform))

    assert cfg.name == name
    assert cfg.max_batch_size == recipe.max_batch_size
    inputs, outputs = signature(recipe)
    for got, want in [(cfg.input, inputs), (cfg.output, outputs)]:
        assert [t.name for t in got] == [s.name for s in want]
        assert [mc.DataType.Name(t.data_type) for t in got] == [f"TYPE_{s.dtype}" for s in want]
        assert [tuple(t.dims) for t in got] == [s.dims for s in want]
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(1, mc.ModelInstanceGroup.KIND_CPU)]
    assert cfg.HasField("dynamic_batching")
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 0
    if platform == "python":
        assert cfg.backend == "python" and not cfg.platform
        assert cfg.parameters["intra_op_num_threads"].string_value == "1"
    else:
        assert cfg.platform == "onnxruntime_onnx" and not cfg.backend
        assert cfg.default_model_filename == "model.onnx"


def test_config_options_and_unbatched_models():
    recipe = replace(RECIPES["lstm_tiny"], max_batch_size=0)
    cfg = parse_config(render_config("m", recipe, "onnxruntime", instance_kind="KIND_GPU", instance_count=2))
    assert cfg.max_batch_size == 0
    # Triton then passes whole tensors, so the graph's own batch axis appears as a variable dim.
    assert [tuple(t.dims) for t in cfg.input] == [(-1, *signature(recipe)[0][0].dims)]
    assert [tuple(t.dims) for t in cfg.output] == [(-1, *signature(recipe)[1][0].dims)]
    assert not cfg.HasField("dynamic_batching"), "Triton rejects dynamic batching without batching"
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, mc.ModelInstanceGroup.KIND_GPU)]
    with pytest.raises(ValueError):
        render_config("m", recipe, "tensorrt")


# --- repository ------------------------------------------------------------------------------------

EXPECTED_FILES = [
    "config.pbtxt",
    "configs/onnxruntime.pbtxt",
    "recipe.toml",
    "1/model.py",
    "1/model.onnx",
]


@pytest.mark.parametrize("name", TINY)
def test_build_model_writes_the_layout_and_is_idempotent(tmp_path, name):
    model_dir = build_model(tmp_path, name, RECIPES[name])

    assert model_dir == tmp_path / name
    for rel in EXPECTED_FILES:
        assert (model_dir / rel).is_file(), rel
    assert parse_config((model_dir / "config.pbtxt").read_text()).backend == "python"
    assert parse_config((model_dir / "configs/onnxruntime.pbtxt").read_text()).name == name
    assert (model_dir / "1/model.py").read_text() == BACKEND_SOURCE.read_text()
    onnx.checker.check_model(str(model_dir / "1/model.onnx"))

    before = {rel: (model_dir / rel).stat().st_mtime_ns for rel in EXPECTED_FILES}
    build_model(tmp_path, name, RECIPES[name])
    build_model(tmp_path, name)  # recipe from recipe.toml
    assert {rel: (model_dir / rel).stat().st_mtime_ns for rel in EXPECTED_FILES} == before


def test_build_model_force_and_changed_recipe_rebuild_the_onnx(tmp_path):
    recipe = RECIPES["lstm_tiny"]
    onnx_path = build_model(tmp_path, "m", recipe) / "1/model.onnx"
    first = onnx_path.read_bytes()

    build_model(tmp_path, "m", recipe, force=True)
    assert onnx_path.read_bytes() == first  # same seed, same bytes

    build_model(tmp_path, "m", replace(recipe, seed=7))
    assert onnx_path.read_bytes() != first
    assert read_recipe(tmp_path / "m/recipe.toml").seed == 7

    # A changed recipe without building drops the now-stale weights.
    build_model(tmp_path, "m", replace(recipe, seed=8), write_onnx=False)
    assert not onnx_path.exists()
    assert missing_models(tmp_path, ["m"]) == ["m"]


def test_build_model_without_onnx_and_missing_models(tmp_path):
    build_model(tmp_path, "bert_base", write_onnx=False)  # registry recipe, no 440 MB build
    build_model(tmp_path, "lstm_tiny")
    (tmp_path / "not_a_zoo_model").mkdir()

    assert not (tmp_path / "bert_base/1/model.onnx").exists()
    assert (tmp_path / "bert_base/config.pbtxt").is_file()
    names = ["bert_base", "lstm_tiny", "not_a_zoo_model", "absent"]
    assert missing_models(tmp_path, names) == ["bert_base"]


@pytest.mark.parametrize("damage", ["missing", "stale"])
def test_a_missing_or_stale_model_py_counts_as_not_built_and_is_rewritten(tmp_path, damage):
    """1/model.py is generated, not committed: a fresh clone lacks it, an older build has an old copy."""
    model_dir = build_model(tmp_path, "lstm_tiny")
    backend, onnx_path = model_dir / "1/model.py", model_dir / "1/model.onnx"
    weights = onnx_path.stat().st_mtime_ns
    if damage == "missing":
        backend.unlink()
    else:
        backend.write_text(BACKEND_SOURCE.read_text().replace("onnxruntime", "an older onnxruntime", 1))
    assert missing_models(tmp_path, ["lstm_tiny"]) == ["lstm_tiny"]

    assert ensure_built(tmp_path, ["lstm_tiny"]) == [model_dir]  # what `perseus run` calls
    assert backend.read_text() == BACKEND_SOURCE.read_text()
    assert onnx_path.stat().st_mtime_ns == weights  # the recipe did not change: the weights are kept
    assert missing_models(tmp_path, ["lstm_tiny"]) == []


def test_models_build_rewrites_a_stale_model_py(tmp_path):
    """`perseus models build` (build_model with the recipe on disk) rewrites an old copy too."""
    model_dir = build_model(tmp_path, "lstm_tiny", write_onnx=False)
    (model_dir / "1/model.py").write_text("# an old backend model\n")
    build_model(tmp_path, "lstm_tiny", write_onnx=False)
    assert (model_dir / "1/model.py").read_text() == BACKEND_SOURCE.read_text()


def test_build_model_without_any_recipe_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no recipe"):
        build_model(tmp_path, "mystery")


@pytest.mark.parametrize("name", list(RECIPES))
def test_read_recipe_round_trips(tmp_path, name):
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_to_toml(RECIPES[name]))
    assert read_recipe(path) == RECIPES[name]


def test_read_recipe_accepts_hand_written_toml_and_rejects_bad_ones(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(
        '# a comment\nkind = "timeseries"\n\n[params]\nseq_len = 4\nfeatures = 2\nhidden = 3\nlayers = 1\noutputs = 1\n'
    )
    recipe = read_recipe(path)
    assert (recipe.kind, recipe.seed, recipe.max_batch_size) == ("timeseries", 0, 32)

    for text, field in [
        ('kind = "timeseries"\ntypo = 1\n', "typo"),
        ('kind = "gpt"\n', "kind"),
        ("seed = 1\n", "kind"),
        ('kind = "bert"\nseed = "one"\n', "seed"),
        ('kind = "bert"\n[params]\nvocab = 10\n', "params"),
    ]:
        path.write_text(text)
        with pytest.raises(InputError) as info:
            read_recipe(path)
        assert info.value.field == field, text
    path.write_text("kind = \n")
    with pytest.raises(InputError, match="invalid TOML"):
        read_recipe(path)


def test_committed_repository_matches_the_registry():
    """model_repository/ holds every registry model's recipe and configs (1/ is generated)."""
    if not REPO_MODELS.is_dir():
        pytest.skip("no model_repository/ in this checkout")
    for name, recipe in RECIPES.items():
        model_dir = REPO_MODELS / name
        assert read_recipe(model_dir / "recipe.toml") == recipe, name
        assert (model_dir / "config.pbtxt").read_text() == render_config(name, recipe, "python")
        assert (model_dir / "configs/onnxruntime.pbtxt").read_text() == render_config(
            name, recipe, "onnxruntime", instance_kind="KIND_GPU"
        )


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


def test_git_holds_one_backend_model_and_every_hand_written_one():
    """No committed copy of backend_model.py; every Python model that no recipe builds is committed."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    source = BACKEND_SOURCE.read_text()
    tracked = set(_git("ls-files", "model_repository").stdout.splitlines())
    for model_dir in sorted(p for p in REPO_MODELS.iterdir() if (p / "config.pbtxt").is_file()):
        rel = f"model_repository/{model_dir.name}/1/model.py"
        ignored = _git("check-ignore", "-q", "--no-index", rel).returncode == 0
        if (model_dir / "recipe.toml").is_file():
            assert rel not in tracked, f"{rel}: a committed copy of backend_model.py (it is generated)"
            assert ignored, f"{rel}: generated, so .gitignore must ignore it"
        elif parse_config((model_dir / "config.pbtxt").read_text()).backend == "python":
            assert not ignored, f"{rel}: hand-written, so .gitignore must not ignore it (add a ! line)"
            assert (model_dir / "1/model.py").read_text() != source, f"{rel}: a copy; give it a recipe.toml"


# --- the Python-backend model.py, run against a stand-in for triton_python_backend_utils -----------


class _FakeTensor:
    def __init__(self, name, array):
        self._name, self._array = name, array

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


class _FakeResponse:
    def __init__(self, output_tensors, error=None):
        self.output_tensors, self.error = output_tensors, error


class _FakeError:
    def __init__(self, message):
        self.message = message


class _FakeRequest:
    def __init__(self, tensors):
        self.tensors = tensors


def _fake_pb_utils():
    """A test double for the module that only exists inside Triton's Python backend stub."""
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = _FakeTensor
    module.InferenceResponse = _FakeResponse
    module.TritonError = _FakeError
    module.get_input_tensor_by_name = lambda request, name: (
        _FakeTensor(name, request.tensors[name]) if name in request.tensors else None
    )
    module.triton_string_to_numpy = lambda s: {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64}[s]
    return module


def config_dims(recipe, specs):
    """The tensors as Triton's JSON model config lists them (as render_config writes them)."""
    cfg = parse_config(render_config("m", recipe))
    by_name = {t.name: list(t.dims) for t in [*cfg.input, *cfg.output]}
    return [{"name": s.name, "data_type": f"TYPE_{s.dtype}", "dims": by_name[s.name]} for s in specs]


@pytest.fixture
def triton_model(tmp_path, monkeypatch):
    """Load <repo>/<name>/1/model.py the way the Python backend does, with the double above."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_pb_utils())

    def load(name, recipe=None, *, built=True):
        recipe = recipe or RECIPES[name]
        model_dir = build_model(tmp_path, name, recipe, write_onnx=built)
        spec = importlib.util.spec_from_file_location(f"model_{name}", model_dir / "1/model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        inputs, outputs = (config_dims(recipe, specs) for specs in signature(recipe))
        config = {
            "name": name,
            "max_batch_size": recipe.max_batch_size,
            "input": inputs,
            "output": outputs,
            "parameters": {"intra_op_num_threads": {"string_value": "1"}},
        }
        model = module.TritonPythonModel()
        model.initialize(
            {
                "model_config": json.dumps(config),
                "model_repository": str(model_dir),
                "model_version": "1",
                "model_instance_kind": "CPU",
                "model_instance_device_id": "0",
            }
        )
        return model, (_session(build_onnx(recipe)) if built else None)

    return load


def test_backend_model_batches_requests_and_splits_the_outputs(triton_model):
    model, reference = triton_model("bert_tiny")
    feeds = [_example_inputs(RECIPES["bert_tiny"], batch=b, seed=b) for b in (1, 3, 2)]

    responses = model.execute([_FakeRequest(feed) for feed in feeds])

    assert len(responses) == 3
    for feed, response in zip(feeds, responses, strict=True):
        assert response.error is None
        [tensor] = response.output_tensors
        assert tensor.name() == "pooled"
        np.testing.assert_allclose(tensor.as_numpy(), reference.run(None, feed)[0], rtol=1e-4, atol=1e-5)
    model.finalize()


def test_backend_model_isolates_a_bad_request(triton_model):
    model, _ = triton_model("resnet_tiny")
    good = _example_inputs(RECIPES["resnet_tiny"], batch=1)
    wrong_shape = {"image": np.zeros((1, 3, 5, 5), np.float32)}

    responses = model.execute([_FakeRequest(good), _FakeRequest(wrong_shape), _FakeRequest({})])

    assert responses[0].error is None and responses[0].output_tensors[0].as_numpy().shape == (1, 10)
    assert responses[1].error is not None and responses[1].output_tensors == []
    assert "missing input" in responses[2].error.message


def test_backend_model_serves_unbatched_models(triton_model):
    recipe = replace(RECIPES["lstm_tiny"], max_batch_size=0)
    model, reference = triton_model("lstm_tiny", recipe)
    # Without batching the request carries the full model shape, here with N = 1 for the ONNX graph.
    feed = _example_inputs(recipe, batch=1)
    [response] = model.execute([_FakeRequest(feed)])
    assert response.error is None
    np.testing.assert_allclose(response.output_tensors[0].as_numpy(), reference.run(None, feed)[0], rtol=1e-5)


def test_backend_model_says_when_the_onnx_file_is_not_built(triton_model):
    with pytest.raises(FileNotFoundError, match="not built yet"):
        triton_model("lstm_tiny", built=False)
