"""`perseus plan SCENARIO`: registered in perseus/cli.py as ``app.command("plan")(plan_command)``."""

from __future__ import annotations

import signal
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from perseus.errors import InputError
from perseus.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, command_line, errors, terminate_as_interrupt

QUICK_DURATION_S = 3.0
QUICK_WARMUP_S = 1.0


def plan_command(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario TOML file; its tenants' rates are the targets.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Plan folder: absent or empty for a new plan, or an earlier folder of the same plan to resume "
            "(probes already committed are replayed, not rerun). Default: results/<name>-plan-<UTC time>/."
        ),
    ] = None,
    headroom: Annotated[
        float, typer.Option(help="Every group must hold (1 + H) x its tenants' target rates within their SLAs.")
    ] = 0.25,
    max_probes: Annotated[int | None, typer.Option(help="Most probes (measured deployments) in all.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds per probe (overrides run.duration_s).")
    ] = None,
    warmup: Annotated[float | None, typer.Option(help="Warm-up seconds per probe (overrides run.warmup_s).")] = None,
    from_dirs: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            metavar="DIR",
            help="An earlier plan folder measured on other hardware (another instance type, e.g. through the "
            "remote launcher); repeat for several. Its measured groups join this plan's options, priced from the "
            "catalog as that instance, so the plan may mix instance types. Its tenants must match this scenario's.",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="3 s probes, 25% brackets, at most 4 probes per search: a small fleet in minutes."
        ),
    ] = False,
) -> None:
    """Find the cheapest packing of the tenants onto servers that meets every SLA, measured and verified.

    Measures each tenant alone (each of its `models` variants, when it lists several), then the groups
    that could make the fleet cheaper, most promising first (each a capacity search: the largest multiple
    of the tenants' rates that one server carries with every tenant VALID). Solves for the cheapest
    partition into groups with replicas and a variant per tenant (exact up to 14 tenants), over the
    instance measured here and those of any --from folders, then runs the chosen packing at the target
    rates to verify it (groups from --from folders cannot run here and stay unverified). Writes plan.csv,
    plan.toml (runnable with `perseus run`), plan.md, plan.html, probes.csv. The last line on stdout is
    the plan folder. Exit codes: 0 verified, 1 not verified or a tenant fits nowhere, 2 bad input,
    130 interrupted (rerun with the same --out to resume).
    """
    from perseus import checks, verdicts
    from perseus.display import RunDisplay
    from perseus.packing import imported as imports
    from perseus.packing import run as planner
    from perseus.packing.report import write_plan
    from perseus.packing.variants import members

    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    settings = planner.QUICK if quick else planner.Settings()
    if quick:
        duration = QUICK_DURATION_S if duration is None else duration
        warmup = QUICK_WARMUP_S if warmup is None else warmup
    with errors():
        settings = _with_flags(settings, headroom, max_probes)
        sources = from_dirs or []
        imported: list = []
        open_loop = checks.open_loop_only(scenario_file)

        def check(scenario) -> None:  # before any model is built: --from folders are input too
            open_loop(scenario)
            table = members(scenario)
            for folder in sources:  # each priced as its own instance, from today's catalog
                price_of = partial(checks.check_price, scenario, f"--from {folder}", field="instance")
                imported.append(imports.read(folder, scenario, table, price_of))

        ready = checks.prepare(scenario_file, duration_s=duration, warmup_s=warmup, baselines=False, checks=check)
        run_dir, manifest = planner.open_dir(out, ready, settings, command_line(), [str(f) for f in sources])
        with RunDisplay(0) as display:
            outcome = planner.execute(ready, settings, run_dir, manifest, display, imported)
        summary = write_plan(run_dir, ready, settings, outcome)
        verdicts.show(verdicts.plan_view(summary.plan, summary.verdict, summary.fleets))
        typer.echo(str(run_dir))
    if outcome.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if outcome.verified and not outcome.infeasible else EXIT_FAILED)


def _with_flags(settings, headroom: float, max_probes: int | None):
    if not 0 <= headroom <= 10:
        raise InputError("command line", "--headroom", f"must be between 0 and 10 (got {headroom:g})")
    if max_probes is not None and max_probes < 1:
        raise InputError("command line", "--max-probes", f"must be >= 1 (got {max_probes})")
    return replace(settings, headroom=headroom, max_probes=max_probes or settings.max_probes)
