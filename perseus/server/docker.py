"""Run the NGC Triton image with the docker CLI: one container per deployment, ports on loopback only.

The container gets the deployment's rendered model repository read-only at /models and serves the
models' native configs (``--model-config-name=onnxruntime``: configs/onnxruntime.pbtxt, onnxruntime
on the GPU, where a model has one; config.pbtxt otherwise). Docker picks free host ports for
``-p 127.0.0.1::8000`` etc., read back with ``docker port``. The container's log streams into the
deployment's server.log (``docker logs -f``).

Every exit path removes the container: ``stop()`` runs ``docker stop`` then ``docker rm -f``, and
``start()`` calls ``stop()`` on any failure, Ctrl-C included. If perseus itself dies, SIGKILL
included, its watchdog runs the same ``docker rm -f`` (perseus.children); the container is started
with ``--rm`` too, so one that stops is removed by the daemon. The containers carry the label
``perseus=1``: whatever escapes all that (a daemon unreachable at the time) is found with
``docker ps -a --filter label=perseus=1``.

Only the docker CLI is used (argv lists, each with a timeout, never a shell), so the same code drives
a real Docker engine and the test double in tests/doubles/fake_docker.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from perseus import children
from perseus.errors import InputError, ServerError
from perseus.ports import LOOPBACK
from perseus.scenario import DEFAULT_DOCKER_IMAGE
from perseus.server import http_ok
from perseus.server.local import EXIT_TIMEOUT_S, KILL_GRACE_S, load_failures, log_tail
from perseus.server.repository import NATIVE_CONFIG_NAME

# Triton's ports inside the container: HTTP, gRPC, metrics.
HTTP, GRPC, METRICS = 8000, 8001, 8002
CONTAINER_REPOSITORY = "/models"
# The Python backend passes tensors through shared memory; docker's default /dev/shm is 64 MB.
SHM_SIZE = "1g"
LABEL = "perseus=1"
# The only variables of perseus's environment a container gets (with a GPU): which GPUs CUDA uses, so
# that both launchers serve on the same devices. `--gpus all` exposes every GPU, in the host's order.
GPU_SELECTION = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")

# Timeouts of the docker CLI calls, in seconds.
VERSION_TIMEOUT_S = 15.0  # `docker version` asks the daemon: a hung daemon must not hang perseus
# `docker run` pulls the image first when it is not on the host: NGC Triton images are 10+ GB.
RUN_TIMEOUT_S = 1800.0
CALL_TIMEOUT_S = 30.0  # port, inspect, rm: answered at once by a healthy daemon
STOP_GRACE_S = EXIT_TIMEOUT_S + 2  # `docker stop` SIGKILLs after this; tritonserver exits within its exit timeout
LOG_DRAIN_S = 5.0  # for `docker logs -f` to write the last lines once the container has stopped

HEALTH_EVERY_S = 2.0  # alive() is called each tick; one `docker inspect` every 2 s is enough
STATE_EVERY_S = 1.0  # during startup: is the container still running?
POLL_S = 0.2
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _cli(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """One docker CLI call: an argv list (never a shell), text output captured, no stdin, a timeout.

    The call dies with perseus: a `docker run` left running would start a container after the
    watchdog's `docker rm -f` has run."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
        preexec_fn=children.die_with_parent(),
    )


def container_environment(source: dict[str, str] | None = None) -> dict[str, str]:
    """The GPU_SELECTION variables set in ``source`` (default: perseus's environment), through the
    same allowlist as every child of perseus."""
    return {k: v for k, v in children.environment(source, names=GPU_SELECTION).items() if k in GPU_SELECTION}


def docker_status(timeout_s: float = VERSION_TIMEOUT_S) -> tuple[str | None, str | None, str]:
    """(client path, daemon version, problem): what `perseus run` and `perseus doctor` need to know."""
    client = shutil.which("docker")
    if client is None:
        return None, None, "the docker client is not on PATH"
    try:
        proc = _cli([client, "version", "--format", "{{.Server.Version}}"], timeout_s)
    except subprocess.TimeoutExpired:
        return client, None, f"the Docker daemon did not answer `docker version` within {timeout_s:g} s"
    except OSError as exc:
        return client, None, f"cannot run {client}: {exc.strerror or exc}"
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version:
        said = _first_line(proc.stderr) or _first_line(proc.stdout) or f"exit code {proc.returncode}"
        return client, None, f"the Docker daemon is not reachable: {said[:300]}"
    return client, version, ""


def check_docker(source: str) -> str:
    """Up-front check (bad input, exit 2): a docker client on PATH and a daemon that answers it."""
    client, version, problem = docker_status()
    if client is None:
        raise InputError(
            source,
            "server.launcher",
            "is 'docker' but the docker client is not on PATH: install Docker "
            "(https://docs.docker.com/engine/install/) or use launcher = 'local'",
        )
    if version is None:
        raise InputError(
            source,
            "server.launcher",
            f"is 'docker' but {problem} (start the daemon, or check DOCKER_HOST and your access to its socket)",
        )
    return version


