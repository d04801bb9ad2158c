"""The real CLI on bad input: exit 2, one line on stderr naming file and field, nothing started or written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE = (REPO_ROOT / "scenarios" / "smoke.toml").read_text()
# The scenario is written elsewhere, so its repository path must be absolute.
MODELS = REPO_ROOT / "model_repository"
GOOD = SMOKE.replace('model_repository = "../model_repository"', f'model_repository = "{MODELS}"')
assert GOOD != SMOKE


@pytest.fixture
def unbuilt(tmp_path: Path) -> tuple[str, Path]:
    """GOOD on a copy of its two models without their generated files (1/model.onnx, 1/model.py), so a
    check that came after the build would show up as files written into this repository."""
    repo = tmp_path / "unbuilt_models"
    for name in ("resnet_tiny", "lstm_tiny"):
        shutil.copytree(
            MODELS / name, repo / name, ignore=shutil.ignore_patterns("model.onnx", "model.py", "__pycache__")
        )
    return GOOD.replace(f'model_repository = "{MODELS}"', f'model_repository = "{repo}"'), repo


@pytest.fixture
def bad_run(tmp_path: Path, cli, tritons, unchanged):
    """Run `perseus run` on a scenario text with extra args; check the contract for bad input."""

    def go(
        text: str | None,
        *args: str,
        field: str | None,
        name: str = "scenario.toml",
        out: Path | None = None,
        where: str | None = None,
        repository: Path = MODELS,
    ):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        out = out or tmp_path / "run"
        existed = out.exists()
        marker = tmp_path / "tmp"
        # Nothing written or rebuilt: not in --out, not in the model repository.
        with unchanged(out, repository):
            proc = cli(["run", path, "--out", out, *args], cwd=tmp_path, tmpdir=marker)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        line = lines[0]
        assert line.startswith("perseus: ")
        assert (where or name) in line
        if field:
            assert f": {field}: " in line
        # nothing created, nothing started
        assert out.exists() == existed
        assert tritons(marker) == []
        assert not list(marker.glob("perseus-*"))
        return line

    return go


def test_unknown_key(bad_run):
    line = bad_run(GOOD.replace("seed = 1", "seed = 1\nsede = 2"), field="run.sede")
    assert line.endswith("run.sede: unknown key; did you mean 'seed'?")


def test_bad_rate(bad_run):
    line = bad_run(GOOD.replace("rate = 25", "rate = 0"), field="tenants[0].load.rate")
    assert "must be > 0" in line


def test_unknown_model(bad_run):
    line = bad_run(GOOD.replace('model = "lstm_tiny"', 'model = "lstm_huge"'), field="tenants[1].model")
    assert "no model 'lstm_huge'" in line
    assert "lstm_tiny" in line  # lists what there is


def test_unknown_instance(bad_run):
    line = bad_run(GOOD.replace('instance = "g4dn.xlarge"', 'instance = "x9.nano"'), field="pricing.instance")
    assert "'x9.nano'" in line


def test_toml_syntax_error(bad_run):
    line = bad_run(GOOD.replace("[run]", "[run"), field=None)
    assert "TOML syntax error" in line


def test_out_not_empty(bad_run, tmp_path: Path, unbuilt):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    text, repo = unbuilt
    line = bad_run(text, field=None, out=out, where="--out", repository=repo)
    assert line.startswith("perseus: --out: ")
    assert str(out) in line
    assert (out / "keep.txt").read_text() == "mine"


def test_negative_duration_flag(bad_run, unbuilt):
    text, repo = unbuilt
    line = bad_run(text, "--duration", "-1", field="--duration", where="command line", repository=repo)
    assert "must be > 0" in line


def test_negative_warmup_flag(bad_run, unbuilt):
    text, repo = unbuilt
    bad_run(text, "--warmup", "-3", field="--warmup", where="command line", repository=repo)


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["--workers", "-1"], "--workers", "must be >= 0"),
        (["--workers", "2", "--expect-workers", "1"], "--expect-workers", "must be >= --workers (2)"),
        (["--workers", "1", "--master-bind", "my-laptop"], "--master-bind", "must be an IP address"),
        (["--workers", "1", "--master-port", "70000"], "--master-port", "port number"),
    ],
)
def test_bad_worker_flags(bad_run, unbuilt, args, field, words):
    text, repo = unbuilt
    line = bad_run(text, *args, field=field, where="command line", repository=repo)
    assert words in line


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["--precision", "0"], "--precision", "must be > 0"),
        (["--max-probes", "0"], "--max-probes", "must be >= 1"),
        (["--quick", "--max-probes", "0"], "--max-probes", "must be >= 1"),
    ],
)
def test_bad_capacity_flags(cli, tmp_path, unbuilt, unchanged, args, field, words):
    text, repo = unbuilt
    scenario, out = tmp_path / "scenario.toml", tmp_path / "capacity"
    scenario.write_text(text)
    with unchanged(repo):  # refused before any model is built
        proc = cli(["capacity", scenario, "--out", out, *args], cwd=tmp_path, tmpdir=tmp_path / "tmp")
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"perseus: command line: {field}: {words} (got 0)"], proc.stderr
    assert not out.exists()


def test_workers_refuse_the_embedded_strategy(bad_run):
    text = GOOD.replace("min_requests = 50", 'min_requests = 50\nstrategies = ["external", "embedded"]')
    line = bad_run(text, "--workers", "2", field="--workers", where="command line")
    assert "embedded" in line


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--master-port", "0"], "--master-port"), (["--server-url", "triton:8000"], "--server-url")],
)
def test_bad_worker_command_flags(cli, args, field):
    proc = cli(["worker", "--master", "127.0.0.1", *args], timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith(f"perseus: command line: {field}: "), proc.stderr


def test_missing_scenario(bad_run):
    line = bad_run(None, field=None, name="absent.toml")
    assert line.endswith("absent.toml: no such file")


def _has_gpu() -> bool:
    from perseus.telemetry import gpu

    return bool(gpu.gpus()[0])


@pytest.mark.skipif(_has_gpu(), reason="needs a host without an NVIDIA GPU")
def test_gpu_device_without_gpu(bad_run):
    bad_run(GOOD.replace('device = "auto"', 'device = "gpu"'), field="server.device")


def test_report_on_a_folder_without_manifest(tmp_path: Path, cli):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    proc = cli(["report", folder], cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(folder) in lines[0]
    assert "manifest.json" in lines[0]
    assert "Traceback" not in proc.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], ["run", "report", "models", "doctor"]),
        (["run"], ["SCENARIO_FILE", "--out", "--duration", "--warmup", "--no-baselines", "--workers", "--master-bind"]),
        (["worker"], ["--master", "--master-port", "--server-url", "perseus run"]),
        (["report"], ["RUN_DIR"]),
        (["models"], ["build"]),
        (["models", "build"], ["--repository", "--force"]),
        (["doctor"], ["tritonserver", "GPU"]),
    ],
    ids=["perseus", "run", "worker", "report", "models", "models-build", "doctor"],
)
def test_help(cli, args, words):
    proc = cli([*args, "--help"])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Usage:" in text
    for word in words:
        assert word.lower() in text.lower(), word
