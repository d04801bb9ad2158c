"""`perseus doctor`: its table on stdout (so `perseus doctor | less` works), ok / warn / problem, and no repeats."""

from __future__ import annotations

from rich.console import Console

from perseus import doctor
from tests.conftest import run_cli


def test_statuses_are_ok_warn_and_problem():
    out = Console(record=True, width=200, color_system=None)
    problems = doctor.render(
        [
            doctor.Check("a", True, "fine"),
            doctor.Check("b", True, "optional part missing", "install it", warn=True),
            doctor.Check("c", False, "broken", "fix it"),
        ],
        out,
    )
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.export_text().splitlines()[4:7]}
    assert rows == {"a": "ok", "b": "warn", "c": "problem"}
    assert [p.name for p in problems] == ["c"]  # a warning is not a problem: the exit code stays 0


def test_doctor_prints_its_table_on_stdout_and_docker_unreachable_is_a_warning():
    proc = run_cli(["doctor"], env={"DOCKER_HOST": "unix:///nonexistent/docker.sock", "COLUMNS": "200"})
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == ""
    rows = {line.split("│")[1].strip(): line.split("│")[2:] for line in proc.stdout.splitlines() if line.count("│") > 3}
    assert rows["docker"][0].strip() == "warn"
    gpu = rows["gpu"][1]
    assert gpu.count("no GPU") + gpu.count("no NVIDIA GPU") <= 1  # said once, not "no GPU: no NVIDIA GPU: ..."
