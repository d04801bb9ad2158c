"""The same tenants on other serving frameworks: real MLServer and BentoML processes from `perseus servers install`.

scripts/test.sh installs every framework first, so CI runs these for real; on a machine without the
framework's environment they skip, naming the command that installs it. Each run has its own TMPDIR,
and the framework's processes hold the rendered repository's path (under it) on their command line,
so `processes_of(marker)` finds exactly this run's server and its worker processes.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

from perseus import results
from perseus.server import frameworks
from perseus.server.shm import SHM_DIR, mapped_names
from tests.conftest import PLANTED_SECRETS, REPO_ROOT, run_cli
from tests.integration.test_faults import LiveRun, assert_no_orphans, listeners, processes_of

pytestmark = pytest.mark.integration

MODELS = REPO_ROOT / "model_repository"
DURATION = 3

SCENARIO = """
name = "frameworks"
[server]
kind = "{kind}"
model_repository = "{models}"
device = "cpu"
[run]
duration_s = {duration}
warmup_s = 0.5
seed = 5
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 500
[tenants.load]
arrival = "poisson"
rate = 20
[tenants.server]
dynamic_batching = false
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 500
batch = 2
[tenants.load]
arrival = "constant"
rate = 20
[tenants.server]
dynamic_batching = true
max_queue_delay_us = 1000
"""


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def installed_or_skip(kind: str) -> frameworks.Environment:
    env = frameworks.installed(kind)
    if env is None:
        pytest.skip(f"{kind} is not installed: `{frameworks.install_command(kind)}` (scripts/test.sh does it)")
    return env


def scenario_file(folder: Path, kind: str, duration: float = DURATION) -> Path:
    path = folder / f"{kind}.toml"
    path.write_text(SCENARIO.format(kind=kind, models=MODELS, duration=duration))
    return path


def shm_names() -> set[str]:
    return {f.name for f in SHM_DIR.iterdir()} if SHM_DIR.is_dir() else set()


@pytest.fixture(scope="module", params=["mlserver", "bentoml"])
def framework_run(request, tmp_path_factory) -> tuple[str, Path, Path, set[str]]:
    """The kind, the run folder, the run's TMPDIR, and what is new in /dev/shm after the run."""
    kind = request.param
    installed_or_skip(kind)
    base = tmp_path_factory.mktemp(kind)
    run_dir, marker = base / "run", base / "tmp"
    before = shm_names()
    proc = run_cli(["run", scenario_file(base, kind), "--out", run_dir], tmpdir=marker, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return kind, run_dir, marker, shm_names() - before


def test_the_same_columns_and_every_request_answered(framework_run):
    kind, run_dir, _, _ = framework_run
    table = pq.read_table(run_dir / "shared" / results.REQUESTS)
    assert table.schema.equals(results.REQUEST_SCHEMA, check_metadata=False)
    frame = table.to_pandas()
    measured = frame[~frame["warmup"]]
    assert measured["ok"].all(), measured.loc[~measured["ok"], "error"].unique()[:3]
    counts = measured.groupby("tenant").size().to_dict()
    assert counts["series"] == 20 * DURATION  # constant arrivals: exactly rate x duration
    assert counts["vision"] > 0
    assert (measured["latency_ms"] >= measured["service_ms"]).all()
    summary = pd.read_csv(run_dir / results.SUMMARY_CSV)
    assert set(summary["tenant"]) == {"vision", "series"}
    assert summary["p99_ms"].notna().all()
    manifest = results.read_manifest(run_dir)
    assert manifest["scenario"]["effective"]["server"]["kind"] == kind
    assert manifest["versions"][f"{kind}:{kind}"] == frameworks.installed(kind).versions[kind]


def test_the_effective_settings_are_kept(framework_run):
    """The tenant's dynamic batching as the framework's adaptive batching; none where it asked for none."""
    kind, run_dir, _, _ = framework_run
    configs = run_dir / "shared" / results.CONFIGS
    log = (run_dir / "shared" / results.SERVER_LOG).read_text()
    if kind == "mlserver":
        series = json.loads((configs / "series.model-settings.json").read_text())
        assert series["max_batch_time"] == pytest.approx(1000e-6)
        assert series["max_batch_size"] > 1
        assert series["inputs"][0]["shape"][0] == -1
        vision = json.loads((configs / "vision.model-settings.json").read_text())
        assert "max_batch_time" not in vision  # dynamic_batching = false: no adaptive batching
        server = json.loads((configs / "mlserver-settings.json").read_text())
        assert server["host"] == "127.0.0.1"
        assert "Loaded model 'series' successfully" in log
    else:
        spec = {t["name"]: t for t in json.loads((configs / "perseus-bento.json").read_text())["tenants"]}
        assert spec["series"]["batching"]["max_batch_size"] > 1
        assert "adaptive" in spec["series"]["batch_wait"]
        assert spec["vision"]["batching"] is None
        assert spec["series"]["metadata"]["inputs"][0]["shape"][0] == -1
        assert "listening on http://127.0.0.1:" in log


def test_nothing_is_left_running(framework_run):
    _, _, marker, new_in_shm = framework_run
    assert_no_orphans(marker)
    # Nothing new in /dev/shm either (MLServer's workers' semaphores, for one).
    assert sorted(new_in_shm) == []


@pytest.mark.parametrize("kind", ["mlserver", "bentoml"])
def test_loopback_only_no_credentials_and_gone_with_a_sigkilled_perseus(tmp_path: Path, kind: str):
    installed_or_skip(kind)
    run = LiveRun(tmp_path, scenario_file(tmp_path, kind, duration=60), extra_env=PLANTED_SECRETS)
    try:
        run.wait_measuring(min_records=20)
        tree = processes_of(run.marker)
        assert tree, f"no {kind} process holds the run's TMPDIR"
        listening = listeners([p.pid for p in tree])
        assert listening, f"{kind} listens nowhere?"
        addresses = {ipaddress.ip_address(ip) for _, ip, _ in listening}
        assert {getattr(a, "ipv4_mapped", None) or a for a in addresses} == {ipaddress.ip_address("127.0.0.1")}
        for proc in tree:
            env = proc.environ()
            assert not set(PLANTED_SECRETS) & set(env), proc.cmdline()
        # MLServer's workers' semaphores, mapped by its spawned workers (whose argv does not hold the marker).
        mapped = mapped_names(p.pid for p in tree + [c for p in tree for c in p.children(recursive=True)])
        assert mapped or kind != "mlserver", "no MLServer worker maps a semaphore: nothing here is checked"
        run.proc.kill()
        killed_at = time.monotonic()
        # Until every process of the tree is gone too: one that is exiting has an empty command line
        # already (so processes_of misses it) while it is not yet a zombie.
        while (processes_of(run.marker) or any(_alive(p) for p in tree)) and time.monotonic() - killed_at < 5:
            time.sleep(0.05)
        assert [(p.pid, p.cmdline()[:3]) for p in tree if _alive(p)] == [], time.monotonic() - killed_at
        assert_no_orphans(run.marker, grace_s=0)
        # The watchdog removes what the server mapped under /dev/shm after it kills the groups.
        while mapped & shm_names() and time.monotonic() - killed_at < 5:
            time.sleep(0.05)
        assert sorted(mapped & shm_names()) == []
    finally:
        run.close()


# -- bad input: a kind whose environment is not there ---------------------------------------------
@pytest.mark.parametrize("kind", ["mlserver", "bentoml"])
def test_a_kind_not_installed_stops_before_anything_starts(tmp_path: Path, kind: str):
    """An empty cache folder (XDG_CACHE_HOME): exit 2, one line naming the install command, nothing written."""
    out, marker = tmp_path / "run", tmp_path / "tmp"
    scenario = scenario_file(tmp_path, kind)
    proc = run_cli(["run", scenario, "--out", out], tmpdir=marker, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        f"perseus: {scenario}: server.kind: is '{kind}' but {kind} is not installed: "
        f"run `perseus servers install {kind}` first"
    ]
    assert proc.stdout == ""
    assert not out.exists()
    assert processes_of(marker) == []


def test_installing_an_unknown_kind_is_refused(tmp_path: Path):
    proc = run_cli(["servers", "install", "torchserve"], env={"XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "perseus: command line: KIND: unknown server kind 'torchserve' (installable: bentoml, mlserver)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_doctor_names_the_install_command(tmp_path: Path):
    proc = run_cli(["doctor"], env={"XDG_CACHE_HOME": str(tmp_path)}, timeout=120)
    text = " ".join(proc.stdout.split())  # doctor's table is on stdout; cells may wrap
    assert "not installed; needed only for server.kind = 'mlserver'" in text
    assert "perseus servers install mlserver" in text
    assert "perseus servers install bentoml" in text


@pytest.mark.parametrize(("command", "what"), [("capacity", "a search"), ("plan", "a search"), ("sweep", "a sweep")])
def test_one_framework_commands_refuse_run_servers(tmp_path: Path, command: str, what: str):
    """A search or a sweep measures one framework: [run] servers would be ignored there, so it is refused (exit 2)."""
    scenario = tmp_path / "servers.toml"
    scenario.write_text(
        SCENARIO.format(kind="triton", models=MODELS, duration=DURATION).replace(
            "baselines = false", 'baselines = false\nservers = ["triton", "mlserver"]'
        )
    )
    proc = run_cli([command, scenario, "--quick", "--out", tmp_path / "out"], tmpdir=tmp_path / "tmp")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"perseus: {scenario}: run.servers: is for `perseus run` and `perseus ui`; {what} measures one framework: "
        "set server.kind instead"
    ]
    assert not (tmp_path / "out").exists()
