"""Shared helpers: run the real CLI as a subprocess, and find the tritonserver processes it started.

Every CLI subprocess gets its own TMPDIR. perseus renders each deployment's model repository and
backend folder under the temporary directory, and both paths are on tritonserver's command line (and
the Python-backend stubs' too), so a process is ours exactly when its command line holds that TMPDIR.
That keeps the checks right while other runs (other people's) start their own servers on this host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from perseus.server.local import REGION_PREFIX
from perseus.server.shm import SHM_DIR, mapped_names

REPO_ROOT = Path(__file__).resolve().parents[1]
TRITON_NAMES = ("tritonserver", "triton_python_backend_stub")
SEMAPHORE_PREFIX = "sem.mp-"  # Python multiprocessing's named semaphores (perseus.server.shm)
# Credentials planted in the environment by the tests that check none reaches a child, a log or a result.
PLANTED_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPERSEUSTESTKEYXYZ",
    "AWS_SECRET_ACCESS_KEY": "perseus-test-secret-aws",
    "AWS_SESSION_TOKEN": "perseus-test-secret-session",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secret/perseus-test-gcp.json",
    "AZURE_CLIENT_SECRET": "perseus-test-secret-azure",
    "HF_TOKEN": "hf_perseus_test_secret",
    "GITHUB_TOKEN": "ghp_perseus_test_secret",
    "MY_SECRET": "perseus-test-secret-mine",
    "SOME_API_KEY": "perseus-test-secret-api",
    "NVIDIA_API_KEY": "nvapi-perseus-test-secret",  # an allowed prefix, still a credential
}


def cli_env(tmpdir: Path | None = None) -> dict[str, str]:
    """Environment for a CLI subprocess: plain, wide output and (optionally) its own TMPDIR."""
    env = dict(os.environ)
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("FORCE_COLOR", None)
    if tmpdir is not None:
        Path(tmpdir).mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    return env


def run_cli(
    args: list[str],
    cwd: Path = REPO_ROOT,
    *,
    tmpdir: Path | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``perseus ARGS`` in a fresh interpreter (cli.py runs ``main()`` under ``__main__``); ``env`` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "perseus.cli", *map(str, args)],
        cwd=cwd,
        env={**cli_env(tmpdir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_scenario_text(base: Path, text: str, timeout: float = 300) -> Path:
    """``perseus run`` on a scenario written from ``text`` into ``base``; the run folder, after a clean exit.

    Every tritonserver of the run is killed afterwards, whatever happened."""
    scenario, run_dir, marker = base / "scenario.toml", base / "run", base / "tmp"
    scenario.write_text(text)
    try:
        proc = run_cli(["run", scenario, "--out", run_dir], tmpdir=marker, timeout=timeout)
    finally:
        kill_ours(marker)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def tree_state(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every entry under ``root`` (itself included): kind, size, modification time (ns) and inode.

    Compared before and after a command, it shows any file written, changed, removed or rebuilt
    (perseus writes atomically, by rename, so a rebuilt file has a new inode even with equal bytes).
    An absent ``root`` gives {}."""
    root = Path(root)
    if not root.exists():
        return {}
    state = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        kind = "dir" if path.is_dir() and not path.is_symlink() else "link" if path.is_symlink() else "file"
        # A folder's own mtime changes when an entry is added or removed inside it.
        state[str(path.relative_to(root))] = (kind, st.st_size if kind == "file" else 0, st.st_mtime_ns, st.st_ino)
    return state


def assert_unchanged(before: dict, after: dict, root: Path) -> None:
    """Both states of ``root`` (``tree_state``) are the same; else name what changed."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"{root} changed: added {added}, removed {removed}, changed {changed}"


def triton_processes(marker: str | Path | None = None) -> list[psutil.Process]:
    """Live tritonserver / Python-backend-stub processes; with ``marker``, only those whose command line holds it."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = info["cmdline"] or []
            exe = Path(cmdline[0]).name if cmdline else ""
            if not any(n in (info["name"] or "") or n == exe for n in TRITON_NAMES):
                continue
            if marker is not None and not any(str(marker) in part for part in cmdline):
                continue
            found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_ours(marker: str | Path) -> list[int]:
    """Last-resort cleanup after a failed test: SIGKILL the triton processes this test started, by pid."""
    pids = []
    for proc in triton_processes(marker):
        try:
            os.kill(proc.pid, signal.SIGKILL)
            pids.append(proc.pid)
        except ProcessLookupError:
            pass
    return pids


# The helpers as (session-scoped) fixtures, so test modules need not import conftest.
@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


@pytest.fixture(scope="session")
def tritons() -> Callable[..., list[psutil.Process]]:
    return triton_processes


@pytest.fixture(scope="session")
def kill_tritons() -> Callable[..., list[int]]:
    return kill_ours


@pytest.fixture(scope="session")
def unchanged() -> Callable[..., object]:
    """``with unchanged(path, ...):`` fails when the block wrote, changed or removed anything under the paths."""
    return unchanged_paths


@contextlib.contextmanager
def unchanged_paths(*roots: Path):
    before = {Path(r): tree_state(r) for r in roots}
    yield
    for root, state in before.items():
        assert_unchanged(state, tree_state(root), root)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def _orphan_regions() -> set[str]:
    """The shared memory of a server on this host that no live process uses: the Python backend's regions
    that no process names, and multiprocessing's semaphores (MLServer's workers') that no process maps."""
    if not SHM_DIR.is_dir():
        return set()
    names = {f.name for f in SHM_DIR.iterdir()}
    regions = {n for n in names if n.startswith(REGION_PREFIX)}
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, TypeError):
            regions -= set(proc.info["cmdline"] or ())
    semaphores = {n for n in names if n.startswith(SEMAPHORE_PREFIX)}
    if semaphores:
        semaphores -= mapped_names(psutil.pids())
    return regions | semaphores


@pytest.fixture(scope="session", autouse=True)
def no_shared_memory_left():
    """Nothing of a run outlives it in /dev/shm either: a stub's region stays for good where tritonserver was
    killed before its unloads, and a semaphore where MLServer's resource tracker was, unless perseus removes
    them (perseus/server/shm.py)."""
    before = _orphan_regions()
    yield
    assert sorted(_orphan_regions() - before) == []
