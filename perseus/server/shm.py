"""What a killed server leaves in /dev/shm, and its removal after stop and should perseus die first.

Two kinds of leftovers, both measured on this project's VM:
- Triton's Python-backend stubs share tensors with tritonserver through POSIX shared-memory regions
  that the server removes at unload, so a server killed before its unloads leaves them for good
  (``perseus.server.local.stub_regions`` names them);
- MLServer's parallel inference workers are Python multiprocessing children, and their locks are
  named POSIX semaphores (``sem.mp-*``) that multiprocessing's resource tracker unlinks as the
  server shuts down. A server stopped in order leaves none; killed (perseus SIGKILLed, so the
  watchdog kills the group, tracker included), it left 9, once per run of
  tests/integration/test_frameworks.py. They are found as files under SHM_DIR that the server's
  processes map (``mapped_names``): the spawned workers map them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from perseus import children

SHM_DIR = Path("/dev/shm")  # noqa: S108 - where POSIX shm_open and sem_open put their files on Linux
_DELETED = " (deleted)"


def mapped_names(pids: Iterable[int]) -> set[str]:
    """Names of the files directly under SHM_DIR that any of ``pids`` maps (from /proc/PID/maps)."""
    prefix = f"{SHM_DIR}/"
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:  # exited since it was listed, or not ours to read
            continue
        for line in lines:
            fields = line.split(maxsplit=5)
            path = fields[5] if len(fields) == 6 else ""
            if path.startswith(prefix) and not path.endswith(_DELETED) and "/" not in path[len(prefix) :]:
                names.add(path[len(prefix) :])
    return names


def group_mapped(pgids: Iterable[int]) -> set[str]:
    """``mapped_names`` of every live member of the process groups ``pgids``."""
    return mapped_names(pid for pgid in pgids for pid in children.live_members(pgid))


class Leftovers:
    """Names under SHM_DIR that a server uses: removed by ``remove()``, or by the watchdog should perseus die."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._guard: children.Cleanup | None = None

    def note(self, names: Iterable[str]) -> None:
        found = set(names) - self.names
        if not found:
            return
        self.names |= found
        guard, self._guard = self._guard, children.remove_when_perseus_dies(SHM_DIR / n for n in sorted(self.names))
        if guard is not None:
            guard.release()

    def remove(self) -> None:
        """Unlink them (after the server's processes are gone: what a clean stop removed is skipped)."""
        for name in self.names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SHM_DIR / name)
        self.names = set()
        if self._guard is not None:
            self._guard.release()
            self._guard = None
