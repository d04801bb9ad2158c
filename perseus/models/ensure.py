"""Build what a run or the user asks for, on top of ``build.build_model``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from perseus.models.build import RECIPE_FILE, build_model, missing_models


def _quiet(text: str) -> None:
    pass


def ensure_built(repo: Path, names: Iterable[str], say: Callable[[str], None] = _quiet) -> list[Path]:
    """Build the model folders a run needs that are missing or stale (no model.onnx, or a 1/model.py that is
    not backend_model.py); ``perseus run`` calls this.

    ``say`` gets one line per model built (the command layer prints it)."""
    built = []
    for name in dict.fromkeys(missing_models(repo, names)):
        say(f"building model {name} (seeded random weights) into {repo}")
        built.append(build_model(repo, name))
    return built


def build_all(
    repo: Path, names: Iterable[str] | None = None, *, force: bool = False, say: Callable[[str], None] = _quiet
) -> list[Path]:
    """Build the named models, or every model in ``repo`` that has a recipe."""
    repo = Path(repo)
    if names is None:
        names = sorted(p.parent.name for p in repo.glob(f"*/{RECIPE_FILE}"))
    out = []
    for name in names:
        say(f"building {name}")
        out.append(build_model(repo, name, force=force))
    return out
