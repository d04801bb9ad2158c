"""CLI conventions a user meets first: --version, and errors that say what is wrong with a path."""

from __future__ import annotations

from tests.conftest import REPO_ROOT, run_cli


def test_version():
    proc = run_cli(["--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == "perseus 0.1.0"


def test_report_of_a_missing_folder_says_so(tmp_path):
    proc = run_cli(["report", tmp_path / "no" / "such"])
    assert proc.returncode == 2 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_out_naming_a_file_says_so(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    proc = run_cli(["run", REPO_ROOT / "scenarios" / "smoke.toml", "--out", target])
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and target.read_text() == "x"


HELP_OF = [[], ["run"], ["calibrate"], ["capacity"], ["sweep"], ["plan"], ["ui"], ["models", "build"], ["prices"]]


def test_flags_show_no_type_placeholder():
    for command in HELP_OF:
        proc = run_cli([*command, "--help"], env={"COLUMNS": "160"})
        assert proc.returncode == 0, proc.stderr
        assert "<bool>" not in proc.stdout, command
        assert f"Usage: perseus {' '.join(command)}".rstrip() in proc.stdout  # the name the user types
    # Options that take a value keep their type.
    run_help = run_cli(["run", "--help"], env={"COLUMNS": "160"}).stdout
    flag = next(line for line in run_help.splitlines() if "--no-baselines" in line)
    assert "<" not in flag.split("Skip")[0]
    assert "<float>" in next(line for line in run_help.splitlines() if "--duration" in line)
