"""CLI conventions a user meets first: --version, and errors that say what is wrong with a path."""

from __future__ import annotations

from tests.conftest import REPO_ROOT, run_cli, unchanged_paths


def test_version():
    proc = run_cli(["--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == "perseus 0.1.0"


def test_report_of_a_missing_folder_says_so(tmp_path):
    proc = run_cli(["report", tmp_path / "no" / "such"])
    assert proc.returncode == 2 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_out_naming_a_file_says_so(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with unchanged_paths(target, REPO_ROOT / "model_repository"):
        proc = run_cli(["run", REPO_ROOT / "scenarios" / "smoke.toml", "--out", target])
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and target.read_text() == "x"


HELP_OF = [
    [],
    ["run"],
    ["calibrate"],
    ["capacity"],
    ["sweep"],
    ["plan"],
    ["ui"],
    ["models", "build"],
    ["prices"],
    ["prices", "refresh"],
]


def test_flags_show_no_type_placeholder():
    for command in HELP_OF:
        proc = run_cli([*command, "--help"], env={"COLUMNS": "160"})
        assert proc.returncode == 0, proc.stderr
        assert "<bool>" not in proc.stdout, command
        options = [line for line in proc.stdout.splitlines() if line.lstrip("│ ").startswith("-")]
        assert not [o for o in options if "<list[" in o], command  # a repeatable option names its value (DIR, RHO)
        assert f"Usage: perseus {' '.join(command)}".rstrip() in proc.stdout  # the name the user types
    # Options that take a value keep their type.
    run_help = run_cli(["run", "--help"], env={"COLUMNS": "160"}).stdout
    flag = next(line for line in run_help.splitlines() if "--no-baselines" in line)
    assert "<" not in flag.split("Skip")[0]
    assert "<float>" in next(line for line in run_help.splitlines() if "--duration" in line)


def test_a_misspelt_name_gets_the_closest_one(tmp_path):
    proc = run_cli(["ui", REPO_ROOT / "scenarios" / "smoke.toml", "--deployment", "sharde", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.strip().endswith("did you mean 'shared'?") and not (tmp_path / "r").exists()
    scenario = tmp_path / "s.toml"
    text = (REPO_ROOT / "scenarios" / "smoke.toml").read_text().replace("sla_ms", "sla_msec", 1)
    scenario.write_text(text.replace('"../model_repository"', f'"{REPO_ROOT / "model_repository"}"'))
    proc = run_cli(["run", scenario, "--out", tmp_path / "r"])
    assert proc.returncode == 2 and proc.stderr.strip().endswith("unknown key; did you mean 'sla_ms'?")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_calibrate_refuses_a_negative_spin_before_anything_is_written(tmp_path):
    proc = run_cli(["calibrate", "--spin-ms", "-1", "--out", tmp_path / "cal"])
    assert proc.returncode == 2 and proc.stderr.strip() == "perseus: command line: --spin-ms: must be >= 0 (got -1)"
    assert not (tmp_path / "cal").exists()
