"""fake_docker: a TEST DOUBLE standing in for the Docker engine and its CLI, which this machine cannot run.

This machine has a docker client but no daemon (and CI machines may have neither), so the docker
launcher's whole lifecycle is tested against this script, put on PATH as ``docker`` by a small
wrapper. It implements only the subcommands perseus.server.docker uses, with the output formats of
the real CLI that perseus parses:

    version --format {{.Server.Version}}      "27.0.0-fake"; FAKE_DOCKER_DAEMON=down: docker's own error
    run -d [--rm] --name N [--label L] [--shm-size S] [--gpus G] [-e NAME=VALUE ...] -p 127.0.0.1::PORT ...
        -v SRC:DST[:ro] ... IMAGE CMD...          --rm: the container is removed once it stops, as dockerd does
    port N PORT/tcp                           "127.0.0.1:HOSTPORT"
    logs [-f] N                               the container's output; -f follows until it stops
    inspect -f FORMAT N                       {{.State.Running}}, {{.State.ExitCode}}, {{.State.Status}}
    stop [--time T] N                         SIGTERM to the server, SIGKILL to the rest after T s
    rm -f N                                   kill whatever runs, forget the container

A "container" is the REAL tritonserver bundled in nvidia-pytriton (perseus.server.binary), run on
this host under a small supervisor process (the double's containerd-shim): its own process group,
killed as a whole when the server exits, as a PID namespace would be, with the Python-backend stubs'
shared-memory regions removed, as a container's own /dev/shm would be. What the double translates:
- the ``-v HOST:/models:ro`` mount's host path becomes ``--model-repository``; every symlink in it
  must point at a file mounted at its own path, or the container's log says the model failed to load
  (as in a real container, where an unmounted target dangles);
- each ``-p 127.0.0.1::PORT`` gets a free loopback port of this host; tritonserver listens there;
- ``--model-config-name=onnxruntime`` is DROPPED: the bundled CPU server has no onnxruntime backend,
  so it serves each model's config.pbtxt through the Python backend instead of the native config;
- ``--gpus`` fails as on a host without the NVIDIA container toolkit (no GPU here);
- the server's environment is perseus.server.binary's (an allowlist of the caller's) plus the ``-e``
  variables, as a container's is the image's plus ``-e``.

State lives in the directory FAKE_DOCKER_STATE: <name>.json (the container), <name>.log (its
output), <name>.exit (its exit code, once it stopped), and calls.jsonl (every argv, for the tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("FAKE_DOCKER_STATE", "/nonexistent-fake-docker-state"))
VERSION = "27.0.0-fake"
TRITON_PORTS = {"8000": "http", "8001": "grpc", "8002": "metrics"}
DROPPED = ("--model-config-name=",)


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def files(name: str) -> tuple[Path, Path, Path]:
    return STATE / f"{name}.json", STATE / f"{name}.log", STATE / f"{name}.exit"


def load(name: str) -> dict | None:
    try:
        return json.loads(files(name)[0].read_text())
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running(name: str, state: dict) -> bool:
    return not files(name)[2].exists() and pid_alive(state.get("supervisor"))


def exit_code(name: str) -> str:
    try:
        return files(name)[2].read_text().strip() or "0"
    except OSError:
        return "0"


# -- subcommands -----------------------------------------------------------------------------------
def cmd_version(args: list[str]) -> int:
    if os.environ.get("FAKE_DOCKER_DAEMON") == "down":
        return fail("Cannot connect to the Docker daemon at unix:///fake/docker.sock. Is the docker daemon running?")
    print(VERSION if "--format" in args else f"Client: {VERSION}\nServer: {VERSION}")
    return 0


def parse_run(args: list[str]) -> dict:
    opts: dict = {"ports": [], "mounts": [], "labels": [], "env": {}, "gpus": None, "name": None, "detach": False}
    opts["rm"] = False
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        key, eq, value = arg.partition("=")
        if key in ("--name", "--label", "--shm-size", "--gpus", "-p", "-v", "-e", "--env"):
            if not eq:
                i += 1
                value = args[i]
            if key == "--name":
                opts["name"] = value
            elif key == "--label":
                opts["labels"].append(value)
            elif key == "--gpus":
                opts["gpus"] = value
            elif key == "-p":
                opts["ports"].append(value)
            elif key == "-v":
                opts["mounts"].append(value)
            elif key in ("-e", "--env"):
                env_name, has_value, env_value = value.partition("=")
                opts["env"][env_name] = env_value if has_value else os.environ.get(env_name, "")
        elif arg == "-d":
            opts["detach"] = True
        elif arg == "--rm":
            opts["rm"] = True
        else:
            raise ValueError(f"unknown flag: {arg}")
        i += 1
    if i >= len(args):
        raise ValueError('"docker run" requires at least 1 argument')
    opts["image"], opts["command"] = args[i], args[i + 1 :]
    return opts


def dangling(repository: Path, mounted: set[str]) -> list[str]:
    """Symlinks in the repository whose targets the container would not see."""
    out = []
    for path in sorted(repository.rglob("*")):
        if path.is_symlink():
            target = os.path.realpath(path)
            if target not in mounted:
                out.append(f"{path.relative_to(repository)} -> {target}")
    return out


def cmd_run(args: list[str]) -> int:
    from perseus.ports import free_ports

    try:
        opts = parse_run(args)
    except (ValueError, IndexError) as exc:
        return fail(f"docker: {exc}", 125)
    name = opts["name"] or f"fake_{secrets.token_hex(4)}"
    if not opts["detach"]:
        return fail("docker: this double only runs detached containers (-d)", 125)
    if load(name) is not None:
        return fail(
            f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use.', 125
        )
    if opts["gpus"] is not None:
        return fail(
            'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].', 125
        )
    repository, mounted = None, set()
    for spec in opts["mounts"]:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            return fail(f"docker: invalid spec: {spec}", 125)
        if parts[1] == "/models":
            repository = Path(parts[0])
        mounted.add(parts[0])
    command = opts["command"]
    if not command or command[0] != "tritonserver" or repository is None:
        return fail("docker: this double runs `tritonserver` with a repository mounted at /models", 125)
    published = {}
    for spec in opts["ports"]:
        host, _, container = spec.rpartition(":")
        if host != "127.0.0.1:" or container not in TRITON_PORTS:
            return fail(f"docker: this double publishes 127.0.0.1::{{8000,8001,8002}} only (got {spec})", 125)
        published[container] = None
    for container, port in zip(published, free_ports(len(published)), strict=True):
        published[container] = port
    STATE.mkdir(parents=True, exist_ok=True)
    state = {
        "name": name,
        "id": secrets.token_hex(32),
        "image": opts["image"],
        "labels": opts["labels"],
        "auto_remove": opts["rm"],
        "env": opts["env"],
        "repository": str(repository),
        "ports": published,
        "dangling": dangling(repository, mounted),
        "args": [a for a in command[1:] if not a.startswith(DROPPED) and not a.startswith("--model-repository=")],
    }
    write_atomic(files(name)[0], json.dumps(state))
    files(name)[1].touch()
    shim = subprocess.Popen(
        [sys.executable, __file__, "_container", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the container's own process group, outliving this CLI call
        env={**os.environ, "FAKE_DOCKER_STATE": str(STATE)},
    )
    state["supervisor"] = shim.pid
    write_atomic(files(name)[0], json.dumps(state))
    print(state["id"])
    return 0


def cmd_container(args: list[str]) -> int:
    """The supervisor: run tritonserver as the container's PID 1, record its exit, end the group."""
    from perseus.server.binary import find_install

    name = args[0]
    _, log_file, exit_file = files(name)
    for _ in range(50):  # `run` records this process's pid right after starting it
        state = load(name)
        if state and state.get("supervisor") == os.getpid():
            break
        time.sleep(0.02)
    code = 1
    state = state or {"dangling": ["(no state)"]}
    with open(log_file, "ab") as log:
        if state["dangling"]:
            for link in state["dangling"]:
                log.write(
                    f"E0000 model_lifecycle.cc] failed to load '{link.split('/')[0]}' version 1: "
                    f"Not found: unable to load model file, dangling symlink in the container: {link}\n".encode()
                )
            log.flush()
        else:
            install = find_install()
            backends = STATE / f"{name}-backends"
            install.make_backend_dir(backends)
            ports = state["ports"]
            cmd = [
                str(install.binary),
                f"--model-repository={state['repository']}",
                f"--backend-directory={backends}",
                *(f"--{TRITON_PORTS[c]}-port={p}" for c, p in ports.items()),
                *(f"--{TRITON_PORTS[c]}-address=127.0.0.1" for c in ports),
                *state["args"],
            ]
            server = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**install.environment(), **state.get("env", {})},
            )
            write_atomic(STATE / f"{name}.pid", str(server.pid))
            code = server.wait()
    write_atomic(exit_file, str(code if code >= 0 else 128 - code))
    if state.get("auto_remove"):
        forget(name)
    _end_container(os.getpgid(0))  # PID 1 is gone: the rest of the container goes too
    return code


