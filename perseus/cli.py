"""The perseus command line. Each command is a short pipeline of calls into the modules."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from perseus import __version__, results
from perseus.calibration.model import SPIN_MS
from perseus.exits import build_report, command_line, errors, exit_for, terminate_as_interrupt
from perseus.kinds import Status
from perseus.packing.cli import plan_command
from perseus.pricing.cli import app as prices_app
from perseus.sweep.cli import sweep_command
from perseus.ui import ui_command


def _no_type_for_flags(display_type_rich):
    """Typer's rich help prints a "<bool>" type beside every flag (--quick, --help), as if it took a value;
    a flag takes none, so its type column is left empty (plain click help already does so)."""

    def display(self, ctx):
        return None if self.is_flag or self.count else display_type_rich(self, ctx)

    return display


typer.core.TyperOption.display_type_rich = _no_type_for_flags(typer.core.TyperOption.display_type_rich)

app = typer.Typer(
    help="Measure multi-tenant model serving on a real Triton server: SLAs, throughput and dollars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="Build the bundled model zoo (ONNX graphs with seeded random weights).", no_args_is_help=True
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perseus {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print perseus's version and exit."),
    ] = False,
) -> None:
    """Measure multi-tenant model serving on a real Triton server: SLAs, throughput and dollars."""


servers_app = typer.Typer(
    help="Serving frameworks besides Triton (server.kind), each in its own virtual environment.",
    no_args_is_help=True,
)


app.add_typer(models_app, name="models")
app.add_typer(servers_app, name="servers")
app.add_typer(prices_app, name="prices")


@app.command()
def run(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario TOML file, e.g. scenarios/mixed.toml.")],
    out: Annotated[
        Path | None, typer.Option(help="Run folder to create (absent or empty). Default: results/<name>-<UTC time>/.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds per deployment (overrides run.duration_s).")
    ] = None,
    warmup: Annotated[
        float | None, typer.Option(help="Warm-up seconds before measuring (overrides run.warmup_s).")
    ] = None,
    no_baselines: Annotated[
        bool,
        typer.Option(
            "--no-baselines", help="Skip the solo-<tenant> baselines (embedded ones still run if strategies ask)."
        ),
    ] = False,
    repeat: Annotated[
        int | None,
        typer.Option(help="Run every deployment N times, interleaved; adds Student-t 95% intervals across trials."),
    ] = None,
    trace_rate: Annotated[
        int | None,
        typer.Option(
            help="Trace every Nth request with Triton's trace API (overrides run.trace_rate; 0 off, 1 all): "
            "server-side spans per request in <deployment>/spans.parquet. Local launcher only."
        ),
    ] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(
            help="A `perseus capacity` folder measured for this scenario: the report adds cost at capacity "
            "(its capacity.csv is copied into the run folder)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Send the load from N local Locust worker processes (this process becomes the Locust master). "
            "0: from this process.",
            rich_help_panel="Distributed load",
        ),
    ] = 0,
    expect_workers: Annotated[
        int | None,
        typer.Option(
            help="Workers to wait for before each deployment, local ones included (default: --workers). "
            "The others join with `perseus worker --master HOST`.",
            rich_help_panel="Distributed load",
        ),
    ] = None,
    master_bind: Annotated[
        str,
        typer.Option(
            help="Address the master listens on for workers. Other machines need a non-loopback address; "
            "the channel has no authentication, so use a private network.",
            rich_help_panel="Distributed load",
        ),
    ] = "127.0.0.1",
    master_port: Annotated[
        int | None,
        typer.Option(
            help="Port for workers (default: 5557 when workers join from elsewhere, else a free port).",
            rich_help_panel="Distributed load",
        ),
    ] = None,
) -> None:
    """Run the shared deployment and each tenant's solo baseline, then write the report.

    Prints the verdict and a per-tenant table (p50, p99, SLA, valid, $/1M) on stdout; the last line on
    stdout is the run folder. Exit codes: 0 done, 1 run failed (partial results
    kept), 2 bad input, 130 interrupted.
    """
    from perseus import checks, report, verdicts
    from perseus import run as runs
    from perseus.display import RunDisplay
    from perseus.plan import plan

    with errors():
        checks.check_out(out)
        capacity_csv = checks.check_capacity(capacity)

        def worker_flags(scenario):  # checked before any model is built, then used
            return checks.worker_options(scenario, workers, expect_workers, master_bind, master_port)

        ready = checks.prepare(
            scenario_file,
            duration_s=duration,
            warmup_s=warmup,
            baselines=False if no_baselines else None,
            repeat=repeat,
            checks=worker_flags,
            trace_rate=trace_rate,
            say=RunDisplay.say,
        )
        load_workers = worker_flags(ready.scenario)
        deployments = plan(ready.scenario)
        run_dir = checks.prepare_run_dir(out, ready.scenario.name)
        manifest = runs.new_manifest(ready, deployments, command_line())
        runs.save_inputs(run_dir, scenario_file, manifest, capacity_csv)
        with RunDisplay(len(deployments)) as display:
            status = runs.execute(
                ready.scenario, deployments, ready.repository, run_dir, manifest, ready.use_gpu, load_workers, display
            )
        summary = build_report(report.build, run_dir)
        if summary is None and status == Status.COMPLETED:
            status = Status.FAILED
        if summary is not None:
            verdict = summary.comparison.verdict if summary.comparison else summary.no_comparison
            verdicts.show(verdicts.run_view(summary.rows, verdict))
        typer.echo(str(run_dir))
    raise exit_for(status)


@app.command()
def worker(
    master: Annotated[str, typer.Option(help="Host or IP of the `perseus run` master to send load for.")],
    master_port: Annotated[int, typer.Option(help="The master's --master-port.")] = 5557,
    server_url: Annotated[
        str | None,
        typer.Option(help="Triton's HTTP URL as this machine reaches it (default: the URL the master announces)."),
    ] = None,
) -> None:
    """Send load for a `perseus run` master: a Locust worker for runs across processes or machines.

    Start the master with `perseus run SCENARIO --expect-workers K --master-bind ADDR`, then one
    `perseus worker --master ADDR` per worker. For each deployment the worker gets its shard of every
    tenant's requests, sends them, and streams its records to the master, which writes the run folder.
    The worker exits when the master's run ends.
    """
    from perseus.errors import InputError
    from perseus.load.distributed import Worker  # imports Locust: only in the process that sends load

    with errors():
        if not 0 < master_port < 65536:
            raise InputError("command line", "--master-port", "must be a port number (1-65535)")
        if server_url is not None and not server_url.startswith(("http://", "https://")):
            raise InputError("command line", "--server-url", "must start with http:// or https://")
        Worker(master, master_port, server_url, say=lambda text: typer.echo(text, err=True)).serve()


@app.command()
def calibrate(
    out: Annotated[
        Path | None, typer.Option(help="Run folder to create. Default: results/calibration-<UTC time>/.")
    ] = None,
    service_ms: Annotated[
        float, typer.Option(help="Milliseconds the calibration model holds each request (its fixed service time).")
    ] = 10.0,
    spin_ms: Annotated[
        float,
        typer.Option(
            help="Milliseconds at the end of each service time that the model busy-waits; it sleeps the rest, so "
            "as not to take a CPU core from the load generator. Equal to --service-ms: a model that spins a core."
        ),
    ] = SPIN_MS,
    rho: Annotated[
        list[float] | None,
        typer.Option(
            metavar="RHO",
            help="Utilisation to test: arrival rate x service time, below 1 (0.8: the server busy 80% of the "
            "time). Repeat for several. Default 0.5 and 0.8.",
        ),
    ] = None,
    duration: Annotated[float, typer.Option(help="Measured seconds per utilisation.")] = 60.0,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds per utilisation.")] = 5.0,
    quick: Annotated[
        bool, typer.Option(help="A few seconds per step: checks the machinery, not the accuracy.")
    ] = False,
    trace_rate: Annotated[
        int,
        typer.Option(help="Trace every Nth request (1: all, for the trace-driven reference; 0: no tracing)."),
    ] = 1,
) -> None:
    """Check the harness against queueing theory: an M/D/1 server under Poisson load.

    Starts Triton with a one-instance model that holds each request a fixed service time (sleeping,
    then busy-waiting its last --spin-ms to the deadline), measures that time
    from the server's own statistics, drives open-loop Poisson load at each utilisation, and compares
    p50/p90/p95/p99 with the same queue fed each traced request's own time on the instance, plus its
    traced server I/O (trace-driven, the verdict while tracing), M/D/1 on the run's own scheduled
    arrivals (Lindley's recursion; the verdict untraced), and the exact M/D/1 distribution
    (Erlang/Crommelin) with its 95% band for runs that long. Also reports the harness's own
    scheduled-to-sent lag, each error without that lag, and the achieved rate. Writes calibration.csv/.md
    to the run folder. A utilisation whose traced server crashes (Triton 2.51's tracer has a known
    crash under load) is run once more from the same schedule; the crashed attempt is kept beside it.
    """
    from perseus import checks, report, verdicts
    from perseus.calibration import run as calib
    from perseus.display import RunDisplay

    with errors():
        settings = calib.settings_from_flags(service_ms, rho, duration, warmup, quick, trace_rate, spin_ms)
        run_dir = checks.prepare_run_dir(out, "calibration")
        with RunDisplay(1 + len(settings.rhos)) as display:
            manifest, table = calib.execute(settings, run_dir, command_line(), display)
        status = manifest.status
        if build_report(report.build, run_dir) is None and status == Status.COMPLETED:
            status = Status.FAILED
        verdicts.show(verdicts.calibration_view(table))
        typer.echo(str(run_dir))
    raise exit_for(status)


@app.command()
def capacity(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario TOML file; its rates set the mix that is scaled.")],
    out: Annotated[
        Path | None, typer.Option(help="Run folder to create. Default: results/<name>-capacity-<time>/.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds per probe (overrides run.duration_s).")
    ] = None,
    warmup: Annotated[float | None, typer.Option(help="Warm-up seconds per probe (overrides run.warmup_s).")] = None,
    precision: Annotated[float, typer.Option(help="Stop bisecting when the bracket is this narrow (relative).")] = 0.1,
    max_probes: Annotated[int, typer.Option(help="Most probes per search.")] = 14,
    interference: Annotated[
        bool,
        typer.Option(
            help="Also run every tenant pair at the scenario's rates, to measure how much each one slows the other "
            "(interference.csv)."
        ),
    ] = True,
    quick: Annotated[
        bool, typer.Option(help="3 s probes, 25% precision, at most 4 probes per search: checks the machinery.")
    ] = False,
    trace_rate: Annotated[
        int | None,
        typer.Option(
            help="Trace every Nth request (overrides run.trace_rate): the interference pairs' slow-downs are "
            "then split into compute, queueing, client and network (interference_parts.csv)."
        ),
    ] = None,
) -> None:
    """Find how much load fits under every SLA: each tenant alone, and the scenario's mix shared.

    Each probe is a normal measured deployment with every rate scaled by k; it passes when every
    tenant is VALID (SLA met, enough requests, early stopping). Capacity is found by bracketing then
    bisection. Writes capacity.csv, probes.csv, interference.csv, capacity.md and the co-location
    figure (shared capacity vs the linear baseline between solo capacities).
    """
    from perseus import checks, verdicts
    from perseus.capacity import report as cap_report
    from perseus.capacity import run as cap
    from perseus.display import RunDisplay

    if quick:
        duration, warmup, precision, max_probes = duration or 3.0, warmup or 1.0, 0.25, min(max_probes, 4)
    with errors():
        checks.capacity_options(precision, max_probes)
        checks.check_out(out)
        ready = checks.prepare(
            scenario_file,
            duration_s=duration,
            warmup_s=warmup,
            baselines=True,
            trace_rate=trace_rate,
            checks=checks.open_loop_only(scenario_file),
        )
        run_dir = checks.prepare_run_dir(out, f"{ready.scenario.name}-capacity")
        settings = cap.Settings(precision=precision, max_probes=max_probes, interference=interference)
        with RunDisplay(0) as display:
            manifest, outcome = cap.execute(ready, settings, run_dir, command_line(), display)
        caps = cap_report.write(run_dir, outcome, ready.scenario, ready.price)
        verdicts.show(verdicts.capacity_view(caps.table, caps.verdict))
        typer.echo(str(run_dir))
    raise exit_for(manifest.status)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `perseus run`.")],
    capacity: Annotated[
        Path | None,
        typer.Option(help="A `perseus capacity` folder: its capacity.csv is copied in, for cost at capacity."),
    ] = None,
) -> None:
    """Rebuild summary.csv, report.md, report.html and plots from a run folder alone."""
    from perseus import checks, report
    from perseus.errors import InputError

    with errors():
        if not run_dir.is_dir():
            raise InputError(run_dir, None, "no such folder")
        if not (run_dir / results.MANIFEST).is_file():
            raise InputError(run_dir, None, f"not a perseus run folder (no {results.MANIFEST})")
        capacity_csv = checks.check_capacity(capacity)
        if capacity_csv is not None:
            shutil.copyfile(capacity_csv, run_dir / results.CAPACITY_CSV)
        if build_report(report.build, run_dir) is None:
            raise typer.Exit(1)
        typer.echo(str(run_dir / results.REPORT_HTML))


@models_app.command("build")
def models_build(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Models to build (default: every model with a recipe)."),
    ] = None,
    repository: Annotated[Path, typer.Option(help="Model repository folder.")] = Path("model_repository"),
    force: Annotated[bool, typer.Option(help="Rebuild even if model.onnx exists.")] = False,
) -> None:
    """Write the ONNX files of the model zoo into the repository (seeded random weights)."""
    from perseus.display import RunDisplay
    from perseus.models.ensure import build_all

    with errors():
        for path in build_all(repository, names or None, force=force, say=RunDisplay.say):
            typer.echo(str(path))


@servers_app.command("install")
def servers_install(
    kind: Annotated[str, typer.Argument(help="mlserver or bentoml.")],
    force: Annotated[bool, typer.Option(help="Reinstall even if it is installed with the same pins.")] = False,
) -> None:
    """Create KIND's virtual environment under the cache folder and install its pinned, tested version from PyPI.

    The last line on stdout is the environment's folder. With --force, it starts again from an empty folder."""
    from perseus.display import RunDisplay
    from perseus.server import frameworks

    with errors():
        frameworks.framework(kind)
        env = frameworks.install(kind, log=RunDisplay.say, force=force)
        versions = ", ".join(f"{name} {version}" for name, version in env.versions.items())
        RunDisplay.say(f"{kind} installed: {versions}")
        typer.echo(str(env.root))


@app.command()
def doctor() -> None:
    """What this machine has: tritonserver, the Python backend, GPU and onnxruntime-gpu, ports, clients, frameworks."""
    from perseus.doctor import checks, render

    problems = render(checks())
    raise typer.Exit(1 if problems else 0)


# Registered after the core commands so `perseus --help` lists run, report, ... first.
app.command("plan")(plan_command)
app.command("sweep")(sweep_command)
app.command("ui")(ui_command)


def main() -> None:
    # Installed first thing, so a SIGTERM at any moment (even during imports) stops in order, exit 130.
    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    # Named as installed, also under `python -m perseus.cli`, so the usage lines read as the user types them.
    app(prog_name="perseus")


if __name__ == "__main__":
    main()
