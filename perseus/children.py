"""Child processes that die with perseus, whatever ends it (SIGKILL and the OOM killer included).

Two mechanisms, because neither is enough alone:

- The kernel's parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), set in the child
  between fork and exec. It reaches that child only, not the child's own children, and Linux sends
  it when the *thread* that forked ends. So it is set only when forking from the main thread, whose
  end is the process's end.
- A watchdog: one small process per perseus process, in a session of its own and detached from
  perseus, reading a pipe whose only writer is perseus. However perseus dies, the kernel closes that
  pipe; the watchdog reads end-of-file, SIGKILLs every process group still registered with it, then
  runs every cleanup command still registered (``docker rm -f``) and removes every file still
  registered (the Python backend's shared-memory regions, which only a live tritonserver removes).
  That reaches the Python-backend stubs, which are tritonserver's children in its process group.

Measured on this project's 2-core machine (Triton 2.51 from nvidia-pytriton, lstm_tiny): a stub does
not notice that its tritonserver was SIGKILLed while the server is an unreaped zombie (still alive
after 15 s); it exits 0.3 s after the zombie is reaped. With the parent-death signal alone, a
SIGKILLed perseus took its tritonserver at once and the stubs followed 1.5 to 1.8 s later, once init
had reaped the server; with the watchdog, everything was gone within 0.1 s.

A process group is signalled by number, and Linux reuses numbers (pid_max is 32768 on this host):
see ``_may_be_ours`` for when a number still names our group.

The environment a child gets is built from an allowlist (``environment``): credentials in perseus's
environment (cloud keys, tokens) reach no child unless a name is allowed on purpose.

This module imports only the standard library: the watchdog runs this file as a script
(``python -I -S``), without perseus's packages or site-packages on its path.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

# -- the environment ---------------------------------------------------------------------------
# What every child may see: where programs and the home folder are, where temporary files go, how
# text and time read, and which GPUs it may use (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES, ...).
BASE_NAMES = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ", "LD_LIBRARY_PATH"})
BASE_PREFIXES = ("LC_", "CUDA_", "NVIDIA_")
# Thread-pool sizes read by OpenMP, MKL, OpenBLAS and numexpr (numpy and onnxruntime in model code).
THREAD_NAMES = frozenset({"MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"})
THREAD_PREFIXES = ("OMP_",)
# A second fence behind the allowlist: an allowed prefix can still carry a credential (NVIDIA_API_KEY).
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|KEY", re.IGNORECASE)


def environment(
    source: Mapping[str, str] | None = None, *, names: Iterable[str] = (), prefixes: Sequence[str] = ()
) -> dict[str, str]:
    """The variables of ``source`` (default: this process's) that a child may see.

    Allowed: BASE_NAMES, names starting with BASE_PREFIXES, and the ``names`` and ``prefixes`` given;
    never a name that looks like a credential (SECRET_NAME). Everything else is left out.
    """
    source = os.environ if source is None else source
    allowed, starts = BASE_NAMES | set(names), (*BASE_PREFIXES, *prefixes)
    return {k: v for k, v in source.items() if (k in allowed or k.startswith(starts)) and not SECRET_NAME.search(k)}


def worker_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """For a local `perseus worker`: a child of perseus's own Python, so Python's and gevent's settings
    pass (PYTHONPATH, VIRTUAL_ENV, GEVENT_*), and the TLS trust store for a server reached over https."""
    return environment(
        source,
        names={"VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR", *THREAD_NAMES},
        prefixes=("PYTHON", "GEVENT_", *THREAD_PREFIXES),
    )


# -- the parent-death signal -------------------------------------------------------------------
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _find_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _find_prctl()  # looked up here, in the parent: the forked child only calls it


def die_with_parent(parent: int | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the kernel SIGKILLs the child when perseus dies; None where that
    cannot be promised (not Linux, or not the main thread: the signal would come when this thread ends).

    ``parent`` is the pid the child must find as its parent once the signal is set (default: this
    process); if it finds another, its parent died first, and the child kills itself.
    """
    if _PRCTL is None or threading.get_native_id() != os.getpid():  # on Linux the main thread's id is the pid
        return None
    parent, prctl = os.getpid() if parent is None else parent, _PRCTL

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # perseus died before the line above took effect: no signal will come
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# -- process groups ------------------------------------------------------------------------------
def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat.rsplit(b")", 1)[1].split()[19])  # after "(comm)": field 3 is index 0
    except (OSError, ValueError, IndexError):
        return None


