"""`perseus sweep SCENARIO`: registered in perseus/cli.py as ``app.command("sweep")(sweep_command)``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from perseus.exits import command_line, errors, exit_for, terminate_as_interrupt

QUICK_DURATION_S = 3.0
QUICK_WARMUP_S = 1.0


def sweep_command(
    scenario_file: Annotated[
        Path, typer.Argument(help="Scenario TOML file with a \\[sweep] table, e.g. scenarios/dse.toml.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Sweep folder: absent or empty for a new sweep, or an earlier folder of the same sweep to resume "
            "(points already committed are skipped). Default: results/<name>-sweep-<UTC time>/."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds per point (overrides run.duration_s).")
    ] = None,
    warmup: Annotated[float | None, typer.Option(help="Warm-up seconds per point (overrides run.warmup_s).")] = None,
    quick: Annotated[
        bool, typer.Option(help="3 s per point, 1 s warm-up (unless given): checks the machinery, not the answer.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Run only the first N points of the design.")] = None,
) -> None:
    """Run every point of the scenario's design space (\\[sweep]) and find the Pareto-optimal configurations.

    Each point is the shared deployment with the point's settings (tenants' \\[tenants.server] fields, load
    level), run into its own folder and committed to points/<point>.json when it ends. Writes sweep.csv
    (one row per point), pareto.csv (cost vs worst latency, throughput vs worst latency), main_effects.csv,
    plots and sweep.md, with the tenants' rank correlation. The last line on stdout is the sweep folder.
    Exit codes: 0 done, 1 a point failed, 2 bad input, 130 interrupted (rerun with the same --out to resume).
    """
    from perseus import checks, verdicts
    from perseus.display import RunDisplay
    from perseus.sweep import analysis as sweep_analysis
    from perseus.sweep import report as sweep_report
    from perseus.sweep import run as sweep

    if quick:
        duration, warmup = duration or QUICK_DURATION_S, QUICK_WARMUP_S if warmup is None else warmup
    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    with errors():
        ready = checks.prepare(
            scenario_file,
            duration_s=duration,
            warmup_s=warmup,
            baselines=False,
            checks=checks.one_framework(scenario_file, "a sweep"),
            say=RunDisplay.say,
        )
        points = sweep.check(ready)
        run_dir, manifest = sweep.open_dir(out, ready, points, command_line())
        with RunDisplay(len(sweep.pending_points(run_dir, points, limit))) as display:
            status = sweep.execute(ready, points, run_dir, manifest, limit, display)
        spec, tenants = ready.scenario.sweep, [t.name for t in ready.scenario.tenants]
        result = sweep_analysis.analyse(
            sweep.load_points(run_dir, points), list(spec.factors), tenants, spec.objective_percentile
        )
        sweep_report.write(
            run_dir, result, scenario=ready.scenario.name, sampling=spec.sampling, total=len(points), price=ready.price
        )
        worst, label = sweep_analysis.worst_name(result.percentile), sweep_analysis.percentile_label(result.percentile)
        verdicts.show(verdicts.sweep_view(result.table, result.best, worst, label))
        typer.echo(str(run_dir))
    raise exit_for(status)
