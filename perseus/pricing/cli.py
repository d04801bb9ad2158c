"""``perseus prices``: list the price catalog; ``perseus prices refresh``: fetch live AWS prices into the cache.

Registered in perseus/cli.py with ``app.add_typer(prices_app, name="prices")``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from perseus.pricing import catalog as cat

app = typer.Typer(
    help="Instance prices: the bundled catalog, and live AWS prices cached by `perseus prices refresh`.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_REGION = "us-east-1"
CACHE_HELP = "Price cache file (default: $XDG_CACHE_HOME or ~/.cache, then perseus/prices.json)."


def _console() -> Console:
    # A terminal's width, or $COLUMNS where set; otherwise (a pipe, a file) wide enough for every column.
    return Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200, highlight=False)


def _gpu_text(p: cat.Price) -> str:
    if not p.gpus:
        return "none"
    memory = f" {p.gpu_memory_gb:g} GB" if p.gpu_memory_gb else ""
    return f"{p.gpus}x {p.gpu or 'GPU'}{memory}"


def _matches(p: cat.Price, provider: str | None, region: str | None, gpu: str | None) -> bool:
    if provider and p.provider.lower() != provider.lower():
        return False
    if region and p.region.lower() != region.lower():
        return False
    if gpu:
        if gpu.lower() in ("none", "cpu"):
            return not p.gpus
        return bool(p.gpus) and gpu.lower() in (p.gpu or "").lower()
    return True


# The catalog's columns, most needed first; a terminal too narrow for all of them loses the last ones
# (source and note are then printed once under the table; the others are left out, named there).
PRICE_COLUMNS = (
    ("instance", {"no_wrap": True}),
    ("$/h", {"justify": "right", "no_wrap": True}),
    ("GPU", {}),
    ("market", {"no_wrap": True}),
    ("region", {"no_wrap": True}),
    ("date", {"no_wrap": True}),
    ("origin", {}),
    ("vCPUs", {"justify": "right"}),
    ("memory GB", {"justify": "right"}),
    ("provider", {}),
    ("source", {}),
    ("note", {}),
)
SHOWN_BELOW = ("source", "note")


def _natural_width(console: Console, table: Table) -> int:
    """The table's width with no cell wrapped (a measurement is clamped to the width it is offered)."""
    return Measurement.get(console, console.options.update_width(100_000), table).maximum


def _fitting_table(console: Console, cells: list[dict], styles: list) -> tuple[Table, list[str]]:
    """The widest table whose natural width fits the console, and the columns it left out."""
    names = [n for n, _ in PRICE_COLUMNS]
    while True:
        table = Table(title="perseus price catalog (USD per hour, Linux)", title_justify="left")
        for name, kwargs in PRICE_COLUMNS:
            if name in names:
                table.add_column(name, **kwargs)
        for row, style in zip(cells, styles, strict=True):
            table.add_row(*(row[n] for n in names), style=style)
        if len(names) <= 3 or _natural_width(console, table) <= console.width:
            dropped = [n for n, _ in PRICE_COLUMNS if n not in names]
            return table, dropped
        names.pop()


