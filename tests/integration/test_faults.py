"""Faults during a real run: the server killed, stalled, never ready; perseus itself interrupted.

Each test starts `perseus run` on a one-tenant scenario with a few seconds of constant load, does
something bad to it from outside, and checks what is left: exit code, manifest, records, report, and
that no process of the run survives. Every run has its own TMPDIR, so its processes are exactly those
whose command line holds that path (conftest's rule), whoever else runs servers on this host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import pytest

from perseus import results
from perseus.records import read_stream
from perseus.server.local import stub_regions
from perseus.server.shm import SHM_DIR
from tests.conftest import PLANTED_SECRETS, REPO_ROOT, cli_env, kill_ours, run_cli, triton_processes

pytestmark = pytest.mark.integration

MODELS = REPO_ROOT / "model_repository"
RATE = 20  # requests/s, constant arrivals: exactly RATE x duration requests
TENANT = "series"

SCENARIO = """
name = "fault"
[server]
model_repository = "{models}"
device = "cpu"
startup_timeout_s = {startup}
[run]
duration_s = {duration}
warmup_s = 0
seed = 3
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "{tenant}"
model = "lstm_tiny"
sla_ms = 500
[tenants.load]
arrival = "constant"
rate = {rate}
"""


def write_scenario(folder: Path, *, duration: float, startup: float = 60, rate: float = RATE) -> Path:
    path = folder / "fault.toml"
    path.write_text(SCENARIO.format(models=MODELS, startup=startup, duration=duration, tenant=TENANT, rate=rate))
    return path


def processes_of(marker: Path) -> list[psutil.Process]:
    """Every live process (not only Triton's) whose command line holds the run's TMPDIR."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(marker) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def regions_of(server: psutil.Process) -> set[str]:
    """The shared-memory regions of the server's Python-backend stubs (at least one: lstm_tiny's)."""
    regions = stub_regions({p.pid: p.cmdline() for p in server.children(recursive=True)})
    assert regions
    return regions


def assert_regions_gone(regions: set[str], grace_s: float = 5.0) -> None:
    deadline = time.monotonic() + grace_s
    while (left := [r for r in regions if (SHM_DIR / r).exists()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []


def assert_no_orphans(marker: Path, grace_s: float = 5.0) -> None:
    deadline = time.monotonic() + grace_s
    while processes_of(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_of(marker)
    assert left == [], [p.info["cmdline"] for p in left]


@dataclass
class LiveRun:
    """`perseus run` as a child we can signal, with stdout/stderr in files (the live table is chatty)."""

    folder: Path
    scenario: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.run_dir = self.folder / "run"
        self.marker = self.folder / "TMPDIR"
        env = {**cli_env(self.marker), **self.extra_env}
        self._out = open(self.folder / "stdout.txt", "w")  # noqa: SIM115 - closed in close()
        self._err = open(self.folder / "stderr.txt", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perseus.cli",
                "run",
                str(self.scenario),
                "--out",
                str(self.run_dir),
                *self.extra_args,
            ],
            cwd=self.folder,
            env=env,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
        )

    @property
    def stream(self) -> Path:
        return (self.run_dir / "shared" / results.REQUESTS).with_suffix(".arrows")

    def records_so_far(self) -> pd.DataFrame:
        return read_stream(self.stream, results.REQUEST_SCHEMA).to_pandas()

    def wait_measuring(self, min_records: int, timeout_s: float = 90) -> pd.DataFrame:
        """Until the manifest says the deployment runs and ``min_records`` requests are on disk."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"perseus exited early ({self.proc.returncode}): {self.stderr()[-2000:]}"
            with contextlib.suppress(OSError, ValueError, KeyError):
                running = results.read_manifest(self.run_dir)["deployments"]["shared"]["status"] == "running"
                if running and self.stream.exists():
                    frame = self.records_so_far()
                    if len(frame) >= min_records:
                        return frame
            time.sleep(0.1)
        raise AssertionError(f"no {min_records} records within {timeout_s} s: {self.stderr()[-2000:]}")

    def server(self) -> psutil.Process:
        servers = [p for p in triton_processes(self.marker) if p.name() == "tritonserver"]
        assert len(servers) == 1, servers
        return servers[0]

    def wait(self, timeout_s: float = 60) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stdout(self) -> str:
        self._out.flush()
        return (self.folder / "stdout.txt").read_text()

    def stderr(self) -> str:
        self._err.flush()
        return (self.folder / "stderr.txt").read_text()

    def close(self) -> None:
        """Last-resort cleanup: our own children only, by pid."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        kill_ours(self.marker)
        for proc in processes_of(self.marker):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self._out.close()
        self._err.close()


@pytest.fixture
def live(tmp_path: Path):
    runs: list[LiveRun] = []

    def start(duration: float, **kw) -> LiveRun:
        run = LiveRun(tmp_path, write_scenario(tmp_path, duration=duration), **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def keys(frame: pd.DataFrame) -> set[tuple[str, float]]:
    return set(zip(frame["tenant"], frame["scheduled_s"], strict=True))


def assert_unique(frame: pd.DataFrame) -> None:
    assert not frame.duplicated(["tenant", "scheduled_s"]).any()


def listeners(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening inet socket of these processes."""
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in psutil.Process(pid).net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    out.append((pid, conn.laddr.ip, conn.laddr.port))
    return out


# -- the server dies -------------------------------------------------------------------------------
def test_server_killed_mid_run(live):
    duration = 8
    run = live(duration)
    before = run.wait_measuring(min_records=2 * RATE)  # ~2 s of requests done
    regions = regions_of(run.server())
    run.server().send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    code = run.wait(timeout_s=60)
    stopped_after = time.monotonic() - killed_at

    assert code == 1, run.stderr()[-3000:]
    assert "Traceback" not in run.stderr()
    assert run.stdout().strip().splitlines()[-1] == str(run.run_dir)
    # Said on stderr, not only in the manifest, with the signal: killed from outside, not a crash.
    assert "tritonserver killed by SIGKILL" in run.stderr()
    m = results.read_manifest(run.run_dir)
    assert m["status"] == "failed"
    d = m["deployments"]["shared"]
    assert d["status"] == "failed"
    assert d["reason"].startswith("tritonserver killed by SIGKILL (pid ")
    assert d["server_log_tail"].strip()

    frame = pd.read_parquet(run.run_dir / "shared" / results.REQUESTS)
    assert_unique(frame)
    assert len(frame) == d["requests"]
    # The kill shows up as the first failed request; the run stops within a few seconds of it.
    failed = frame[~frame["ok"]]
    fault_s = failed["done_s"].min() if len(failed) else d["duration_s"]
    assert d["duration_s"] < duration
    assert d["duration_s"] <= fault_s + 4
    assert stopped_after < 30  # report included
    # Nothing measured before the fault is lost: what was on disk at the kill is in the Parquet, and
    # every request done more than 1 s before the fault is there, ok.
    final = frame.set_index(["tenant", "scheduled_s"])
    assert keys(before) <= keys(frame)
    assert final.loc[list(keys(before)), "ok"].all()
    done_early = frame[frame["done_s"] < fault_s - 1]
    assert len(done_early) >= RATE // 2
    assert done_early["ok"].all(), done_early.loc[~done_early["ok"], "error"].head().tolist()
    # ... and no arrival is missing: those scheduled well before the fault form the whole sequence.
    early = frame[frame["scheduled_s"] < fault_s - 1.5].sort_values("scheduled_s")
    assert early["ok"].all(), early.loc[~early["ok"], "error"].head().tolist()
    assert early["scheduled_s"].iloc[0] < 1 / RATE  # from the first arrival on
    assert early["scheduled_s"].diff().dropna().to_numpy() == pytest.approx(1 / RATE, abs=1e-6)

    report = (run.run_dir / results.REPORT_MD).read_text()
    assert "failed" in report
    assert list(run.run_dir.rglob("*.arrows")) == []
    assert_no_orphans(run.marker)
    assert_regions_gone(regions, grace_s=0)  # removed by perseus itself, before it exited


def test_server_stalled_then_resumed(live):
    duration, stall = 6, 2.0
    run = live(duration)
    run.wait_measuring(min_records=RATE // 2)
    group = [run.server(), *run.server().children(recursive=True)]
    for proc in group:
        proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(stall)
    finally:
        for proc in group:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGCONT)
    code = run.wait(timeout_s=60)

    assert code == 0, run.stderr()[-3000:]
    frame = pd.read_parquet(run.run_dir / "shared" / results.REQUESTS)
    # No request lost or counted twice.
    assert len(frame) == RATE * duration
    assert_unique(frame)
    assert frame["ok"].all(), frame.loc[~frame["ok"], "error"].head().tolist()
    # Latency counts from the scheduled time, so requests scheduled during the stall carry it.
    worst = frame["latency_ms"].max()
    assert worst >= 1500, worst
    assert worst <= (stall + 3) * 1e3, worst  # about the stall, not a pile-up
    assert results.read_manifest(run.run_dir)["deployments"]["shared"]["requests"] == RATE * duration
    assert_no_orphans(run.marker)


# -- perseus itself is killed: SIGKILL leaves it no chance to clean up ----------------------------
def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
    return left


def _killed_leaves_nothing(run: LiveRun, tree: list[psutil.Process]) -> float:
    """SIGKILL perseus; assert that every process of ``tree`` and of the run is gone within 5 s; how long it took."""
    assert _alive(tree) == tree
    run.proc.kill()
    killed_at = time.monotonic()
    while (_alive(tree) or triton_processes(run.marker)) and time.monotonic() - killed_at < 5:
        time.sleep(0.05)
    took = time.monotonic() - killed_at
    assert [p.info.get("cmdline") or p.pid for p in triton_processes(run.marker)] == []
    assert [(p.pid, p.name()) for p in _alive(tree)] == []
    assert_no_orphans(run.marker, grace_s=0)
    return took


def test_sigkill_leaves_no_server_process(live):
    """tritonserver dies with perseus (parent-death signal), its backend stubs with it (the watchdog)."""
    run = live(60)
    run.wait_measuring(min_records=RATE)
    server = run.server()
    stubs = server.children(recursive=True)
    assert stubs and {p.name() for p in stubs} == {"triton_python_backend_stub"}, stubs
    regions = regions_of(server)
    took = _killed_leaves_nothing(run, [server, *stubs])
    assert_regions_gone(regions)  # by the watchdog
    print(f"server and {len(stubs)} stub(s) gone {took:.2f} s after SIGKILL")


def test_sigkill_leaves_no_worker(live):
    """`perseus run --workers 2`: the local workers die with perseus too."""
    run = live(60, extra_args=("--workers", "2"))
    run.wait_measuring(min_records=RATE)
    perseus = psutil.Process(run.proc.pid)
    workers = [p for p in perseus.children() if "worker" in p.cmdline()]
    assert len(workers) == 2, [p.cmdline() for p in perseus.children()]
    server = run.server()
    try:
        took = _killed_leaves_nothing(run, [*workers, server, *server.children(recursive=True)])
        print(f"2 workers, the server and its stubs gone {took:.2f} s after SIGKILL")
    finally:
        for proc in _alive(workers):
            proc.kill()


# -- perseus itself is interrupted -----------------------------------------------------------------
@dataclass
class Interrupted:
    run: LiveRun
    code: int
    before: pd.DataFrame
    listening: list[tuple[int, str, int]]
    server_pids: list[int]
    server_env: dict[str, str]
    stub_envs: list[dict[str, str]]
    stopped_after_s: float


@pytest.fixture(scope="module", params=[signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def interrupted(request, tmp_path_factory) -> Interrupted:
    folder = tmp_path_factory.mktemp(f"interrupt-{request.param.name}")
    run = LiveRun(folder, write_scenario(folder, duration=60), extra_env=PLANTED_SECRETS)
    try:
        before = run.wait_measuring(min_records=RATE)
        server = run.server()
        server_pids = [server.pid, *(p.pid for p in server.children(recursive=True))]
        listening = listeners([run.proc.pid, *server_pids])
        server_env = server.environ()  # /proc/PID/environ
        stub_envs = [p.environ() for p in server.children(recursive=True)]
        run.proc.send_signal(request.param)
        sent_at = time.monotonic()
        code = run.wait(timeout_s=60)
        yield Interrupted(run, code, before, listening, server_pids, server_env, stub_envs, time.monotonic() - sent_at)
    finally:
        run.close()


def test_interrupt_exits_130_with_partial_results(interrupted):
    run = interrupted.run
    assert interrupted.code == 130, run.stderr()[-3000:]
    assert "Traceback" not in run.stderr()
    assert "interrupted" in run.stderr()
    assert interrupted.stopped_after_s < 30
    m = results.read_manifest(run.run_dir)
    assert m["status"] == "interrupted"
    assert m["ended"]
    d = m["deployments"]["shared"]
    assert d["status"] == "interrupted"
    assert d["duration_s"] < 60  # analysed over the time it measured
    frame = pd.read_parquet(run.run_dir / "shared" / results.REQUESTS)
    assert_unique(frame)
    assert keys(interrupted.before) <= keys(frame)
    assert frame["ok"].sum() >= len(interrupted.before)
    assert (run.run_dir / results.REPORT_MD).is_file()
    assert "interrupted" in (run.run_dir / results.REPORT_MD).read_text()
    assert (run.run_dir / results.SUMMARY_CSV).is_file()
    assert list(run.run_dir.rglob("*.arrows")) == []


def test_interrupt_leaves_no_process(interrupted):
    assert_no_orphans(interrupted.run.marker)
    for pid in interrupted.server_pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid


def test_every_listener_is_loopback(interrupted):
    """While the run was measuring: every listening socket of perseus and its server tree."""
    assert len({port for _, _, port in interrupted.listening}) >= 3  # HTTP, gRPC, metrics at least
    # gRPC listens on a dual-stack socket, which reports 127.0.0.1 as ::ffff:127.0.0.1: the same address.
    addresses = {ipaddress.ip_address(ip) for _, ip, _ in interrupted.listening}
    assert {getattr(a, "ipv4_mapped", None) or a for a in addresses} == {ipaddress.ip_address("127.0.0.1")}, (
        interrupted.listening
    )


def test_the_server_gets_no_credentials(interrupted):
    """perseus had fake credentials in its environment; tritonserver and its stubs (the model code) did not."""
    from perseus import children

    assert interrupted.server_env, "could not read the server's environment"
    assert interrupted.stub_envs, "could not read the stubs' environment"
    for env in (interrupted.server_env, *interrupted.stub_envs):
        assert not set(PLANTED_SECRETS) & set(env)
        assert not set(PLANTED_SECRETS.values()) & set(env.values())
    # Built from the allowlist: only names that the base list or the thread settings allow.
    allowed = children.BASE_NAMES | children.THREAD_NAMES
    prefixes = children.BASE_PREFIXES + children.THREAD_PREFIXES
    assert [k for k in interrupted.server_env if k not in allowed and not k.startswith(prefixes)] == []


# -- the server never becomes ready ----------------------------------------------------------------
def test_server_never_ready(tmp_path: Path):
    scenario = write_scenario(tmp_path, duration=3, startup=0.5)
    run_dir, marker = tmp_path / "run", tmp_path / "TMPDIR"
    try:
        proc = run_cli(["run", scenario, "--out", run_dir], cwd=tmp_path, tmpdir=marker, timeout=120)
    finally:
        kill_ours(marker)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "not ready after 0.5 s" in proc.stderr
    m = results.read_manifest(run_dir)
    assert m["status"] == "failed"
    d = m["deployments"]["shared"]
    assert d["status"] == "failed"
    assert "tritonserver not ready after 0.5 s" in d["reason"]
    assert (run_dir / results.REPORT_MD).is_file()
    assert_no_orphans(marker)
    assert list(marker.glob("perseus-*")) == []


# -- ports ---------------------------------------------------------------------------------------
@pytest.fixture
def rendered(tmp_path: Path, monkeypatch):
    """A one-tenant model repository, and tempfile pointed at a TMPDIR of this test's own."""
    from perseus import scenario as scenarios
    from perseus.server import repository

    marker = tmp_path / "TMPDIR"
    marker.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(marker))
    scenario, _ = scenarios.load(write_scenario(tmp_path, duration=1))

    def make(name: str) -> Path:
        repository.render(scenario, [TENANT], MODELS, marker / name, gpu=False)
        return marker / name

    yield make, marker
    kill_ours(marker)


def _ready(url: str) -> bool:
    from perseus.server import http_ok

    return http_ok(f"{url}/v2/health/ready")


def test_two_local_servers_at_once(rendered, tmp_path: Path):
    from perseus.server.local import LocalServer

    make, marker = rendered
    servers = [LocalServer(make(f"repo{i}"), tmp_path / f"server{i}.log", startup_timeout_s=60) for i in (0, 1)]
    errors: list[BaseException] = []

    def start(server: LocalServer) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=start, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        assert errors == []
        assert all(s.alive() for s in servers)
        assert all(_ready(s.url) for s in servers)
        ports = [p for s in servers for p in (s.url, s.metrics_url)]
        assert len(set(ports)) == 4
        assert servers[0].url != servers[1].url
    finally:
        for s in servers:
            s.stop()
    assert not any(s.alive() for s in servers)
    assert_no_orphans(marker)


def test_a_port_taken_after_picking_is_picked_again(rendered, tmp_path: Path, monkeypatch):
    """free_ports cannot reserve ports: if another process binds one first, the server starts on new ones."""
    import socket

    from perseus.server import local

    make, marker = rendered
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real, calls = local.free_ports, []

    def unlucky(count: int, host: str) -> list[int]:
        calls.append(count)
        ports = real(count, host)
        return [taken, *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(local, "free_ports", unlucky)
    server = local.LocalServer(make("repo"), tmp_path / "server.log", startup_timeout_s=60)
    try:
        server.start()
        assert len(calls) == 2
        assert server.url != f"http://127.0.0.1:{taken}"
        assert _ready(server.url)
        assert "already in use" in (tmp_path / "server.log").read_text()
    finally:
        server.stop()
        squatter.close()
    assert_no_orphans(marker)
