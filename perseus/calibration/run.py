"""The calibrate pipeline: probe the service time, drive Poisson load at each utilisation, compare with theory."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from perseus import results
from perseus.calibration import analysis
from perseus.calibration.model import NAME, SPIN_MS, write_repository
from perseus.errors import InputError
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, Manifest, Status
from perseus.plan import Deployment
from perseus.progress import Progress
from perseus.run import Runner, new_manifest, save_inputs
from perseus.scenario import Scenario, parse
from perseus.server import local

PROBE = "probe"
CALIBRATION_CSV = "calibration.csv"
CALIBRATION_MD = "calibration.md"
REPOSITORY = "calibration_repository"


@dataclass(frozen=True)
class Settings:
    service_ms: float = 10.0
    rhos: tuple[float, ...] = (0.5, 0.8)
    duration_s: float = 60.0
    warmup_s: float = 5.0
    probe_s: float = 5.0
    seed: int = 1
    # Every request traced (run.trace_rate): the trace-driven reference needs each one's service time.
    trace_rate: int = 1
    # The busy-waited end of each service time (the model sleeps the rest): model.SPIN_MS.
    spin_ms: float = SPIN_MS


# Reruns of a utilisation whose traced server crashed (_run_point).
CRASH_RETRIES = 1

QUICK = Settings(service_ms=5.0, rhos=(0.5, 0.8), duration_s=4.0, warmup_s=1.0, probe_s=2.0)


def settings_from_flags(
    service_ms: float,
    rhos: list[float] | None,
    duration_s: float,
    warmup_s: float,
    quick: bool,
    trace_rate: int = 1,
    spin_ms: float = SPIN_MS,
) -> Settings:
    """`perseus calibrate`'s flags, checked (exit 2 on a bad value)."""
    base = QUICK if quick else Settings(service_ms, tuple(rhos or (0.5, 0.8)), duration_s, warmup_s)
    settings = Settings(**{**base.__dict__, "trace_rate": trace_rate, "spin_ms": spin_ms})
    if trace_rate < 0:
        raise InputError("command line", "--trace-rate", f"must be >= 0 (got {trace_rate})")
    if not 0 <= spin_ms < math.inf:
        raise InputError("command line", "--spin-ms", f"must be >= 0 (got {spin_ms:g})")
    if settings.service_ms <= 0 or settings.duration_s <= 0 or settings.warmup_s < 0:
        raise InputError("command line", None, "--service-ms and --duration must be > 0, --warmup >= 0")
    if not all(0 < r < 1 for r in settings.rhos):
        raise InputError("command line", "--rho", "each utilisation must be in (0, 1)")
    return settings


def deployment(name: str) -> Deployment:
    return Deployment(name, (name,), kind=DeploymentKind.CALIBRATION)


def label(rho: float) -> str:
    return f"rho-{round(rho * 100):03d}"


def scenario_for(settings: Settings, repo: Path, rates: dict[str, float]) -> Scenario:
    """A normal scenario: the probe (closed loop, one user) and one Poisson tenant per utilisation."""
    # A generous SLA: calibration judges agreement with theory, not an SLA.
    sla_ms = 50 * settings.service_ms
    tenants = [
        {"name": PROBE, "model": NAME, "sla_ms": sla_ms, "load": {"arrival": "closed", "concurrency": 1}},
        *[
            {"name": name, "model": NAME, "sla_ms": sla_ms, "load": {"arrival": "poisson", "rate": rate}}
            for name, rate in rates.items()
        ],
    ]
    data = {
        "name": "calibration",
        "description": f"M/D/1 calibration, service {settings.service_ms:g} ms",
        "server": {"model_repository": str(repo), "device": "cpu"},
        "run": {
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
            "seed": settings.seed,
            "trace_rate": settings.trace_rate,
        },
        "tenants": tenants,
    }
    return parse(data, "calibration")


