"""Servers behind one small interface: local, docker and remote Triton, and MLServer and BentoML (server.kind)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Does ``url`` answer 200? (Triton's health and readiness endpoints.) Any failure is a no."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a server URL we built or were given
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Server(Protocol):
    """A running server (Triton, MLServer or BentoML), as the experiment sees it."""

    url: str  # HTTP/REST base, e.g. http://127.0.0.1:8000
    metrics_url: str  # Prometheus text endpoint
    grpc_address: str  # Triton's gRPC endpoint as host:port ("" when unknown: no gRPC tenant can use it)
    log_path: Path

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...

    def pid(self) -> int | None: ...

    def gone(self) -> str:
        """Why ``alive()`` turned false, as the deployment's failure reason."""
        ...
