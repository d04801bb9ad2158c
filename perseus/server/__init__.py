"""Triton servers behind one small interface, so docker and remote launchers slot in beside local."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Server(Protocol):
    """A running Triton server, as the experiment sees it."""

    url: str  # HTTP/REST base, e.g. http://127.0.0.1:8000
    metrics_url: str  # Prometheus text endpoint
    log_path: Path

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...

    def pid(self) -> int | None: ...