def container_name(deployment: str) -> str:
    """perseus-<deployment>-<pid>-<random hex>: unique across deployments, runs and hosts' users."""
    safe = _NAME_UNSAFE.sub("-", deployment).strip("-.")[:40] or "deployment"
    return f"perseus-{safe}-{os.getpid()}-{secrets.token_hex(4)}"


def link_targets(repository: Path) -> list[Path]:
    """The files that the rendered repository's symlinks point to (the large ONNX weights)."""
    targets = set()
    for path in sorted(Path(repository).rglob("*")):
        if path.is_symlink():
            targets.add(Path(os.path.realpath(path)))
    return sorted(targets)


def _bind(host: Path, container: str) -> list[str]:
    if ":" in str(host) or "," in str(host):
        # `-v SRC:DST:ro` splits on ':'; such a path cannot be mounted this way.
        raise ServerError(f"cannot mount {host} into a container: the path holds ':' or ','")
    return ["-v", f"{host}:{container}:ro"]


class DockerServer:
    """tritonserver in the NGC Triton image, one container per deployment."""

    def __init__(
        self,
        repository: Path,
        log_path: Path,
        *,
        image: str | None = None,
        gpu: bool = False,
        startup_timeout_s: float = 120.0,
        deployment: str = "deployment",
    ):
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.image = image or DEFAULT_DOCKER_IMAGE
        self.gpu = gpu
        self.startup_timeout_s = startup_timeout_s
        self.name = container_name(deployment)
        self.url = self.metrics_url = self.grpc_address = ""
        self._client = "docker"
        self._created = False  # `docker run` was called: the container may exist, so stop() removes it
        self._cleanup: children.Cleanup | None = None  # the same removal, should perseus die first
        self._log = None
        self._follower: subprocess.Popen | None = None
        self._alive = False
        self._last_check = 0.0

    # -- the command line --------------------------------------------------------------------------
    def mounts(self) -> list[str]:
        """The rendered repository read-only at /models, and each symlink target at its own path.

        render() symlinks large files (ONNX weights) to their absolute host paths. Inside the
        container those links would dangle, so each target file is mounted read-only at the same
        absolute path: the links resolve there as they do on the host. That exposes exactly the
        weights the deployment serves (not the whole source repository), costs no copy of
        multi-GB files, and works whatever file system /tmp is on (a hard link would not).
        """
        args = _bind(self.repository.resolve(), CONTAINER_REPOSITORY)
        for target in link_targets(self.repository):
            args += _bind(target, str(target))
        return args

    def server_args(self) -> list[str]:
        return [
            "tritonserver",
            f"--model-repository={CONTAINER_REPOSITORY}",
            f"--model-config-name={NATIVE_CONFIG_NAME}",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            "--allow-metrics=true",
            "--metrics-interval-ms=1000",
        ]

    def run_argv(self) -> list[str]:
        """`docker run` for this deployment. Of perseus's environment only GPU_SELECTION reaches the
        container, with a GPU; nothing else (credentials included). Triton listens on all interfaces
        inside the container; the host publishes its ports on loopback only, on ports docker picks.
        ``--rm``: a container that stops (crashes, or is stopped by anyone) is removed by the daemon."""
        env = container_environment() if self.gpu else {}
        return [
            self._client,
            "run",
            "-d",
            "--rm",
            "--name",
            self.name,
            "--label",
            LABEL,
            f"--shm-size={SHM_SIZE}",
            *(["--gpus", "all"] if self.gpu else []),
            *(arg for name, value in env.items() for arg in ("-e", f"{name}={value}")),
            *(arg for port in (HTTP, GRPC, METRICS) for arg in ("-p", f"{LOOPBACK}::{port}")),
            *self.mounts(),
            self.image,
            *self.server_args(),
        ]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            failure = self._start()
        except BaseException:
            self.stop()
            raise
        if failure is not None:
            self.stop()  # the log is complete once the container has stopped
            raise self._startup_error(failure)

    def _start(self) -> str | None:
        """Run the container and wait until Triton is ready; a failure comes back as its description."""
        client = shutil.which("docker")
        if client is None:
            raise ServerError("the docker client is not on PATH: install Docker or use launcher = 'local'")
        self._client = client
        argv = self.run_argv()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._note(f"container {self.name} from {self.image}: {' '.join(argv[1:])}")
        self._created = True
        self._cleanup = children.when_perseus_dies([self._client, "rm", "-f", self.name])
        try:
            proc = _cli(argv, RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"`docker run` did not finish within {RUN_TIMEOUT_S:g} s (pulling {self.image}?)"
        if proc.stderr:
            self._note(proc.stderr.rstrip("\n"))
        if proc.returncode != 0:
            return f"`docker run` failed: {_last_line(proc.stderr) or f'exit code {proc.returncode}'}"
        self._follow_logs()
        ports = {}
        for port in (HTTP, GRPC, METRICS):
            ports[port] = self._host_port(port)
            if ports[port] is None:
                running, code = self._state()
                if not running:
                    return f"container {self.name} exited with code {code} during startup"
                return f"`docker port {self.name} {port}/tcp` gave no loopback port"
        self.url = f"http://{LOOPBACK}:{ports[HTTP]}"
        self.metrics_url = f"http://{LOOPBACK}:{ports[METRICS]}/metrics"
        self.grpc_address = f"{LOOPBACK}:{ports[GRPC]}"
        return self._wait_ready()

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + self.startup_timeout_s
        next_state = time.monotonic() + STATE_EVERY_S
        while time.monotonic() < deadline:
            if http_ok(f"{self.url}/v2/health/ready"):
                self._alive, self._last_check = True, time.monotonic()
                return None
            if time.monotonic() >= next_state:
                next_state = time.monotonic() + STATE_EVERY_S
                running, code = self._state()
                if not running:
                    return f"container {self.name} exited with code {code} during startup"
            time.sleep(POLL_S)
        return f"tritonserver not ready after {self.startup_timeout_s:g} s"

    def _startup_error(self, what: str) -> ServerError:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        reasons = load_failures(text)
        message = f"{what}: {'; '.join(reasons)}" if reasons else f"{what} (see {self.log_path})"
        return ServerError(message, log_tail(self.log_path))

    def alive(self) -> bool:
        now = time.monotonic()
        if self._created and now - self._last_check >= HEALTH_EVERY_S:
            self._last_check = now
            with contextlib.suppress(subprocess.TimeoutExpired):  # a slow daemon is not a dead server
                self._alive = self._state(raise_timeout=True)[0]
        return self._created and self._alive

    def pid(self) -> int | None:
        return None  # the server's processes live in the container's PID namespace

    def gone(self) -> str:
        running, code = self._state() if self._created else (False, "?")
        state = "is running but not answering docker" if running else f"stopped (exit code {code})"
        return f"container {self.name} {state}"

    def stop(self) -> None:
        """Stop and remove the container (whatever state it is in), then finish and close the log."""
        created, self._created = self._created, False
        try:
            if created:
                self._docker("stop", "--time", str(STOP_GRACE_S), self.name, timeout=STOP_GRACE_S + CALL_TIMEOUT_S)
            if self._follower is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._follower.wait(timeout=LOG_DRAIN_S)
        finally:
            try:
                if created:
                    self._remove()
            finally:
                cleanup, self._cleanup = self._cleanup, None
                if cleanup is not None:
                    cleanup.release()
                self._close_log()

    def _remove(self) -> None:
        """`docker rm -f`, run to its end even when Ctrl-C arrives meanwhile (then re-raised)."""
        proc = subprocess.Popen(
            [self._client, "rm", "-f", self.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C must not kill the removal itself
        )
        deadline, interrupted = time.monotonic() + CALL_TIMEOUT_S, False
        while True:
            try:
                _, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
                break
            except KeyboardInterrupt:
                interrupted = True
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                self._note(f"`docker rm -f {self.name}` timed out after {CALL_TIMEOUT_S:g} s: remove it by hand")
                break
        said = (err or b"").decode(errors="replace").lower()
        # With --rm, the daemon may be removing the stopped container already: that is no failure.
        if proc.returncode and "no such container" not in said and "already in progress" not in said:
            self._note(f"`docker rm -f {self.name}` failed: {_last_line((err or b'').decode(errors='replace'))}")
        if interrupted:
            raise KeyboardInterrupt

    # -- helpers ---------------------------------------------------------------------------------
    def _docker(self, *args: str, timeout: float = CALL_TIMEOUT_S) -> subprocess.CompletedProcess | None:
        """A docker CLI call; None when it timed out."""
        try:
            return _cli([self._client, *args], timeout)
        except subprocess.TimeoutExpired:
            return None

    def _state(self, raise_timeout: bool = False) -> tuple[bool, str]:
        """(running, exit code) from `docker inspect`; a container that is gone is not running."""
        try:
            proc = _cli(
                [self._client, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.name], CALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            if raise_timeout:
                raise
            return True, "?"  # cannot tell: let the readiness deadline decide
        running, _, code = proc.stdout.strip().partition(" ")
        return proc.returncode == 0 and running == "true", code or "?"

    def _host_port(self, port: int) -> int | None:
        """The loopback host port docker published for the container's ``port``."""
        proc = self._docker("port", self.name, f"{port}/tcp")
        if proc is None or proc.returncode != 0:
            return None
        for line in proc.stdout.splitlines():
            host, _, number = line.strip().rpartition(":")
            if host == LOOPBACK and number.isdigit():
                return int(number)
        return None

    def _follow_logs(self) -> None:
        self._log.flush()
        self._follower = subprocess.Popen(
            [self._client, "logs", "-f", self.name],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stopped by stop(), after the container, so the last lines are kept
            preexec_fn=children.die_with_parent(),
        )

    def _close_log(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None and follower.poll() is None:
            follower.terminate()
            try:
                follower.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                follower.kill()
                follower.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _note(self, text: str) -> None:
        """A line of perseus's own in server.log (what ran, what docker said)."""
        if self._log is not None:
            self._log.write("".join(f"[perseus] {line}\n" for line in text.splitlines()).encode(errors="replace"))
            self._log.flush()

    def __enter__(self) -> DockerServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
