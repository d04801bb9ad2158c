"""An existing Triton server at a URL (e.g. a Kubernetes service): checked, never started or stopped.

Models are served under their own names there (no per-deployment repository is rendered), so the
tenants' traffic is told apart by model name in Triton's metrics.
"""

from __future__ import annotations

import time
from pathlib import Path

from perseus.errors import InputError, ServerError
from perseus.server import http_ok

HEALTH_EVERY_S = 2.0  # alive() is called each tick; probing the URL once every 2 s is enough


def check_remote(url: str, models: list[tuple[int, str]], source: str, timeout_s: float = 5.0) -> None:
    """Up-front check (bad input, exit 2): the server answers and each tenant's model is ready."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError(source, "server.url", f"must start with http:// or https:// (got {url!r})")
    deadline = time.monotonic() + timeout_s
    while not http_ok(f"{base}/v2/health/ready", timeout=2.0):
        if time.monotonic() > deadline:
            raise InputError(source, "server.url", f"no ready Triton server answers at {base} (within {timeout_s:g} s)")
        time.sleep(0.2)
    for i, model in models:
        if not http_ok(f"{base}/v2/models/{model}/ready", timeout=2.0):
            raise InputError(source, f"tenants[{i}].model", f"model '{model}' is not ready on {base}")


class RemoteServer:
    """The Server interface over a server someone else runs."""

    def __init__(self, url: str, log_path: Path, metrics_url: str | None = None, grpc_address: str | None = None):
        self.url = url.rstrip("/")
        self.metrics_url = metrics_url or ""
        self.grpc_address = grpc_address or ""
        self.log_path = Path(log_path)
        self._last_check = 0.0
        self._alive = False

    def start(self) -> None:
        if not http_ok(f"{self.url}/v2/health/ready", timeout=5.0):
            raise ServerError(f"remote Triton server at {self.url} is not ready")
        self._alive, self._last_check = True, time.monotonic()
        self.log_path.write_text(
            f"remote server {self.url}: perseus did not start it and has no access to its log\n", encoding="utf-8"
        )

    def alive(self) -> bool:
        now = time.monotonic()
        if now - self._last_check >= HEALTH_EVERY_S:
            self._alive, self._last_check = http_ok(f"{self.url}/v2/health/live", timeout=2.0), now
        return self._alive

    def pid(self) -> int | None:
        return None

    def gone(self) -> str:
        return f"remote server at {self.url} stopped answering /v2/health/live"

    def stop(self) -> None:
        """Never stops a server it did not start."""
