"""A serving framework other than Triton, run as a child process: the launch rules every kind shares.

Every rule of the local Triton launcher holds: listeners on loopback (each kind's ``command`` binds
them there), its own session and process group through ``children.spawn`` (the whole group dies with
perseus, SIGKILL included, and so do the framework's worker processes in it), SIGTERM then SIGKILL of
the group on stop, and the framework's output in server.log. Worker processes that a framework starts
in sessions of their own (BentoML's) are found and registered with the watchdog too (children.adopt).
Ports are picked free by the kernel; a port taken between picking and binding makes the framework
exit at once, and it is launched again on new ports. The environment comes from the framework's
allowlist (frameworks.Environment.environment). What its processes map under /dev/shm (MLServer's
multiprocessing semaphores) is removed after stop, and by the watchdog should perseus die first
(perseus.server.shm).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from perseus import children
from perseus.errors import ServerError
from perseus.ports import LOOPBACK, free_ports
from perseus.server.frameworks import Environment
from perseus.server.local import POLL_S, PORT_ATTEMPTS, log_since, log_tail, stop_group
from perseus.server.shm import Leftovers, group_mapped

# What uvicorn (MLServer, BentoML) logs when a port is taken ("[Errno 98] ... address already in use").
PORT_TAKEN = b"address already in use"
ADOPT_EVERY_S = 2.0  # how often alive() looks for workers in groups of their own (a /proc walk)


class FrameworkServer:
    """The lifecycle; a kind says how to start it (``command``), when it is ready, and what failed."""

    program = "server"

    def __init__(self, repository: Path, log_path: Path, env: Environment, *, startup_timeout_s: float = 120.0):
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.env = env
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._log_offset = 0
        self._adopted: list[int] = []  # process groups of the framework's workers outside its own
        self._shm = Leftovers()  # what its processes map under /dev/shm, removed after stop
        self._next_adoption = 0.0
        self.url = self.metrics_url = ""
        self.grpc_address = ""  # the frameworks are reached over HTTP only (a gRPC tenant is refused up front)

    # -- what each kind says -----------------------------------------------------------------------
    def command(self) -> list[str]:
        """The argv of one launch, on new free ports (it sets url and metrics_url)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return self.env.environment()

    def ready(self) -> bool:
        raise NotImplementedError

    def failures(self, log_text: str) -> list[str]:
        """What the log of this launch says failed for good (e.g. a model that did not load)."""
        return []

    def started(self) -> None:
        """Called once it is ready."""

    @staticmethod
    def pick_ports(count: int) -> list[int]:
        return free_ports(count, LOOPBACK)

    # -- the lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            for attempt in range(1, PORT_ATTEMPTS + 1):
                self._launch()
                if self._wait_ready(retry_if_port_taken=attempt < PORT_ATTEMPTS):
                    self._adopt_foreign_groups()
                    self._note_shm()
                    self.started()
                    return
                stop_group(self._proc)
                self._proc = None
                self._shm.remove()
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        cmd = self.command()
        self._log.flush()
        self._log_offset = self.log_path.stat().st_size
        self._proc = children.spawn(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.repository,
            env=self.environment(),
        )

    def _this_launch(self) -> bytes:
        return log_since(self.log_path, self._log_offset)

    def _wait_ready(self, retry_if_port_taken: bool = False) -> bool:
        """True once ready; False if it exited because a port was taken (and a retry is allowed)."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if retry_if_port_taken and PORT_TAKEN in self._this_launch().lower():
                    return False
                raise self._startup_error(f"{self.program} exited with code {self._proc.returncode} during startup")
            failed = self.failures(self._this_launch().decode(errors="replace"))
            if failed:
                raise self._startup_error(f"{self.program} could not load {', '.join(failed)}")
            if self.ready():
                return True
            time.sleep(POLL_S)
        raise self._startup_error(f"{self.program} not ready after {self.startup_timeout_s:g} s")

    def _startup_error(self, what: str) -> ServerError:
        self._log.flush()
        return ServerError(f"{what} (see {self.log_path})", log_tail(self.log_path))

    def _adopt_foreign_groups(self) -> None:
        """Worker processes in sessions of their own (BentoML's) die with perseus too (children.adopt)."""
        if self._proc is not None:
            for pgid in children.foreign_groups(self._proc.pid):
                if pgid not in self._adopted:
                    children.adopt(pgid)
                    self._adopted.append(pgid)

    def _note_shm(self) -> None:
        """What the server's processes map under /dev/shm, for removal. Once ready and before stop only,
        not on every alive(): reading each member's memory map runs in the load generator's loop."""
        if self._proc is not None:
            self._shm.note(group_mapped([self._proc.pid, *self._adopted]))

    def alive(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            return False
        now = time.monotonic()
        if now >= self._next_adoption:  # a worker restarted by the framework gets a new group
            self._next_adoption = now + ADOPT_EVERY_S
            self._adopt_foreign_groups()
        return True

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def gone(self) -> str:
        code = self._proc.poll() if self._proc else None
        return f"{self.program} exited unexpectedly (pid {self.pid()}, exit code {code})"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._adopt_foreign_groups()  # workers restarted since the last look
            self._note_shm()  # and what they map
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)  # SIGTERM first: the framework stops its own workers
        for pgid in self._adopted:
            children.disown(pgid)  # then whatever of them is left
        self._adopted = []
        self._shm.remove()
        if self._log is not None:
            self._log.close()
            self._log = None