def cmd_port(args: list[str]) -> int:
    name, port = args[0], args[1].removesuffix("/tcp")
    state = load(name)
    if state is None:
        return fail(f"Error response from daemon: No such container: {name}")
    host = state["ports"].get(port)
    if host is None:
        return fail(f"Error: No public port '{port}/tcp' published for {name}")
    print(f"127.0.0.1:{host}")
    return 0


def cmd_logs(args: list[str]) -> int:
    follow = "-f" in args or "--follow" in args
    name = next(a for a in args if not a.startswith("-"))
    state = load(name)
    if state is None:
        return fail(f"Error response from daemon: No such container: {name}")
    out = sys.stdout.buffer
    with contextlib.suppress(FileNotFoundError), open(files(name)[1], "rb") as log:
        while True:
            chunk = log.read(65536)
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            current = load(name)
            if not follow or current is None or not running(name, current):
                out.write(log.read())
                out.flush()
                return 0
            time.sleep(0.05)
    return 0


def cmd_inspect(args: list[str]) -> int:
    fmt, name = "{{json .}}", None
    i = 0
    while i < len(args):
        if args[i] in ("-f", "--format"):
            fmt, i = args[i + 1], i + 2
        else:
            name, i = args[i], i + 1
    state = load(name)
    if state is None:
        return fail(f"Error: No such object: {name}")
    alive = running(name, state)
    values = {
        "{{.State.Running}}": "true" if alive else "false",
        "{{.State.ExitCode}}": "0" if alive else exit_code(name),
        "{{.State.Status}}": "running" if alive else "exited",
    }
    for key, value in values.items():
        fmt = fmt.replace(key, value)
    print(fmt)
    return 0


