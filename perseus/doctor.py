"""`perseus doctor`: what this machine has, and the fix for each problem."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from rich.console import Console
from rich.table import Table

# On stdout, so `perseus doctor | less` and `perseus doctor > report.txt` hold the table.
console = Console()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # works, but something a user may need is missing (not a problem: exit 0)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_tritonserver() -> Check:
    from perseus.errors import ServerError
    from perseus.server.binary import find_install

    try:
        install = find_install()
    except ServerError as exc:
        return Check("tritonserver", False, str(exc), "pip install nvidia-pytriton==0.7.0")
    version = _version("nvidia-pytriton")
    server = "2.51.0" if version == "0.7.0" else "unknown"
    return Check("tritonserver", True, f"{install.binary} (Triton {server}, from nvidia-pytriton {version})")


def check_backend_python() -> Check:
    """The Python backend stub imports numpy and onnxruntime from this interpreter's environment."""
    probe = "import numpy, onnxruntime; print(numpy.__version__, onnxruntime.__version__)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        return Check(
            "python backend",
            False,
            proc.stderr.strip().splitlines()[-1] if proc.stderr else "import failed",
            "pip install 'numpy<2' onnxruntime",
        )
    numpy_v, ort_v = proc.stdout.split()
    if int(numpy_v.split(".")[0]) >= 2:
        return Check(
            "python backend",
            False,
            f"numpy {numpy_v}: the Triton Python backend stub returns empty tensors with numpy 2",
            "pip install 'numpy<2'",
        )
    return Check("python backend", True, f"{sys.executable}: numpy {numpy_v}, onnxruntime {ort_v}")


def check_gpu(found: list[dict], note: str | None) -> Check:
    if found:
        names = ", ".join(f"{g['name']} ({g['memory_gb']} GiB)" for g in found)
        return Check("gpu", True, f"{names}; driver {found[0]['driver']}")
    # No GPU is a valid setup (CPU runs), so this is information, not a problem.
    # The note already says "no NVIDIA GPU: ..." when NVML is there without a GPU; say "no GPU" once.
    return Check("gpu", True, note if note and note.lower().startswith("no ") else f"no GPU: {note}")


CUDA_PROVIDER = "CUDAExecutionProvider"


def backend_providers() -> list[str] | None:
    """The execution providers of the onnxruntime the Python backend imports (this interpreter's), or None."""
    probe = "import onnxruntime; print(','.join(onnxruntime.get_available_providers()))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60)
    return proc.stdout.strip().split(",") if proc.returncode == 0 and proc.stdout.strip() else None


def check_gpu_provider(has_gpu: bool, providers: list[str] | None) -> Check:
    """On a GPU host, the backend needs onnxruntime-gpu: without CUDAExecutionProvider a GPU run is refused."""
    listed = ", ".join(providers) if providers else "onnxruntime not importable"
    if CUDA_PROVIDER in (providers or []):
        return Check("onnxruntime-gpu", True, f"{CUDA_PROVIDER} available ({listed})")
    if not has_gpu:
        return Check("onnxruntime-gpu", True, f"not needed without a GPU (this onnxruntime: {listed})")
    return Check(
        "onnxruntime-gpu",
        False,
        f"a GPU is here but onnxruntime has no {CUDA_PROVIDER} ({listed}): GPU runs are refused",
        "pip uninstall -y onnxruntime && pip install onnxruntime-gpu",
    )


def check_ports() -> Check:
    from perseus.ports import free_ports

    try:
        ports = free_ports(3)
    except OSError as exc:
        return Check("ports", False, f"cannot bind 127.0.0.1: {exc}", "check the loopback interface")
    return Check("ports", True, f"free loopback ports available (e.g. {', '.join(map(str, ports))})")


def check_clients() -> Check:
    missing = [n for n in ("tritonclient", "locust", "geventhttpclient") if _version(n) is None]
    if missing:
        return Check("clients", False, f"missing: {', '.join(missing)}", "pip install -e .")
    return Check(
        "clients",
        True,
        f"tritonclient {_version('tritonclient')}, locust {_version('locust')}",
    )


def check_docker() -> Check:
    """Only launcher = 'docker' needs Docker, so its absence is information, not a problem."""
    from perseus.scenario import DEFAULT_DOCKER_IMAGE
    from perseus.server.docker import docker_status

    client, version, problem = docker_status()
    if version is not None:
        return Check("docker", True, f"{client}, daemon {version} (for launcher = 'docker': {DEFAULT_DOCKER_IMAGE})")
    fix = "install Docker" if client is None else "start the Docker daemon, or check DOCKER_HOST"
    return Check("docker", True, f"{problem}; needed only for launcher = 'docker'", fix, warn=True)


def check_frameworks() -> list[Check]:
    """MLServer and BentoML are needed only for their server.kind, so their absence is information."""
    from perseus.server import frameworks

    out = []
    for kind in frameworks.FRAMEWORKS:
        env = frameworks.installed(kind)
        if env is None:
            detail = f"not installed; needed only for server.kind = '{kind}'"
            out.append(Check(kind, True, detail, frameworks.install_command(kind)))
        else:
            versions = ", ".join(f"{name} {version}" for name, version in env.versions.items())
            out.append(Check(kind, True, f"{env.root}: {versions}"))
    return out


def checks() -> list[Check]:
    from perseus.telemetry.gpu import gpus

    found, note = gpus()
    return [
        check_tritonserver(),
        check_backend_python(),
        check_gpu(found, note),
        check_gpu_provider(bool(found), backend_providers()),
        check_ports(),
        check_clients(),
        check_docker(),
        *check_frameworks(),
    ]


def status(check: Check) -> str:
    """ "problem" (exit 1), "warn" (works, something optional is missing) or "ok"."""
    return "problem" if not check.ok else ("warn" if check.warn else "ok")


STYLE = {"ok": "green", "warn": "yellow", "problem": "red"}


def render(results: list[Check], out: Console | None = None) -> list[Check]:
    """The table on stdout; returns the problems."""
    table = Table(title="perseus doctor")
    for col in ("check", "status", "detail", "fix"):
        # Fold, not cut: a path in the detail must stay whole to be of use.
        table.add_column(col, overflow="fold")
    for c in results:
        word = status(c)
        table.add_row(c.name, f"[{STYLE[word]}]{word}[/]", c.detail, c.fix)
    (out or console).print(table)
    return [c for c in results if not c.ok]
