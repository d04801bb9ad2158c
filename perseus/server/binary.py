"""Locate the tritonserver binary that ships inside the nvidia-pytriton wheel, and its environment.

PyTriton's Python API is not used: we run its bundled Triton Inference Server directly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from perseus import children
from perseus.errors import ServerError

# What the server gets of perseus's environment, besides perseus.children's base (PATH, HOME, TMPDIR,
# locale, TZ, LD_LIBRARY_PATH, CUDA_*, NVIDIA_*): thread-pool sizes, which numpy and onnxruntime in
# the model code read. Nothing else: no credentials (the server and its model code have no use for
# them), and no PYTHONPATH or PYTHONHOME, which would mix another Python's packages into the stub's.
SERVER_NAMES = children.THREAD_NAMES
SERVER_PREFIXES = children.THREAD_PREFIXES


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    libs: Path  # the wheel's bundled shared libraries
    python_backend: Path  # backends/python/
    stub: Path  # triton_python_backend_stub for this CPython minor version

    def environment(self, source: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for the server process, built from an allowlist of ``source`` (default: ours).

        The Python backend stub imports model code with the first ``python3`` on PATH, so this
        interpreter's bin/ goes first (PYTHONPATH alone is not enough; see ENVIRONMENT.md), and the
        wheel's shared libraries go first on LD_LIBRARY_PATH.
        """
        env = children.environment(source, names=SERVER_NAMES, prefixes=SERVER_PREFIXES)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(self.libs), env.get("LD_LIBRARY_PATH")]))
        env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
        return env

    def make_backend_dir(self, root: Path) -> Path:
        """A backend directory holding python/ = the wheel's Python backend plus the matching stub."""
        target = root / "python"
        target.mkdir(parents=True, exist_ok=True)
        for item in self.python_backend.iterdir():
            if item.is_file():
                _link_or_copy(item, target / item.name)
        _link_or_copy(self.stub, target / self.stub.name)
        return root


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        return
    try:
        dst.symlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def find_install() -> TritonInstall:
    """Find the bundled server; raise ServerError with the fix when it is missing."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("tritonserver not found: install it with `pip install nvidia-pytriton==0.7.0`")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    root = pkg / "tritonserver"
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        libs=pkg.parent / "nvidia_pytriton.libs",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / minor / "triton_python_backend_stub",
    )
    for path in (install.binary, install.libs, install.python_backend, install.stub):
        if not path.exists():
            raise ServerError(f"incomplete nvidia-pytriton install: {path} is missing (reinstall the wheel)")
    return install