def _frames(run_dir: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = run_dir / name
    return pq.read_table(folder / results.REQUESTS).to_pandas(), pq.read_table(folder / results.TELEMETRY).to_pandas()


def execute(settings: Settings, run_dir: Path, command: str, progress: Progress) -> tuple[Manifest, pd.DataFrame]:
    """Probe the service time, then one deployment per utilisation, all into ``run_dir``.

    Returns the manifest (its status is the run's) and the verdict table (also written as calibration.csv).
    """
    repo = write_repository(run_dir / REPOSITORY, settings.service_ms, settings.spin_ms)
    probe_settings = Settings(**{**settings.__dict__, "duration_s": settings.probe_s})
    probe_scenario = scenario_for(probe_settings, repo, {})
    manifest = new_manifest(None, [deployment(PROBE)], command, kind=CommandKind.CALIBRATION, scenario=probe_scenario)
    save_inputs(run_dir, None, manifest)
    with Runner(run_dir, manifest, False, progress) as runner:
        table = _measure(settings, run_dir, repo, probe_scenario, manifest, runner)
    (run_dir / CALIBRATION_MD).write_text(markdown(table), encoding="utf-8")
    return manifest, table


def _measure(
    settings: Settings, run_dir: Path, repo: Path, probe_scenario: Scenario, manifest: Manifest, runner: Runner
) -> pd.DataFrame:
    if runner.run(probe_scenario, deployment(PROBE), repo) != Status.COMPLETED:
        return pd.DataFrame()
    requests, telemetry = _frames(run_dir, PROBE)
    service_ms = analysis.server_service_ms(telemetry, PROBE)
    if math.isnan(service_ms):
        service_ms = settings.service_ms
    overhead_ms = analysis.client_overhead_ms(requests, service_ms)
    client_ms = analysis.client_share_ms(_spans(run_dir, PROBE))

    rates = {label(rho): rho / (service_ms / 1e3) for rho in settings.rhos}
    scenario = scenario_for(settings, repo, rates)
    manifest.adopt(scenario.model_dump(mode="json"), [deployment(n) for n in rates], scenario.run.duration_s)
    runner.save()
    rows = []
    for rho, (name, rate) in zip(settings.rhos, rates.items(), strict=True):
        if _run_point(runner, scenario, deployment(name), repo, run_dir) != Status.COMPLETED:
            break
        requests, telemetry = _frames(run_dir, name)
        measured_service = analysis.server_service_ms(telemetry, name)
        rows += analysis.verdict_rows(
            name,
            rho,
            requests,
            settings.duration_s,
            settings.warmup_s,
            rate,
            measured_service,
            overhead_ms,
            seed=settings.seed,
            traced=analysis.traced_parts(requests, _spans(run_dir, name)),
            client_ms=client_ms,
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table.insert(0, "overhead_ms", overhead_ms)
        table.insert(1, "client_ms", client_ms)
        table.to_csv(run_dir / CALIBRATION_CSV, index=False, float_format="%.6g")
    return table


def _spans(run_dir: Path, name: str) -> pd.DataFrame | None:
    path = run_dir / name / results.SPANS
    return pq.read_table(path).to_pandas() if path.exists() else None


def _run_point(runner: Runner, scenario: Scenario, dep: Deployment, repo: Path, run_dir: Path) -> Status:
    """One utilisation; run again, up to CRASH_RETRIES times, when its traced server crashed.

    Calibration traces every request, and Triton 2.51's tracer can crash a server under load
    (perseus.server.tracing.CRASH_NOTE): a known fault of the server, not a measurement. The rerun
    replays the same seeded schedule; the crashed attempt's folder is kept as ``<name>.failed-<n>`` and
    its reason in the manifest's ``retried``.
    """
    reasons: list[str] = []
    while True:
        status = runner.run(scenario, dep, repo)
        record = runner.manifest.deployments[dep.name]
        crashed = status == Status.FAILED and (record.reason or "").startswith(local.CRASHED)
        if not crashed or not scenario.run.trace_rate or len(reasons) >= CRASH_RETRIES:
            return status
        reasons.append(record.reason)
        (run_dir / dep.name).rename(run_dir / f"{dep.name}.failed-{len(reasons)}")
        record.retried = list(reasons)
        runner.save()
        runner.progress.message(f"{dep.name}: its traced server crashed; running it again from the same schedule")


def markdown(table: pd.DataFrame) -> str:
    """The verdict table as Markdown: verdict first, then every check with its three references."""
    if table.empty:
        return "# perseus calibrate\n\nNo calibration deployment completed.\n"
    passed = bool(table["passed"].all())
    judged_by = sorted(set(table["reference"].dropna()))
    lines = [
        "# perseus calibrate",
        "",
        f"**{'PASS' if passed else 'FAIL'}**: measured latency vs {' and '.join(judged_by) or 'theory'} "
        "(the reference conditioned on the run's own draw, so the error left is the harness's), plus the "
        "harness's own overhead.",
        "",
        "References per percentile: *on its arrivals* is Lindley's recursion over the run's scheduled "
        "arrivals with a fixed service time; *trace-driven* uses each request's traced time on the instance "
        "instead, plus its traced time in the server's own I/O, and judges the harness; *exact M/D/1* is "
        "the Erlang/Crommelin distribution, with the 95% band of simulated runs of the same length: a "
        "measurement outside it judges the machine, not the harness. *Without lag* is the error of latency "
        "counted from when each request was sent instead of when it was due: what is left once the "
        "dispatch lag is taken out.",
        "",
        f"Fixed client + HTTP overhead added to the references on the run's arrivals and exact M/D/1: "
        f"{table['overhead_ms'].iloc[0]:.3f} ms (unloaded round trip minus the server's compute time)."
        + _client_line(table),
        "",
        "| deployment | rho | service (ms) | check | measured | judged against | expected | error | without lag "
        "| tolerance | pass | on its arrivals | trace-driven | exact M/D/1 | 95% band | in band |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|:---:|",
    ]
    for r in table.itertuples():
        tol = "" if math.isnan(r.tolerance) else (f"{r.tolerance:.0%}" if r.tolerance < 1 else f"< {r.tolerance:g} ms")
        err = "" if math.isnan(r.error) else f"{r.error:+.1%}"
        latency = isinstance(r.reference, str)
        lagless = f"{r.error_without_lag:+.1%}" if latency and math.isfinite(r.error_without_lag) else ""
        refs = (
            f"{_with_error(r.conditioned_ms, r.conditioned_error)} | {_with_error(r.trace_ms, r.trace_error)} | "
            f"{_with_error(r.exact_ms, r.exact_error)} | {r.band_lo_ms:.3f} to {r.band_hi_ms:.3f} | "
            f"{'yes' if r.in_band else 'no'}"
            if latency
            else " |  |  |  | "
        )
        lines.append(
            f"| {r.deployment} | {r.rho:.3f} | {r.service_ms:.3f} | {r.check} | {r.measured:.3f} | "
            f"{r.reference if latency else 'target'} | {r.expected:.3f} | {err} | {lagless} | {tol} | "
            f"{'yes' if r.passed else 'NO'} | {refs} |"
        )
    return "\n".join(lines) + "\n"


def _client_line(table: pd.DataFrame) -> str:
    """What the trace-driven reference adds: nothing to say without one."""
    client_ms = float(table["client_ms"].iloc[0])
    if not table["trace_ms"].notna().any():
        return ""
    if not math.isfinite(client_ms):  # the probe went untraced: the trace-driven one gets the whole overhead
        return " The trace-driven reference gets the same, as the probe was not traced."
    return (
        f" Added to the trace-driven reference: {client_ms:.3f} ms, the client's and the loopback's own part of "
        "that round trip (sent to the server's receive start, and its send end to done); the trace holds the "
        "server's own part, request by request."
    )


def _with_error(value: float, error: float) -> str:
    """``12.345 (+1.2%)``; blank where the reference is undefined (no trace, unstable queue)."""
    if not math.isfinite(value):
        return ""
    return f"{value:.3f}" + ("" if math.isnan(error) else f" ({error:+.1%})")