def _may_be_ours(pgid: int, ticks: int | None) -> bool:
    """Whether process group number ``pgid`` can still name the group whose leader started at ``ticks``.

    A group's number is its leader's pid, and Linux gives that number to no new process while any member
    of the group lives. So when a process with that pid exists but started at another time, our group is
    gone and the number is someone else's. When no process has that pid, a group by that number can only
    be ours: its leader has exited, and members remain or none do. Without /proc, this cannot be told.
    """
    now = start_ticks(pgid)
    if now is None:
        return True
    return ticks is not None and now == ticks


def _killpg(pgid: int, ticks: int | None, sig: int) -> None:
    if _may_be_ours(pgid, ticks):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _group_gone(pgid: int, ticks: int | None) -> bool:
    if not _may_be_ours(pgid, ticks):
        return True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- the watchdog ---------------------------------------------------------------------------------
COMMAND_TIMEOUT_S = 60.0  # for each cleanup command the watchdog runs once perseus is gone (docker rm -f)


def _fire(armed: Iterable[dict]) -> None:
    """What the watchdog does at end-of-file: kill the groups (at once), remove the files, then run the commands."""
    armed = list(armed)
    for entry in armed:
        if "group" in entry:
            _killpg(*entry["group"], signal.SIGKILL)
    for entry in armed:
        for path in entry.get("unlink", ()):
            with contextlib.suppress(OSError):
                os.unlink(path)
    for entry in armed:
        if "run" in entry:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    entry["run"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )


def _watch(fd: int = 0) -> None:
    """The watchdog's main: read registrations from ``fd`` until end-of-file, then fire what is armed."""
    if os.fork() > 0:
        # Perseus reaps this first process at once; the watchdog goes on as init's child, outside the
        # process tree whose CPU and memory perseus reports as the load generator's.
        os._exit(0)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # hold none of perseus's sockets or files open
    armed: dict[str, dict] = {}
    pending = b""
    while chunk := os.read(fd, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = json.loads(line)
                if "arm" in message:
                    armed[message["arm"]] = message
                else:
                    armed.pop(message["disarm"], None)
    _fire(armed.values())


class _Watchdog:
    """Perseus's end of the pipe: registrations go to the watchdog process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only around calls that never yield to gevent
        self._fd: int | None = None
        self._owner = 0  # the pid that started the watchdog: a forked child starts its own
        self._armed: dict[str, dict] = {}
        self._count = 0

    def arm(self, entry: dict) -> str:
        with self._lock:
            self._count += 1
            key = f"{os.getpid()}-{self._count}"
            self._armed[key] = {"arm": key, **entry}
            started = self._send(self._armed[key])
        _reap(started)
        return key

    def disarm(self, key: str) -> None:
        with self._lock:
            if self._armed.pop(key, None) is None:
                return
            started = self._send({"disarm": key})
        _reap(started)

    def _send(self, message: dict) -> int | None:
        """Write one line; (re)start the watchdog if there is none. Returns the pid of a process to reap."""
        started = None
        if self._fd is None or self._owner != os.getpid():
            started = self._start()
            message = None  # _start sends every armed entry, this one included
        data = b"" if message is None else json.dumps(message).encode() + b"\n"
        try:
            _write_all(self._fd, data)
        except OSError:  # the watchdog died (killed by hand?): start another and tell it everything
            os.close(self._fd)
            self._fd = None
            started = self._start()
        return started

    def _start(self) -> int:
        read, write = os.pipe()  # both close on exec: no other child of perseus holds the write end
        try:
            # posix_spawn rather than subprocess: it never yields to gevent while the lock is held.
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-I", "-S", os.path.abspath(__file__)],
                dict(os.environ),  # the watchdog runs `docker rm -f` as perseus would
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,  # no terminal: a Ctrl-C or a kill of perseus's process group misses it
            )
        finally:
            os.close(read)
        self._fd, self._owner = write, os.getpid()
        _write_all(write, b"".join(json.dumps(e).encode() + b"\n" for e in self._armed.values()))
        return pid


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _reap(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ChildProcessError):  # gevent's child watcher may have reaped it first
            os.waitpid(pid, 0)


_WATCHDOG = _Watchdog()
_GROUPS: dict[int, tuple[int | None, str]] = {}  # leader pid -> (its start ticks, watchdog key)


def spawn(cmd: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd)`` as the leader of a new session, whose whole process group dies with perseus.

    Stop it with ``signal_group`` (which works after the leader has been reaped too), then ``release``.
    """
    _forget_gone_groups()
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent(), **popen_kwargs)
    ticks = start_ticks(proc.pid)  # our child, not yet waited for: the pid is still its own
    try:
        _GROUPS[proc.pid] = (ticks, _WATCHDOG.arm({"group": [proc.pid, ticks]}))
    except BaseException:  # no watchdog (or Ctrl-C meanwhile): no unguarded group is left behind
        _killpg(proc.pid, ticks, signal.SIGKILL)
        proc.wait()
        raise
    return proc


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group that ``proc`` leads, unless that number is someone else's by now."""
    if proc.pid in _GROUPS:
        _killpg(proc.pid, _GROUPS[proc.pid][0], sig)
    elif proc.returncode is None:  # not from spawn(), but not reaped either: the number is still ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
    else:
        _killpg(proc.pid, None, sig)


