"""Build what a run or the user asks for, on top of ``build.build_model``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from perseus.models.build import RECIPE_FILE, build_model, missing_models
from perseus.progress import console


def ensure_built(repo: Path, names: Iterable[str]) -> list[Path]:
    """Build the ONNX files a run needs that are not built yet (``perseus run`` calls this)."""
    built = []
    for name in dict.fromkeys(missing_models(repo, names)):
        console.print(f"building model {name} (seeded random weights) into {repo}")
        built.append(build_model(repo, name))
    return built


def build_all(repo: Path, names: Iterable[str] | None = None, *, force: bool = False) -> list[Path]:
    """Build the named models, or every model in ``repo`` that has a recipe."""
    repo = Path(repo)
    if names is None:
        names = sorted(p.parent.name for p in repo.glob(f"*/{RECIPE_FILE}"))
    out = []
    for name in names:
        console.print(f"building {name}")
        out.append(build_model(repo, name, force=force))
    return out
