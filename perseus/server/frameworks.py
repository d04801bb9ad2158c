"""Serving frameworks other than Triton, each in a virtual environment of its own under the cache folder.

``perseus servers install mlserver|bentoml`` creates ``$XDG_CACHE_HOME/perseus/servers/<kind>/``
(default ``~/.cache/perseus/servers/<kind>/``) from this Python and installs a pinned, tested set of
packages there from PyPI. A separate environment keeps the framework's own pins (numpy 2, protobuf,
uvicorn) away from perseus's (numpy < 2, which Triton's Python backend needs; ENVIRONMENT.md).

An environment counts as installed only once its marker file (``perseus-install.json``, written
last) names the same pins as this perseus: an interrupted install, or one made by an older perseus
with other pins, is reported as not installed, and installing again starts from an empty folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perseus import children
from perseus.errors import InputError, PerseusError

MARKER = "perseus-install.json"
ONNX = "model.onnx"  # what every framework serves, from a model's <version>/ folder
# pip resolves and downloads a few hundred MB (mlserver 1.7.1: ~400 MB installed): allow minutes.
INSTALL_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Framework:
    kind: str
    pins: tuple[str, ...]  # what `perseus servers install` installs, exactly
    module: str  # imported by the install check, in the framework's environment
    distribution: str  # whose version doctor reports
    ensembles: bool  # whether a Triton ensemble tenant can be served there


# Tested on this project's 2-core VM (CPython 3.11.7, Debian 12): both sets install in under 30 s each
# with a warm pip cache. uvloop 0.22+ breaks MLServer 1.7.1's parallel inference workers
# ("RuntimeError: There is no current event loop" in Worker._ignore_signals), hence its pin.
# onnxruntime is pinned to the version in perseus's own environment, so every kind runs the same kernels.
FRAMEWORKS = {
    "mlserver": Framework(
        "mlserver",
        ("mlserver==1.7.1", "uvloop==0.21.0", "onnxruntime==1.32.0"),
        "mlserver",
        "mlserver",
        ensembles=False,
    ),
    "bentoml": Framework(
        "bentoml",
        ("bentoml==1.4.40", "onnxruntime==1.32.0"),
        "bentoml",
        "bentoml",
        ensembles=False,
    ),
}


def servers_root() -> Path:
    """Where the framework environments live (XDG cache convention, as the price cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perseus" / "servers"


def framework(kind: str) -> Framework:
    if kind not in FRAMEWORKS:
        known = ", ".join(sorted(FRAMEWORKS))
        raise InputError("command line", "KIND", f"unknown server kind {kind!r} (installable: {known})")
    return FRAMEWORKS[kind]


def install_command(kind: str) -> str:
    return f"perseus servers install {kind}"


@dataclass(frozen=True)
class Environment:
    """An installed framework environment."""

    kind: str
    root: Path
    versions: dict[str, str]  # distribution -> version, as installed

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def environment(self, source: dict[str, str] | None = None) -> dict[str, str]:
        """The server's environment, from perseus.children's allowlist (thread-pool sizes included),
        with the framework's bin/ first on PATH. No PYTHONPATH or PYTHONHOME: the framework's own
        Python must not see perseus's packages."""
        env = children.environment(source, names=children.THREAD_NAMES, prefixes=children.THREAD_PREFIXES)
        env["PATH"] = os.pathsep.join(filter(None, [str(self.bin), env.get("PATH")]))
        return env


def installed(kind: str, root: Path | None = None) -> Environment | None:
    """The framework's environment if it is installed with this perseus's pins; None otherwise."""
    spec = FRAMEWORKS[kind]
    root = (root or servers_root()) / kind
    try:
        marker = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("pins") != list(spec.pins) or not (root / "bin" / "python").exists():
        return None
    versions = marker.get("versions")
    return Environment(kind, root, versions if isinstance(versions, dict) else {})


def check_installed(kind: str, source: str, field: str = "server.kind") -> Environment:
    """Up-front check (bad input, exit 2): the kind's environment exists, else the command that makes it."""
    env = installed(kind)
    if env is None:
        verb = "names" if field == "run.servers" else "is"
        raise InputError(
            source, field, f"{verb} {kind!r} but {kind} is not installed: run `{install_command(kind)}` first"
        )
    return env


def _run(argv: list[str], log: Callable[[str], None], timeout_s: float) -> None:
    """One install step: an argv list (no shell), output captured; a failure quotes its last lines."""
    log(" ".join(argv))
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
            env=children.environment(prefixes=("PIP_",)),  # the user's own index settings reach pip
        )
    except subprocess.TimeoutExpired:
        raise PerseusError(f"`{' '.join(argv)}` did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise PerseusError(f"`{' '.join(argv)}` failed (exit code {proc.returncode}):\n{tail}")


def install(
    kind: str, log: Callable[[str], None] = lambda text: None, root: Path | None = None, *, force: bool = False
) -> Environment:
    """Create the kind's environment from an empty folder and install its pins; the marker is written last.

    An environment already installed with these pins is kept as it is, unless ``force``."""
    spec = framework(kind)
    if not force and (done := installed(kind, root)) is not None:
        log(f"{kind} is already installed in {done.root} (--force reinstalls it)")
        return done
    target = (root or servers_root()) / kind
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(target)], log, INSTALL_TIMEOUT_S)
    python = str(target / "bin" / "python")
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *spec.pins], log, INSTALL_TIMEOUT_S)
    probe = f"import {spec.module}, onnxruntime; from importlib.metadata import version; "
    probe += f"print(version({spec.distribution!r}), version('onnxruntime'))"
    proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PerseusError(f"{kind} was installed but does not import: {last}")
    framework_version, ort_version = proc.stdout.split()
    versions = {spec.distribution: framework_version, "onnxruntime": ort_version}
    marker = {"pins": list(spec.pins), "versions": versions, "seconds": round(time.monotonic() - started, 1)}
    (target / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return Environment(kind, target, versions)


def onnx_path(model_dir: Path) -> Path | None:
    """The model's ONNX file: the highest numbered version folder holding one (None without)."""
    if not model_dir.is_dir():
        return None
    versions = sorted(
        (p for p in model_dir.iterdir() if p.name.isdigit() and (p / ONNX).is_file()), key=lambda p: int(p.name)
    )
    return versions[-1] / ONNX if versions else None


def check_servable(kind: str, models: list[tuple[int, str, bool]], repo: Path, source: str) -> None:
    """Each tenant's model can run on ``kind``: ``models`` holds (tenant index, model, is an ensemble)."""
    spec = FRAMEWORKS[kind]
    for i, model, ensemble in models:
        if ensemble and not spec.ensembles:
            raise InputError(
                source,
                f"tenants[{i}].model",
                f"{model!r} is a Triton ensemble; {kind} has no ensembles here (use server.kind = 'triton')",
            )
        if not ensemble and onnx_path(repo / model) is None:
            raise InputError(
                source, f"tenants[{i}].model", f"{kind} serves ONNX models, and {model!r} has no <version>/{ONNX}"
            )
