"""`perseus doctor`: what this machine has, and the fix for each problem."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from rich.table import Table

from perseus.display import console


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


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


def check_gpu() -> Check:
    from perseus.telemetry.gpu import gpus

    found, note = gpus()
    if found:
        names = ", ".join(f"{g['name']} ({g['memory_gb']} GiB)" for g in found)
        return Check("gpu", True, f"{names}; driver {found[0]['driver']}")
    # No GPU is a valid setup (CPU runs), so this is information, not a problem.
    return Check("gpu", True, f"no GPU: {note}")


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
    return Check("docker", True, f"{problem}; needed only for launcher = 'docker'", fix)


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
    return [
        check_tritonserver(),
        check_backend_python(),
        check_gpu(),
        check_ports(),
        check_clients(),
        check_docker(),
        *check_frameworks(),
    ]


def render(results: list[Check]) -> list[Check]:
    table = Table(title="perseus doctor")
    for col in ("check", "status", "detail", "fix"):
        table.add_column(col)
    for c in results:
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[red]problem[/]", c.detail, c.fix)
    console.print(table)
    return [c for c in results if not c.ok]
