"""The shape, enforced: the import contracts hold, a violation breaks them, and no import hides in a function.

The contracts live in pyproject.toml ([tool.importlinter]) and are described in docs/architecture.md.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Imports of perseus modules that are made inside a function on purpose, each with its reason. Anything
# else inside a function is either a cycle being dodged (move the shared piece down a layer instead) or
# a heavy import that belongs at the top. The reasons are two:
# - Locust: importing it monkey-patches the process for gevent, so only the process that sends load may
#   import the load engine (perseus.experiment, perseus.ui.app, perseus.load.distributed);
# - start-up time: the CLI imports each command's modules when that command runs, so `perseus --help`,
#   `perseus report` and `perseus doctor` stay quick, and bad input fails before matplotlib loads.
DEFERRED = {
    ("perseus.run", "perseus.experiment"),  # Locust
    ("perseus.run", "perseus.load.distributed"),  # Locust
    ("perseus.cli", "perseus.load.distributed"),  # Locust (perseus worker)
    ("perseus.ui", "perseus.ui.app"),  # Locust
    ("perseus.report", "perseus.analysis.plots"),  # matplotlib
    ("perseus.report", "perseus.analysis.render"),  # jinja, after the input checks
    ("perseus.pricing.cli", "perseus.pricing.aws"),  # boto3, only for `prices refresh`
}
# each command imports its own modules when it runs
CLI_MODULES = {"perseus.cli", "perseus.sweep.cli", "perseus.packing.cli", "perseus.ui", "perseus.doctor"}


def _module(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(package: str, name: str) -> bool:
    base = REPO_ROOT.joinpath(*package.split("."), name)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def function_imports() -> set[tuple[str, str]]:
    """(module, imported perseus module) for every perseus import inside a function body."""
    found = set()
    for path in sorted((REPO_ROOT / "perseus").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("perseus"):
                    # `from perseus.pricing import aws` imports the module perseus.pricing.aws
                    names = [
                        f"{node.module}.{a.name}" if _is_module(node.module, a.name) else node.module
                        for a in node.names
                    ]
                    found.update((_module(path), name) for name in names)
                elif isinstance(node, ast.Import):
                    found.update((_module(path), a.name) for a in node.names if a.name.startswith("perseus"))
    return found


def test_no_perseus_import_hides_in_a_function():
    hidden = {(m, i) for m, i in function_imports() if (m, i) not in DEFERRED and m not in CLI_MODULES}
    assert not hidden, f"imports inside functions (move them to the top, or a shared piece down a layer): {hidden}"


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The package and its contracts, copied so that a violation can be planted."""
    root = tmp_path_factory.mktemp("shape")
    shutil.copytree(REPO_ROOT / "perseus", root / "perseus", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold(copy):
    proc = _lint(copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("perseus/analysis/stats.py", "import perseus.load.engine", "Analysis is pure"),
        ("perseus/session.py", "import perseus.display", "The core never imports the screen"),
        ("perseus/scenario.py", "import perseus.server.local", "Layers"),
    ],
)
def test_a_planted_violation_breaks_its_contract(copy, module, planted, contract):
    target = copy / module
    original = target.read_text(encoding="utf-8")
    try:
        target.write_text(original + f"\n{planted}  # planted by the test\n", encoding="utf-8")
        proc = _lint(copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert proc.returncode == 1, proc.stdout
    broken = proc.stdout.split("Broken contracts")[-1]
    assert contract in broken and planted.split()[-1] in broken
