"""The real CLI on every file of tests/data/bad_scenarios/: one clear line, exit 2, nothing started or written.

Each file is tests/data/good_scenario.toml with one thing wrong, and starts with comments that say
what the error must be:

    # expect: tenants[0].load.rate     the error reads "FILE: tenants[0].load.rate: reason" (or, for a
                                       file-level error such as "TOML syntax error", "FILE: TOML syntax error: ...")
    # file: ../broken_repo/x/config.pbtxt   optional: the file the error names, when it is not the scenario
    # mentions: max_batch_sise              optional: a word the reason must hold

The runs are independent processes, so they go a few at a time (about a second of CPU each).
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT, assert_unchanged, run_cli, tree_state

pytestmark = pytest.mark.integration

CORPUS = REPO_ROOT / "tests" / "data" / "bad_scenarios"
FILES = sorted(CORPUS.glob("*.toml"))
# Bugs in modules this suite may not change; each fails today and must be fixed upstream.
KNOWN_BUGS: dict[str, str] = {}
# The model repositories the corpus names: bad input must neither build nor touch anything in them.
REPOSITORIES = (REPO_ROOT / "model_repository", REPO_ROOT / "tests" / "data" / "broken_repo")


@dataclass(frozen=True)
class Expectation:
    field: str
    file: Path
    mentions: str | None


def expectation(path: Path) -> Expectation:
    heads = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        heads[key] = value.strip()
    assert "expect" in heads, f"{path.name} must start with '# expect: <field>'"
    named = (path.parent / heads["file"]).resolve() if "file" in heads else path
    return Expectation(heads["expect"], named, heads.get("mentions"))


@dataclass
class Outcome:
    proc: subprocess.CompletedProcess
    out: Path
    marker: Path
    left: list[str]  # command lines of processes that still hold the run's TMPDIR


def _run(path: Path, folder: Path) -> Outcome:
    out, marker = folder / "run", folder / "TMPDIR"
    proc = run_cli(["run", path, "--out", out], cwd=folder, tmpdir=marker, timeout=120)
    left = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(marker) in part for part in p.info["cmdline"] or []):
                left.append(" ".join(p.info["cmdline"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return Outcome(proc, out, marker, left)


@pytest.fixture(scope="module")
def repositories_before() -> dict[Path, dict]:
    return {root: tree_state(root) for root in REPOSITORIES}


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, repositories_before) -> dict[str, Outcome]:
    """Run the CLI on every selected corpus file, a few at a time, once for the module."""
    wanted = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_bad_scenario" and hasattr(item, "callspec")
    ]
    base = tmp_path_factory.mktemp("bad-scenarios")
    workers = min(4, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {p.name: pool.submit(_run, p, base / p.stem) for p in wanted}
        return {name: f.result() for name, f in futures.items()}


def _params():
    for path in FILES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.name])] if path.name in KNOWN_BUGS else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_corpus_is_big_enough():
    assert len(FILES) >= 40
    for path in FILES:
        expectation(path)  # every file says what it expects


@pytest.mark.parametrize("path", list(_params()))
def test_bad_scenario(path: Path, outcomes):
    want = expectation(path)
    got = outcomes[path.name]
    proc = got.proc
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.stdout.strip() == ""
    line = lines[0]
    prefix = f"perseus: {want.file}: "
    assert line.startswith(prefix), (line, prefix)
    rest = line.removeprefix(prefix)
    assert rest == want.field or rest.startswith(f"{want.field}: "), (rest, want.field)
    if want.mentions:
        assert want.mentions in rest
    # Nothing written, nothing started.
    assert not got.out.exists()
    assert got.left == []
    assert list(got.marker.glob("perseus-*")) == []


def test_no_model_repository_was_written(outcomes, repositories_before):
    """After every selected corpus run: no model file built, rebuilt or changed (the runs go in parallel,
    so the repositories are compared once, around all of them)."""
    if not outcomes:
        pytest.skip("no corpus file selected")
    for root, state in repositories_before.items():
        assert_unchanged(state, tree_state(root), root)
