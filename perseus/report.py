"""Results folder -> Summary -> summary.csv, report.md, report.html, plots. Reads only the folder."""

from __future__ import annotations

from pathlib import Path

from perseus import results
from perseus.analysis.plots import make_plots
from perseus.analysis.render import ReportContext, render_html, render_markdown
from perseus.analysis.summary import Summary, summarize
from perseus.load.recorder import recover
from perseus.pricing.catalog import lookup

ANALYSIS_COLUMNS = ["tenant", "model", "deployment", "scheduled_s", "done_s", "latency_ms", "ok", "warmup"]


def hardware_notes(manifest: dict) -> tuple[str, list[str]]:
    """A one-line hardware description, and warnings where the measured and priced hardware differ."""
    host = manifest.get("host", {})
    gpus = manifest.get("gpus", [])
    gpu_text = ", ".join(g["name"] for g in gpus) if gpus else "no NVIDIA GPU"
    described = f"CPU: {host.get('cpu', '?')} ({host.get('cpu_cores', '?')} cores); {gpu_text}"
    notes = []
    if manifest.get("gpu_note"):
        notes.append(manifest["gpu_note"])
    price = manifest.get("price") or {}
    priced_gpu = price.get("gpu")
    if priced_gpu and not gpus:
        notes.append(
            f"measured without a GPU but priced as {price.get('name')} ({price.get('gpus')}x {priced_gpu}): "
            "the cost figures show how the method works, not what that instance would achieve"
        )
    elif priced_gpu and gpus and not any(priced_gpu.lower() in g["name"].lower() for g in gpus):
        notes.append(f"measured on {gpu_text} but priced as {price.get('name')} ({priced_gpu})")
    return described, notes


def build(run_dir: Path) -> Summary:
    run_dir = Path(run_dir)
    manifest = results.read_manifest(run_dir)
    for name in manifest.get("deployments", {}):
        recover(run_dir / name, {results.REQUESTS: results.REQUEST_SCHEMA, results.TELEMETRY: results.TELEMETRY_SCHEMA})
    requests = results.read_requests(run_dir, ANALYSIS_COLUMNS).to_pandas()
    effective = manifest["scenario"]["effective"]
    pricing = effective["pricing"]
    price = lookup(pricing["provider"], pricing["instance"], pricing["region"], pricing["market"])
    described, notes = hardware_notes(manifest)
    deployments = {name: meta for name, meta in manifest["deployments"].items() if meta.get("status") != "not started"}
    failed = [
        f"deployment {n} {m['status']}: {m.get('reason', '')}"
        for n, m in deployments.items()
        if m.get("status") != "completed"
    ]
    summary = summarize(
        requests,
        effective,
        deployments,
        price.usd_per_hour if price else None,
        notes=tuple(failed + notes),
    )
    _write_tables(summary, run_dir)
    plots = make_plots(requests, summary, run_dir / results.PLOTS)
    ctx = ReportContext(
        run_dir=str(run_dir),
        status=manifest.get("status", "unknown"),
        started=manifest.get("started", ""),
        ended=manifest.get("ended", ""),
        instance=pricing["instance"],
        region=pricing["region"],
        market=pricing["market"],
        usd_per_hour=price.usd_per_hour if price else None,
        price_source=price.source if price else "not in the bundled catalog",
        price_date=price.date if price else "",
        hardware=described,
        versions=manifest.get("versions", {}),
        deployment_status={
            n: m["status"] + (f": {m['reason']}" if m.get("reason") else "") for n, m in deployments.items()
        },
        command=manifest.get("command", ""),
    )
    (run_dir / results.REPORT_MD).write_text(render_markdown(summary, ctx), encoding="utf-8")
    (run_dir / results.REPORT_HTML).write_text(render_html(summary, ctx, plots), encoding="utf-8")
    return summary


def _write_tables(summary: Summary, run_dir: Path) -> None:
    summary.rows.to_csv(run_dir / results.SUMMARY_CSV, index=False, float_format="%.6g")
    summary.deployments.to_csv(run_dir / results.DEPLOYMENTS_CSV, index=False, float_format="%.6g")