@app.callback(invoke_without_command=True)
def prices(
    ctx: typer.Context,
    provider: Annotated[str | None, typer.Option(help="Only this provider, e.g. aws.")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region, e.g. us-east-1.")] = None,
    gpu: Annotated[str | None, typer.Option(help="Only this GPU (e.g. T4, H100); 'none' for CPU-only.")] = None,
    cache: Annotated[Path | None, typer.Option(help=CACHE_HELP)] = None,
) -> None:
    """List every known price with its source and date. A fresh cached price (fetched within 30 days)
    is the one runs use; otherwise the bundled one."""
    if ctx.invoked_subcommand is not None:
        return
    bundled = [p for p in cat.catalog() if _matches(p, provider, region, gpu)]
    cached_all = cat.cached(cache)
    cached = [p for p in cached_all if _matches(p, provider, region, gpu)]
    # The price a run would use, as in catalog.lookup: a fresh cached one, else the bundled one.
    used = {(p.provider, p.name, p.region, p.market): p for p in bundled}
    used.update({(p.provider, p.name, p.region, p.market): p for p in cached if cat.is_fresh(p)})

    rows = sorted((*bundled, *cached), key=lambda p: (p.provider, p.region, p.gpus == 0, p.usd_per_hour, p.market))
    cells, styles = [], []
    for p in rows:
        in_use = used.get((p.provider, p.name, p.region, p.market)) is p
        origin = p.origin if p.origin == cat.BUNDLED else ("cache" if cat.is_fresh(p) else "cache (stale)")
        cells.append(
            {
                "provider": p.provider,
                "region": p.region,
                "instance": p.name,
                "market": p.market,
                "$/h": f"{p.usd_per_hour:.4g}",
                "GPU": _gpu_text(p),
                "vCPUs": str(p.vcpus or "?"),
                "memory GB": f"{p.memory_gb:g}" if p.memory_gb else "?",
                "origin": origin + ("" if in_use else " (not used)"),
                "date": p.date,
                "source": p.source,
                "note": p.note,
            }
        )
        styles.append(None if in_use else "dim")
    console = _console()
    table, dropped = _fitting_table(console, cells, styles)
    if rows:
        console.print(table)
        for name in (n for n in dropped if n in SHOWN_BELOW):  # said once per distinct value, not per row
            values = list(dict.fromkeys(c[name] for c in cells if c[name]))
            if values:
                console.print(f"{name}: " + "; ".join(values))
        if hidden := [n for n in dropped if n not in SHOWN_BELOW]:
            console.print(f"not shown, the terminal is too narrow: {', '.join(hidden)}")
    else:
        console.print("no price matches these filters")
    doc = cat.read_cache(cache)
    where = cache or cat.cache_path()
    if doc is not None:
        console.print(
            f"cache: {where} (last refreshed {doc.get('fetched', '?')}, {len(cached_all)} prices); "
            f"cached prices older than {cat.MAX_CACHE_AGE_DAYS} days are not used"
        )
    else:
        console.print(f"cache: none at {where}; `perseus prices refresh` fetches live AWS prices")


@app.command()
def refresh(
    region: Annotated[str, typer.Option(help="AWS region to price.")] = DEFAULT_REGION,
    instance: Annotated[
        list[str] | None,
        typer.Option(
            "--instance",
            "-i",
            metavar="TYPE",
            help="Instance type (repeatable). Default: every instance in the catalog.",
        ),
    ] = None,
    spot: Annotated[bool, typer.Option("--spot/--no-spot", help="Also fetch spot prices.")] = True,
    cache: Annotated[Path | None, typer.Option(help=CACHE_HELP)] = None,
) -> None:
    """Fetch live on-demand (and spot) prices from AWS into the cache. Needs AWS credentials
    (pricing:GetProducts, ec2:DescribeSpotPriceHistory). Exit 2 without credentials."""
    from perseus.pricing import aws

    instances = list(dict.fromkeys(instance or [p.name for p in cat.catalog() if p.provider == aws.PROVIDER]))
    try:
        pricing_client, ec2_client = aws.clients(region)
        fetched = aws.refresh(pricing_client, ec2_client, instances, region, spot=spot)
    except aws.FETCH_ERRORS as exc:
        message, code = aws.describe_error(exc)
        typer.echo(f"perseus prices refresh: {message}", err=True)
        raise typer.Exit(code) from None
    if not fetched.on_demand and not fetched.spot:
        typer.echo(f"perseus prices refresh: AWS returned no price for {', '.join(instances)} in {region}", err=True)
        raise typer.Exit(1)
    path = cat.write_cache(fetched.cache_entries(), fetched.fetched, cache)

    table = Table(title=f"AWS prices, {region}, fetched {fetched.fetched} (USD per hour, Linux)", title_justify="left")
    for name in ("instance", "on-demand", "bundled", "spot median", "spot min", "zones"):
        table.add_column(name, justify="left" if name == "instance" else "right", no_wrap=name == "instance")
    bundled = {p.name: p for p in cat.catalog() if p.region == region and p.market == "on-demand"}
    for name in instances:
        od, sp, b = fetched.on_demand.get(name), fetched.spot.get(name), bundled.get(name)
        table.add_row(
            name,
            f"{od.usd_per_hour:.4g}" if od else "not found",
            f"{b.usd_per_hour:.4g}" if b else "",
            f"{sp.median_usd_per_hour:.4g}" if sp else ("" if not spot else "none"),
            f"{sp.min_usd_per_hour:.4g}" if sp else "",
            str(len(sp.zones)) if sp else "",
        )
    console = _console()
    console.print(table)
    console.print(f"wrote {path}")