def release(proc: subprocess.Popen) -> None:
    """``proc``'s group has been stopped: the watchdog forgets it."""
    _, key = _GROUPS.pop(proc.pid, (None, None))
    if key is not None:
        _WATCHDOG.disarm(key)


def _forget_gone_groups() -> None:
    """Groups never released (local workers) are forgotten once no member is left."""
    for pid, (ticks, key) in list(_GROUPS.items()):
        if _group_gone(pid, ticks):
            del _GROUPS[pid]
            _WATCHDOG.disarm(key)


# -- groups that a child made of its own ---------------------------------------------------------
def _stat(pid: int) -> tuple[bytes, int, int] | None:
    """(state, parent pid, process group) of ``pid`` from /proc/PID/stat (fields 3 to 5); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


def _processes() -> dict[int, tuple[bytes, int, int]]:
    """Every process on the host: pid -> ``_stat`` (empty without /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    out = {}
    for name in names:
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            out[int(name)] = stat
    return out


def live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that have not exited yet (a zombie, exited but not reaped, has)."""
    return [pid for pid, (state, _, group) in _processes().items() if group == pgid and state not in (b"Z", b"X")]


def foreign_groups(leader: int) -> list[int]:
    """Process groups led by descendants of ``leader`` that left its group (made a session of their own).

    Killing ``leader``'s group misses them: BentoML's process manager (circus) starts each worker in a
    session of its own, and a worker outlived a SIGKILLed perseus that way (measured on this project's
    VM, BentoML 1.4.40). ``adopt`` registers such groups with the watchdog."""
    processes = _processes()
    parents = {pid: ppid for pid, (_, ppid, _) in processes.items()}
    groups = {pid: group for pid, (_, _, group) in processes.items()}
    found, frontier = [], [leader]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                frontier.append(pid)
                if groups[pid] == pid and pid != leader:
                    found.append(pid)
    return sorted(found)


def adopt(pgid: int) -> None:
    """Have the watchdog SIGKILL process group ``pgid`` (already running) if perseus dies; ``disown`` ends it."""
    if pgid in _GROUPS:
        return
    ticks = start_ticks(pgid)
    if ticks is not None:
        _GROUPS[pgid] = (ticks, _WATCHDOG.arm({"group": [pgid, ticks]}))


def disown(pgid: int) -> None:
    """SIGKILL an adopted group (unless its number is someone else's by now), and forget it."""
    ticks, key = _GROUPS.pop(pgid, (None, None))
    if key is not None:
        _killpg(pgid, ticks, signal.SIGKILL)
        _WATCHDOG.disarm(key)


def group_cmdlines(pgid: int) -> dict[int, list[str]]:
    """The argv of every live process in process group ``pgid`` (from /proc; empty without it)."""
    out = {}
    for pid, (_, _, group) in _processes().items():
        if group != pgid:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[pid] = [arg.decode(errors="replace") for arg in f.read().split(b"\0")[:-1]]
        except OSError:
            continue
    return out


class Cleanup:
    """What the watchdog does if perseus dies before ``release()``: run a command
    (``when_perseus_dies``) or remove files (``remove_when_perseus_dies``)."""

    def __init__(self, entry: dict):
        self._key: str | None = _WATCHDOG.arm(entry)

    def release(self) -> None:
        key, self._key = self._key, None
        if key is not None:
            _WATCHDOG.disarm(key)


def when_perseus_dies(argv: Sequence[str]) -> Cleanup:
    """Have the watchdog run ``argv`` (an argv list, no shell) if perseus dies before ``release()``."""
    return Cleanup({"run": list(argv)})


def remove_when_perseus_dies(paths: Iterable[str]) -> Cleanup:
    """Have the watchdog remove these files (after killing the groups) if perseus dies before ``release()``."""
    return Cleanup({"unlink": [str(p) for p in paths]})


if __name__ == "__main__":
    _watch()