def _server_pid(name: str) -> int | None:
    try:
        return int((STATE / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def _kill_group(state: dict) -> None:
    _end_container(state["supervisor"])  # the supervisor leads the container's group


def _end_container(pgid: int) -> None:
    """SIGKILL the container's process group, and take its /dev/shm with it. A container's /dev/shm is its
    own and goes with it; this one's is the host's, so the Python-backend stubs' regions (which only an
    unloading tritonserver removes) are removed by name, first: this process may be in the group."""
    from perseus import children
    from perseus.server.local import stub_regions
    from perseus.server.shm import SHM_DIR

    for region in stub_regions(children.group_cmdlines(pgid)):
        with contextlib.suppress(FileNotFoundError):
            (SHM_DIR / region).unlink()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def cmd_stop(args: list[str]) -> int:
    grace, names, i = 10.0, [], 0
    while i < len(args):
        if args[i] in ("-t", "--time"):
            grace, i = float(args[i + 1]), i + 2
        elif args[i].startswith("--time="):
            grace, i = float(args[i].partition("=")[2]), i + 1
        else:
            names.append(args[i])
            i += 1
    for name in names:
        state = load(name)
        if state is None:
            return fail(f"Error response from daemon: No such container: {name}")
        if running(name, state):
            pid = _server_pid(name)
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while running(name, state) and time.monotonic() < deadline:
                time.sleep(0.05)
            _kill_group(state)
        if state.get("auto_remove"):  # dockerd removes a --rm container once it has stopped
            _wait_gone(state)
            forget(name)
        print(name)
    return 0


def cmd_rm(args: list[str]) -> int:
    force = "-f" in args or "--force" in args
    for name in [a for a in args if not a.startswith("-")]:
        state = load(name)
        if state is None:
            return fail(f"Error response from daemon: No such container: {name}")
        if running(name, state):
            if not force:
                return fail(f"Error response from daemon: cannot remove container {name}: container is running", 1)
            _kill_group(state)
            _wait_gone(state)
        forget(name)
        print(name)
    return 0


def _wait_gone(state: dict, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(state["supervisor"]) and time.monotonic() < deadline:
        time.sleep(0.02)


def forget(name: str) -> None:
    """The container is removed: its state, log and backend folder go."""
    for path in (*files(name), STATE / f"{name}.pid"):
        path.unlink(missing_ok=True)
    shutil.rmtree(STATE / f"{name}-backends", ignore_errors=True)


COMMANDS = {
    "version": cmd_version,
    "run": cmd_run,
    "_container": cmd_container,
    "port": cmd_port,
    "logs": cmd_logs,
    "inspect": cmd_inspect,
    "stop": cmd_stop,
    "rm": cmd_rm,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        return fail(f"docker: '{argv[0] if argv else ''}' is not a command this double implements", 125)
    if argv[0] != "_container":
        STATE.mkdir(parents=True, exist_ok=True)
        with open(STATE / "calls.jsonl", "a") as calls:
            calls.write(json.dumps(argv) + "\n")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
