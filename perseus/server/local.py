"""Launch the bundled tritonserver as a child process bound to loopback.

Every exit path stops it. ``stop()`` SIGKILLs the server's own process group at once, unless the server
writes files as it exits (trace files): then SIGTERM first, and SIGKILL once it has exited or after a
grace period. The group holds the Python-backend stub processes too, so nothing is left; what a kill
leaves in /dev/shm is removed (``perseus.server.shm``). When perseus itself is killed, even by SIGKILL, the group
dies with it (perseus.children).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from perseus import children
from perseus.errors import ServerError
from perseus.ports import LOOPBACK, free_ports
from perseus.server import http_ok
from perseus.server.binary import find_install
from perseus.server.shm import Leftovers

# With Python-backend models, tritonserver waits the whole exit timeout for unloads (30 s by
# default, ENVIRONMENT.md); 3 s is plenty for onnxruntime sessions to drop.
EXIT_TIMEOUT_S = 3
KILL_GRACE_S = 5.0
POLL_S = 0.2
GONE_POLL_S = 0.005  # while a killed group's members exit: a few ms each
LOG_TAIL_LINES = 20
# Launches tried when a port picked as free is taken before tritonserver binds it.
PORT_ATTEMPTS = 3
_PORT_TAKEN = b"already in use"

# How gone() starts when a signal killed the server: a crash, not an exit (perseus calibrate runs a
# traced point whose server crashed once more).
CRASHED = "tritonserver crashed"
# The signals of a fault inside the server (Triton's own handler re-raises them after printing its stack),
# as opposed to one sent from outside (SIGKILL, SIGTERM).
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}

# Why an untraced server is killed rather than asked to stop: on SIGTERM tritonserver unloads its models,
# which took 1.2 s for one Python-backend model (the calibration model: "unloading models" at 27.819,
# "successfully unloaded" at 29.004 in its log), then checks once a second whether any is left, so a
# polite stop cost 1.2-2 s of every deployment and probe. By then the load is over, its records and the
# server's counters are read, and the unload frees only what the kill frees too: the processes and the
# stubs' shared memory, which stop() removes (perseus.server.shm).
_LOAD_FAILURE = re.compile(r"failed to load '([^']+)'.*?: (.*)$")

# Each Python-backend stub shares tensors with tritonserver through a POSIX shared-memory region that
# the server creates and removes at unload; the stub's argv[2] names it. A server killed before its
# unloads (SIGKILL, a crash, the OOM killer) leaves the region in /dev/shm for good: 1 MiB or more per
# stub and per kill (three were left by tests/integration/test_faults.py alone). So the regions are
# read off the stubs while the server starts, removed after stop(), and by the watchdog should
# perseus die first (shm.Leftovers).
REGION_PREFIX = "triton_python_backend_shm_region_"
_STUB = "triton_python_backend_stub"
_REGION = re.compile(re.escape(REGION_PREFIX) + r"[A-Za-z0-9_-]+")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def log_since(path: Path, offset: int) -> bytes:
    """A server log from ``offset`` on: one launch's part of it (empty if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal, which has no name
        return f"signal {number}"


def stub_regions(cmdlines: Mapping[int, list[str]]) -> set[str]:
    """The shared-memory regions (names in shm.SHM_DIR) that the Python-backend stubs among ``cmdlines`` use."""
    return {
        argv[2]
        for argv in cmdlines.values()
        if len(argv) > 2 and Path(argv[0]).name == _STUB and _REGION.fullmatch(argv[2])
    }


def load_failures(log_text: str) -> list[str]:
    """The server log's own reasons for models that failed to load, one per model."""
    out = []
    for line in log_text.splitlines():
        match = _LOAD_FAILURE.search(line)
        if match:
            out.append(f"model '{match.group(1)}': {match.group(2).strip()}")
    return out


