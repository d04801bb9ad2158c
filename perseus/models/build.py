"""Write zoo models into a Triton model repository.

Layout of one model directory::

    <repo>/<name>/config.pbtxt              Python backend (the bundled CPU tritonserver)
    <repo>/<name>/configs/onnxruntime.pbtxt ONNX Runtime backend (--model-config-name=onnxruntime)
    <repo>/<name>/recipe.toml               how to rebuild model.onnx
    <repo>/<name>/1/model.py                perseus/models/backend_model.py, written by every build
    <repo>/<name>/1/model.onnx              built on demand

Only recipe.toml and the two configs are committed. ``1/model.py`` and ``1/model.onnx`` are generated
(and ignored by git), so backend_model.py is the one source of the backend model: a folder whose
``1/model.py`` is missing or differs from it counts as not built (``missing_models``), and the next
``perseus run`` or ``perseus models build`` rewrites it.

``recipe.toml`` holds ``kind``, ``seed``, ``max_batch_size``, ``description`` and a ``[params]``
table. Files are written atomically and only when their content changes, so a build is idempotent
and a server reading the repository never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

from perseus.errors import InputError
from perseus.models.config import render_config
from perseus.models.zoo import RECIPES, Recipe, build_onnx, signature

CONFIG_FILE = "config.pbtxt"
ONNXRUNTIME_CONFIG_FILE = Path("configs") / "onnxruntime.pbtxt"
RECIPE_FILE = "recipe.toml"
VERSION = "1"
BACKEND_FILE = Path(VERSION) / "model.py"
ONNX_FILE = Path(VERSION) / "model.onnx"

_BACKEND_SOURCE = Path(__file__).with_name("backend_model.py")
_RECIPE_KEYS = {"kind", "seed", "max_batch_size", "description", "params"}


def build_model(
    repo: Path,
    name: str,
    recipe: Recipe | None = None,
    *,
    force: bool = False,
    write_onnx: bool = True,
) -> Path:
    """Write model ``name`` into ``repo`` and return its directory.

    ``recipe`` None reads ``repo/name/recipe.toml``, or else takes the registry's recipe of that name.
    ``model.onnx`` is built only when missing, when ``force``, or when the recipe on disk changed.
    """
    model_dir = Path(repo) / name
    recipe_path = model_dir / RECIPE_FILE
    on_disk = None
    if recipe_path.is_file():
        try:
            on_disk = read_recipe(recipe_path)
        except InputError:
            if recipe is None:
                raise
            # An explicit recipe replaces a malformed one on disk.
    if recipe is None:
        if on_disk is None and name not in RECIPES:
            raise InputError(recipe_path, None, f"no recipe for model {name!r}")
        recipe = on_disk or RECIPES[name]
    signature(recipe)  # rejects an unknown kind before anything is written

    # Compare as rendered text: a hand-written recipe.toml (comments, tuples vs lists) that means the
    # same recipe is left alone, and its model.onnx is not rebuilt.
    recipe_changed = on_disk is None or recipe_to_toml(on_disk) != recipe_to_toml(recipe)
    if recipe_changed:
        _write_text(recipe_path, recipe_to_toml(recipe))
    _write_text(model_dir / CONFIG_FILE, render_config(name, recipe, "python"))
    # The native ONNX Runtime config is for GPU hosts running the NGC image (--model-config-name=onnxruntime).
    _write_text(
        model_dir / ONNXRUNTIME_CONFIG_FILE, render_config(name, recipe, "onnxruntime", instance_kind="KIND_GPU")
    )
    _write_text(model_dir / BACKEND_FILE, _backend_source())

    onnx_path = model_dir / ONNX_FILE
    stale = force or recipe_changed
    if write_onnx and (stale or not onnx_path.exists()):
        _write_bytes(onnx_path, build_onnx(recipe).SerializeToString())
    elif stale:
        onnx_path.unlink(missing_ok=True)  # never leave weights that do not match recipe.toml
    return model_dir


def missing_models(repo: Path, names: Iterable[str]) -> list[str]:
    """Names whose directory has a recipe.toml but is not fully built: no model.onnx, or a 1/model.py
    that is missing or not backend_model.py's current text (a fresh clone, or an older perseus)."""
    repo = Path(repo)
    return [name for name in names if (repo / name / RECIPE_FILE).is_file() and not _is_built(repo / name)]


def _is_built(model_dir: Path) -> bool:
    if not (model_dir / ONNX_FILE).is_file():
        return False
    try:
        return (model_dir / BACKEND_FILE).read_text() == _backend_source()
    except (OSError, UnicodeDecodeError):  # missing, a folder, unreadable: all rebuilt the same way
        return False


def _backend_source() -> str:
    return _BACKEND_SOURCE.read_text()


def read_recipe(path: Path) -> Recipe:
    """Read a recipe.toml; raise InputError naming the file and field when it is malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(path, None, f"cannot read recipe: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"invalid TOML: {exc}") from exc

    unknown = sorted(set(data) - _RECIPE_KEYS)
    if unknown:
        raise InputError(path, unknown[0], f"unknown key (expected {sorted(_RECIPE_KEYS)})")
    expected_types = {
        "kind": str,
        "seed": int,
        "max_batch_size": int,
        "description": str,
        "params": dict,
    }
    for key, kind in expected_types.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise InputError(path, key, f"expected {kind.__name__}, got {data[key]!r}")
    if "kind" not in data:
        raise InputError(path, "kind", "missing")
    recipe = Recipe(
        kind=data["kind"],
        params=data.get("params", {}),
        seed=data.get("seed", 0),
        max_batch_size=data.get("max_batch_size", 32),
        description=data.get("description", ""),
    )
    try:
        signature(recipe)
    except ValueError as exc:
        raise InputError(path, "kind", str(exc)) from exc
    except (KeyError, TypeError) as exc:
        raise InputError(path, "params", f"missing or invalid size parameter: {exc}") from exc
    if recipe.max_batch_size < 0:
        raise InputError(path, "max_batch_size", "must be >= 0")
    return recipe


def recipe_to_toml(recipe: Recipe) -> str:
    """The recipe as recipe.toml text (read back by read_recipe)."""
    lines = [
        f"kind = {_toml_value(recipe.kind)}",
        f"seed = {_toml_value(recipe.seed)}",
        f"max_batch_size = {_toml_value(recipe.max_batch_size)}",
        f"description = {_toml_value(recipe.description)}",
        "",
        "[params]",
        *(f"{key} = {_toml_value(value)}" for key, value in recipe.params.items()),
    ]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    # Only what recipes hold: scalars and (nested) lists. A JSON string is a valid TOML basic string.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"recipe values must be finite, got {value}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to recipe.toml")


def _write_text(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it; return whether the file changed."""
    try:
        if path.read_text() == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    _write_bytes(path, text.encode())
    return True


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic write: a temporary file in the same directory, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
