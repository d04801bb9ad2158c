"""Security defaults that need no server: lint rules, names that cannot escape the run folder, the server's environment.

The live checks (every listener on 127.0.0.1, no secret in a run folder) are in
tests/integration/test_faults.py and tests/integration/test_run_smoke.py.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from perseus import results
from perseus.errors import InputError
from perseus.plan import plan
from perseus.scenario import parse
from tests.conftest import PLANTED_SECRETS

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
GOOD = tomllib.loads((REPO_ROOT / "tests" / "data" / "good_scenario.toml").read_text())
# bandit's rules for shells and binds, which must stay on for the package.
GUARDS = {"S602", "S604", "S605", "S609", "S104"}


def test_ruff_s_rules_are_on_for_the_package():
    lint = PYPROJECT["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    ignored = set(lint.get("ignore", []))
    assert not ignored & GUARDS, ignored & GUARDS
    assert "S" not in ignored
    for pattern, rules in lint.get("per-file-ignores", {}).items():
        if pattern.startswith(("perseus", "benchmarks")) or pattern in ("*", "**"):
            assert not set(rules) & (GUARDS | {"S"}), (pattern, rules)


def test_no_shell_true_anywhere():
    offenders = []
    for folder in ("perseus", "benchmarks", "tests"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text(errors="replace")
            if re.search(r"shell\s*=\s*True", text) and path != Path(__file__):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


@pytest.mark.parametrize("name", ["../x", "..", "a/../../b", "/etc", "x/..", ".hidden", "a\\b", "~root", "a\x00b"])
def test_a_scenario_name_cannot_escape_the_run_folder(name: str):
    data = copy.deepcopy(GOOD)
    data["name"] = name
    with pytest.raises(InputError) as info:
        parse(data, "x.toml")
    assert info.value.field == "name"


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/etc"])
def test_a_tenant_name_cannot_escape_the_run_folder(name: str):
    """Tenants name deployment folders (solo-<tenant>) and served models."""
    data = copy.deepcopy(GOOD)
    data["tenants"][0]["name"] = name
    with pytest.raises(InputError) as info:
        parse(data, "x.toml")
    assert info.value.field == "tenants[0].name"


def test_valid_names_stay_inside_their_folders(tmp_path: Path):
    data = copy.deepcopy(GOOD)
    data["name"] = "a-b_c9"
    data["run"]["baselines"] = True
    scenario = parse(data, "x.toml")
    root = tmp_path / "results"
    run_dir = results.default_run_dir(scenario.name, root)
    assert run_dir.resolve().parent == root.resolve()
    for deployment in plan(scenario):
        assert (run_dir / deployment.name).resolve().parent == run_dir.resolve()


def test_the_server_environment_is_an_allowlist(monkeypatch):
    import sys

    from perseus.server.binary import find_install

    for name, value in PLANTED_SECRETS.items():
        monkeypatch.setenv(name, value)
    kept = {"HOME": "/home/p", "TMPDIR": "/tmp/p", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    kept |= {"CUDA_VISIBLE_DEVICES": "0", "NVIDIA_VISIBLE_DEVICES": "all", "OMP_NUM_THREADS": "2"}
    for name, value in kept.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PERSEUS_HARMLESS", "not on the list")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")  # would mix another Python's packages into the stub's
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    install = find_install()
    env = install.environment()
    assert not set(PLANTED_SECRETS) & set(env)
    assert not set(PLANTED_SECRETS.values()) & set(env.values())
    assert {k: env[k] for k in kept} == kept
    assert "PERSEUS_HARMLESS" not in env and "PYTHONPATH" not in env
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)  # the stub's python3: this venv's
    assert env["LD_LIBRARY_PATH"].split(":") == [str(install.libs), "/opt/lib"]
    assert set(env) == {"PATH", "LD_LIBRARY_PATH", *kept}


def test_the_server_path_never_gains_the_current_folder(monkeypatch):
    from perseus.server.binary import find_install

    monkeypatch.delenv("PATH")
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    env = find_install().environment()
    assert "" not in env["PATH"].split(":") and "" not in env["LD_LIBRARY_PATH"].split(":")