class LocalServer:
    """tritonserver from the nvidia-pytriton wheel, on free loopback ports."""

    def __init__(
        self,
        repository: Path,
        log_path: Path,
        *,
        startup_timeout_s: float = 120.0,
        host: str = LOOPBACK,
        extra_args: tuple[str, ...] = (),
        extra_env: Mapping[str, str] | None = None,
        crash_note: str = "",
        writes_at_exit: bool = False,
    ):
        """``extra_env`` is added to the server's allowlisted environment; ``crash_note`` is said when the
        server crashes while it runs (a known fault of what it was asked to do). ``writes_at_exit``: the
        server writes files as it exits (trace files), so stop() waits for its own exit."""
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.startup_timeout_s = startup_timeout_s
        self.host = host
        self.extra_args = extra_args
        self.extra_env = dict(extra_env or {})
        self.crash_note = crash_note
        self.writes_at_exit = writes_at_exit
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._backend_tmp: tempfile.TemporaryDirectory | None = None
        self._regions = Leftovers()  # the stubs' shared memory, removed after stop
        self._log_offset = 0
        self.url = self.metrics_url = self.grpc_address = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            install = find_install()
            self._backend_tmp = tempfile.TemporaryDirectory(prefix="perseus-backends-")
            backends = install.make_backend_dir(Path(self._backend_tmp.name))
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            # The ports are free when picked but not reserved: another process (another run on this
            # host) can bind one before tritonserver does. Then tritonserver exits at once; pick again.
            for attempt in range(1, PORT_ATTEMPTS + 1):
                self._launch(install, backends)
                if self._wait_ready(retry_if_port_taken=attempt < PORT_ATTEMPTS):
                    return
                stop_group(self._proc)
                self._proc = None
                self._regions.remove()  # what a server killed before its unloads left
        except BaseException:
            self.stop()
            raise

    def _launch(self, install, backends: Path) -> None:
        http, grpc, metrics = free_ports(3, self.host)
        self.url = f"http://{self.host}:{http}"
        self.grpc_address = f"{self.host}:{grpc}"
        self.metrics_url = f"http://{self.host}:{metrics}/metrics"
        cmd = [
            str(install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-port={http}",
            f"--grpc-port={grpc}",
            f"--metrics-port={metrics}",
            # tritonserver listens on 0.0.0.0 unless told otherwise: bind all three to loopback.
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            f"--metrics-address={self.host}",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            "--allow-metrics=true",
            "--metrics-interval-ms=1000",
            *self.extra_args,
        ]
        self._log.flush()
        self._log_offset = self.log_path.stat().st_size
        # Its own session and process group, so stop() reaches the backend stubs; the whole group dies
        # with perseus, SIGKILL included.
        self._proc = children.spawn(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**install.environment(), **self.extra_env},
        )

    def _note_regions(self) -> None:
        """Read the stubs' regions off their argv, and have the watchdog remove them should perseus die."""
        self._regions.note(stub_regions(children.group_cmdlines(self._proc.pid)))

    def _wait_ready(self, retry_if_port_taken: bool = False) -> bool:
        """True once ready; False if it exited because a port was taken (and a retry is allowed)."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            # On every poll, not only once ready: a server that exits during startup (a port taken after
            # its models loaded) leaves its stubs' regions too. About 1 ms per look (/proc, 70 processes).
            self._note_regions()
            if self._proc.poll() is not None:
                if retry_if_port_taken and self._port_taken():
                    return False
                raise self._startup_error(f"tritonserver exited with code {self._proc.returncode} during startup")
            if http_ok(f"{self.url}/v2/health/ready"):
                self._note_regions()
                return True
            time.sleep(POLL_S)
        raise self._startup_error(f"tritonserver not ready after {self.startup_timeout_s:g} s")

    def _launch_log(self) -> bytes:
        return log_since(self.log_path, self._log_offset)

    def _port_taken(self) -> bool:
        """Whether this launch's part of the log says a port was already in use."""
        return _PORT_TAKEN in self._launch_log()

    def _startup_error(self, what: str) -> ServerError:
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        reasons = load_failures(text)
        message = f"{what}: {'; '.join(reasons)}" if reasons else f"{what} (see {self.log_path})"
        return ServerError(message, log_tail(self.log_path))

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def gone(self) -> str:
        code = self._proc.poll() if self._proc else None
        if code is not None and -code in CRASH_SIGNALS:
            note = f": {self.crash_note}" if self.crash_note else ""
            return f"{CRASHED} (pid {self.pid()}, {signal_name(-code)}){note}"
        if code is not None and code < 0:  # from outside: an operator, the OOM killer, a test
            return f"tritonserver killed by {signal_name(-code)} (pid {self.pid()})"
        return f"tritonserver exited unexpectedly (pid {self.pid()}, exit code {code})"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._note_regions()  # a stub that Triton restarted since start() has a region of its own
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc, term_first=self.writes_at_exit)
        self._regions.remove()  # what a server killed before its unloads left
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._backend_tmp is not None:
            self._backend_tmp.cleanup()
            self._backend_tmp = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_group(proc: subprocess.Popen, *, term_first: bool = True) -> None:
    """SIGKILL the server's process group; with ``term_first``, SIGTERM first and wait up to KILL_GRACE_S
    for the server to exit (it may have files to write, or workers to stop).

    The group is signalled even when the server has exited and been reaped already: its Python-backend
    stubs stay in the group, and outlive a server that was killed (perseus.children says for how long).
    """
    if term_first and proc.poll() is None:
        children.signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_S)
    children.signal_group(proc, signal.SIGKILL)
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # A SIGKILLed process still takes a moment to exit: a stub was still alive when stop() returned,
    # once, in a CI run of test_server_stop. The group is gone only once every member has exited.
    deadline = time.monotonic() + KILL_GRACE_S
    while children.live_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(GONE_POLL_S)
    children.release(proc)
