"""The docker launcher without a daemon: the `docker run` argv, its mounts, the scenario's rules, native configs.

The native onnxruntime configs are checked as rendered text only: no Triton onnxruntime backend loads
them here (README, "Never run for real")."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from perseus.errors import InputError, ServerError
from perseus.scenario import DEFAULT_DOCKER_IMAGE, parse
from perseus.server import repository
from perseus.server.docker import DockerServer, check_docker, container_name, link_targets
from tests.conftest import PLANTED_SECRETS

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = REPO_ROOT / "model_repository"
DOUBLE = REPO_ROOT / "tests" / "doubles" / "fake_docker.py"


def scenario(server: dict | None = None, tenant_server: dict | None = None, model: str = "lstm_tiny"):
    tenant = {"name": "series", "model": model, "sla_ms": 100, "load": {"arrival": "constant", "rate": 1}}
    if tenant_server:
        tenant["server"] = tenant_server
    return parse({"name": "x", "server": server or {"launcher": "docker"}, "tenants": [tenant]}, "x.toml")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """lstm_tiny's configs plus a weights file large enough for render() to symlink it."""
    src = tmp_path / "src"
    shutil.copytree(MODELS / "lstm_tiny", src / "lstm_tiny", ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    (src / "lstm_tiny" / "1").mkdir(exist_ok=True)  # 1/model.py is generated, so a fresh clone has no 1/
    (src / "lstm_tiny" / "1" / "model.onnx").write_bytes(b"\0" * (repository.LINK_ABOVE_BYTES + 1))
    return src


def rendered(source: Path, tmp_path: Path, *, gpu: bool = False, **server) -> tuple[Path, dict]:
    dest = tmp_path / "repo"
    configs = repository.render(scenario(tenant_server=server or None), ["series"], source, dest, gpu, native=True)
    return dest, configs


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


# -- the argv ------------------------------------------------------------------------------------
def test_argv_cpu(source: Path, tmp_path: Path):
    repo, _ = rendered(source, tmp_path)
    argv = DockerServer(repo, tmp_path / "server.log", deployment="shared").run_argv()
    assert argv[1:4] == ["run", "-d", "--rm"]  # the daemon removes a container that stops
    assert "--gpus" not in argv
    assert pairs(argv, "-p") == ["127.0.0.1::8000", "127.0.0.1::8001", "127.0.0.1::8002"]  # loopback, docker's ports
    assert pairs(argv, "--label") == ["perseus=1"]
    assert "--shm-size=1g" in argv
    assert DEFAULT_DOCKER_IMAGE in argv
    assert not {"-e", "--env", "--env-file", "--privileged", "--network"} & set(argv)  # no GPU: no -e at all
    assert not any(a.startswith(("--env=", "-e=", "--network=")) for a in argv)
    image = argv.index(DEFAULT_DOCKER_IMAGE)
    assert argv[image + 1 :][:3] == ["tritonserver", "--model-repository=/models", "--model-config-name=onnxruntime"]
    assert all(a.startswith("-") or i == 0 for i, a in enumerate(argv[image + 1 :]))  # nothing after is an image


def test_only_gpu_selection_reaches_the_container(source: Path, tmp_path: Path, monkeypatch):
    """The same allowlist as the local server's, narrowed to which GPUs CUDA uses; planted credentials stay out."""
    planted = dict(PLANTED_SECRETS)
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")  # allowed for the local server; the image sets its own
    repo, _ = rendered(source, tmp_path, gpu=True)
    gpu = DockerServer(repo, tmp_path / "server.log", gpu=True).run_argv()
    cpu = DockerServer(repo, tmp_path / "server.log").run_argv()
    assert pairs(gpu, "-e") == ["CUDA_VISIBLE_DEVICES=1"]
    assert gpu.index("-e") < gpu.index(DEFAULT_DOCKER_IMAGE)
    assert "-e" not in cpu
    for argv in (gpu, cpu):
        assert not any(secret in arg for arg in argv for secret in (*planted, *planted.values()))


def test_argv_gpu_asks_for_all_gpus(source: Path, tmp_path: Path):
    repo, _ = rendered(source, tmp_path, gpu=True)
    argv = DockerServer(repo, tmp_path / "server.log", gpu=True).run_argv()
    i = argv.index("--gpus")
    assert argv[i + 1] == "all"
    assert i < argv.index(DEFAULT_DOCKER_IMAGE)  # a docker option, not a tritonserver one


def test_mounts_are_read_only_and_symlink_targets_resolve(source: Path, tmp_path: Path):
    repo, _ = rendered(source, tmp_path)
    link = repo / "series" / "1" / "model.onnx"
    assert link.is_symlink()  # render() links large files to their absolute host path...
    target = (source / "lstm_tiny" / "1" / "model.onnx").resolve()
    assert link_targets(repo) == [target]
    mounts = pairs(DockerServer(repo, tmp_path / "server.log").run_argv(), "-v")
    # ... so the target is mounted at that same path: the link resolves inside the container too
    assert mounts == [f"{repo.resolve()}:/models:ro", f"{target}:{target}:ro"]


def test_image_from_the_scenario(source: Path, tmp_path: Path):
    repo, _ = rendered(source, tmp_path)
    s = scenario({"launcher": "docker", "image": "registry.example.com:5000/triton:24.10-py3"})
    argv = DockerServer(repo, tmp_path / "server.log", image=s.server.image).run_argv()
    assert "registry.example.com:5000/triton:24.10-py3" in argv
    assert DEFAULT_DOCKER_IMAGE not in argv


def test_path_with_a_colon_is_refused(tmp_path: Path):
    repo = tmp_path / "a:b"
    repo.mkdir()
    with pytest.raises(ServerError, match="':'"):
        DockerServer(repo, tmp_path / "server.log").run_argv()


def test_container_names_are_unique_and_valid():
    a, b = container_name("solo-vision"), container_name("solo-vision")
    assert a != b
    assert a.startswith(f"perseus-solo-vision-{os.getpid()}-")
    assert container_name("p#1 / x").startswith("perseus-p-1-x-")  # docker allows [a-zA-Z0-9_.-]


def test_alive_is_throttled(tmp_path: Path, monkeypatch):
    server = DockerServer(tmp_path, tmp_path / "server.log")
    assert server.alive() is False and server.pid() is None  # not started
    calls = []
    server._created = True
    monkeypatch.setattr(server, "_state", lambda raise_timeout=False: calls.append(1) or (True, "0"))
    assert server.alive() and server.alive()
    assert len(calls) == 1  # once per HEALTH_EVERY_S


# -- the scenario ----------------------------------------------------------------------------------
def test_docker_image_default_is_filled_in():
    assert scenario().server.image == DEFAULT_DOCKER_IMAGE
    assert "24.10" in DEFAULT_DOCKER_IMAGE  # Triton 2.51.0, as the local launcher
    assert scenario({"launcher": "local"}).server.image is None


@pytest.mark.parametrize(
    ("server", "field", "words"),
    [
        ({"launcher": "local", "image": "x:1"}, "server.image", "only for launcher 'docker'"),
        ({"image": "x:1"}, "server.image", "only for launcher 'docker'"),
        ({"launcher": "remote", "url": "http://h:8000", "image": "x:1"}, "server.image", "only for launcher"),
        ({"launcher": "docker", "url": "http://h:8000"}, "server", "only for launcher 'remote'"),
        ({"launcher": "docker", "metrics_url": "http://h:8002/metrics"}, "server", "only for launcher 'remote'"),
        ({"launcher": "docker", "image": "--privileged"}, "server.image", "not a docker image reference"),
        ({"launcher": "docker", "image": "a b"}, "server.image", "not a docker image reference"),
        ({"launcher": "docker", "image": ""}, "server.image", "not a docker image reference"),
        ({"launcher": "docker", "image": 5}, "server.image", "valid string"),
        ({"launcher": "podman"}, "server.launcher", "'local', 'docker' or 'remote'"),
    ],
)
def test_server_validation(server: dict, field: str, words: str):
    with pytest.raises(InputError) as info:
        scenario(server)
    assert info.value.field == field
    assert words in info.value.reason


# -- native configs in the rendered repository ---------------------------------------------------
def _read(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_native_config_gets_the_settings_on_the_cpu(source: Path, tmp_path: Path):
    repo, configs = rendered(source, tmp_path, instances=2, max_queue_delay_us=300)
    native = _read(repo / "series" / "configs" / "onnxruntime.pbtxt")
    assert native.platform == "onnxruntime_onnx" and native.name == "series"
    assert [(g.count, g.kind) for g in native.instance_group] == [(2, mc.ModelInstanceGroup.KIND_CPU)]
    assert native.dynamic_batching.max_queue_delay_microseconds == 300
    assert configs["series"] == native  # the config served is the one recorded
    assert _read(repo / "series" / "config.pbtxt").backend == "python"  # the fallback, rendered as before


def test_native_config_without_settings_moves_to_the_cpu_or_stays_on_the_gpu(source: Path, tmp_path: Path):
    cpu, _ = rendered(source, tmp_path / "cpu")
    gpu, _ = rendered(source, tmp_path / "gpu", gpu=True)
    kinds = [g.kind for g in _read(cpu / "series" / "configs" / "onnxruntime.pbtxt").instance_group]
    assert kinds == [mc.ModelInstanceGroup.KIND_CPU]
    kinds = [g.kind for g in _read(gpu / "series" / "configs" / "onnxruntime.pbtxt").instance_group]
    assert kinds == [mc.ModelInstanceGroup.KIND_GPU]


def test_local_render_is_unchanged(source: Path, tmp_path: Path):
    """Without native, configs/ is copied as it is and config.pbtxt is what is returned."""
    s = scenario({"launcher": "local"}, {"instances": 2})
    configs = repository.render(s, ["series"], source, tmp_path / "repo", False)
    copied = tmp_path / "repo" / "series" / "configs" / "onnxruntime.pbtxt"
    assert copied.read_text() == (source / "lstm_tiny" / "configs" / "onnxruntime.pbtxt").read_text()
    assert configs["series"].backend == "python"


def test_native_ensemble_steps(tmp_path: Path):
    """An ensemble's step with a native config is served natively too, under its own name."""
    s = parse(
        {
            "name": "x",
            "server": {"launcher": "docker"},
            "tenants": [{"name": "photos", "model": "image_pipeline", "sla_ms": 1, "load": {"rate": 1}}],
        },
        "x.toml",
    )
    configs = repository.render(s, ["photos"], MODELS, tmp_path, False, native=True)
    assert configs["resnet"].platform == "onnxruntime_onnx" and configs["resnet"].name == "resnet"
    assert [g.kind for g in configs["resnet"].instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert configs["image_preprocess"].backend == "python"  # no native config: config.pbtxt


def test_check_models_checks_native_configs_for_docker(source: Path):
    native = source / "lstm_tiny" / "configs" / "onnxruntime.pbtxt"
    native.write_text(native.read_text().replace("max_batch_size: 32", "max_batch_size: 0"))
    s = scenario(tenant_server={"dynamic_batching": True})
    with pytest.raises(InputError, match="cannot batch") as info:
        repository.check_models(s, source, "x.toml")
    assert info.value.field == "tenants[0].server.dynamic_batching"
    # the local launcher never reads that file
    repository.check_models(scenario({"launcher": "local"}, {"dynamic_batching": True}), source, "x.toml")


# -- the up-front check ------------------------------------------------------------------------------
def test_check_docker_without_a_client(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no docker
    with pytest.raises(InputError) as info:
        check_docker("x.toml")
    assert info.value.field == "server.launcher"
    assert "not on PATH" in info.value.reason and "launcher = 'local'" in info.value.reason


@pytest.mark.parametrize("daemon", ["up", "down"])
def test_check_docker_asks_the_daemon(tmp_path: Path, monkeypatch, daemon: str):
    wrapper = tmp_path / "docker"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DOUBLE}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("FAKE_DOCKER_DAEMON", daemon)
    if daemon == "up":
        assert check_docker("x.toml") == "27.0.0-fake"
        return
    with pytest.raises(InputError) as info:
        check_docker("x.toml")
    assert info.value.field == "server.launcher"
    assert "Cannot connect to the Docker daemon" in info.value.reason  # docker's own first line
    assert "\n" not in str(info.value)
