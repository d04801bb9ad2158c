"""Results folder -> Summary -> summary.csv, report.md, report.html, plots. Reads only the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perseus import results
from perseus.analysis.summary import Summary, summarize
from perseus.load.recorder import recover
from perseus.pricing.catalog import Price, lookup

# Only what perseus.analysis reads (summary, plots): every column here is copied by each groupby of the
# analysis, so one unused float64 column costs about a second and 80 MB at 10M records. Add a column
# here when the analysis starts reading it (scheduled_s, sent_s, service_ms and error are left out).
ANALYSIS_COLUMNS = ["tenant", "model", "deployment", "done_s", "latency_ms", "ok", "warmup"]
# Beside summary.csv and deployments.csv (results.py may adopt these names).


def read_analysis_frame(run_dir: Path) -> pd.DataFrame:
    """The request records the analysis needs, as pandas: tenant/model/deployment as categoricals.

    Strings as categoricals keep 10M records at about 30 bytes a row. ``split_blocks`` and
    ``self_destruct`` let pandas take Arrow's float buffers instead of copying them and free each
    column once converted, so the Arrow table and the frame are never both held in full.
    """
    table = results.read_requests(run_dir, [*ANALYSIS_COLUMNS, "scheduled_s", "sent_s"], dictionary=True)
    # The load generator's own delay (sent - scheduled), as one float32 column instead of two float64s.
    lag_ms = pc.cast(pc.multiply(pc.subtract(table["sent_s"], table["scheduled_s"]), 1e3), pa.float32())
    table = table.drop_columns(["scheduled_s", "sent_s"]).append_column("send_lag_ms", lag_ms)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    # Parquet decoding leaves freed buffers cached in Arrow's allocator (~40 bytes a record): hand
    # them back before the analysis allocates its own.
    pa.default_memory_pool().release_unused()
    return frame


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


def missing_parts(run_dir: Path, deployments: dict[str, dict], recovered: dict[str, list[str]]) -> list[str]:
    """Notes for what a partial run folder lacks, or holds only in part, per deployment."""
    notes = []
    for name in deployments:
        folder = Path(run_dir) / name
        if not (folder / results.REQUESTS).exists():
            notes.append(f"deployment {name}: no requests recorded (no {results.REQUESTS})")
            continue
        if results.REQUESTS in recovered.get(name, ()):
            notes.append(
                f"deployment {name}: requests recovered from an unfinished record stream "
                "(the run stopped without closing it; up to its last second of records may be lost)"
            )
        if not (folder / results.TELEMETRY).exists():
            notes.append(f"deployment {name}: no telemetry recorded (no {results.TELEMETRY})")
    return notes


def read_pipelines(run_dir: Path, deployments: dict) -> dict[str, dict[str, list[str]]]:
    """Each deployment's ensemble tenants and their step models, as rendered for that deployment."""
    out = {}
    for name in deployments:
        path = run_dir / name / results.CONFIGS / results.STEPS_JSON
        if path.is_file():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def tenant_labels(telemetry: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Triton labels its metrics by served model name. Locally that is the tenant's name; on a remote
    server it is the model's own name, mapped back here (when one tenant per model, so unambiguous)."""
    for name, meta in manifest.get("deployments", {}).items():
        served = meta.get("served") or {}
        by_model = {m: t for t, m in served.items() if m != t and list(served.values()).count(m) == 1}
        if not by_model or telemetry.empty:
            continue
        rows = telemetry["deployment"] == name
        telemetry.loc[rows, "labels"] = telemetry.loc[rows, "labels"].map(lambda s, m=by_model: _relabel(s, m))
    return telemetry


def _relabel(labels: str, by_model: dict[str, str]) -> str:
    parsed = json.loads(labels)
    if parsed.get("model") in by_model:
        parsed["model"] = by_model[parsed["model"]]
        return json.dumps(parsed, sort_keys=True)
    return labels


def build(run_dir: Path) -> Summary:
    # matplotlib and jinja are imported here: `perseus run` imports this module before it checks its
    # input, and bad input should fail fast.
    from perseus.analysis.plots import make_plots
    from perseus.analysis.render import ReportContext, render_html, render_markdown

    run_dir = Path(run_dir)
    manifest = results.read_manifest(run_dir)
    recovered: dict[str, list[str]] = {}
    for name in manifest.get("deployments", {}):
        paths = recover(
            run_dir / name, {results.REQUESTS: results.REQUEST_SCHEMA, results.TELEMETRY: results.TELEMETRY_SCHEMA}
        )
        recovered[name] = [p.name for p in paths]
    requests = read_analysis_frame(run_dir)
    effective = manifest["scenario"]["effective"]
    pricing = effective["pricing"]
    # The price the run used (recorded in its manifest), so a rebuilt report keeps its figures even after
    # the catalog or the price cache changed; older manifests without one fall back to a lookup.
    recorded = manifest.get("price")
    price = (
        Price.from_dict(recorded)
        if recorded
        else lookup(pricing["provider"], pricing["instance"], pricing["region"], pricing["market"])
    )
    telemetry = tenant_labels(results.read_telemetry(run_dir).to_pandas(), manifest)
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
        notes=tuple(failed + missing_parts(run_dir, deployments, recovered) + notes),
        telemetry=telemetry,
        pipelines=read_pipelines(run_dir, deployments),
    )
    _write_tables(summary, run_dir)
    plots = make_plots(requests, summary, run_dir / results.PLOTS, telemetry)
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
        price_date=(price.date + (f"; {price.note}" if price.note else "")) if price else "",
        hardware=described,
        versions=manifest.get("versions", {}),
        deployment_status={
            n: m["status"] + (f": {m['reason']}" if m.get("reason") else "") for n, m in deployments.items()
        },
        command=manifest.get("command", ""),
    )
    (run_dir / results.REPORT_MD).write_text(render_markdown(summary, ctx, plots), encoding="utf-8")
    (run_dir / results.REPORT_HTML).write_text(render_html(summary, ctx, plots), encoding="utf-8")
    return summary


def _write_tables(summary: Summary, run_dir: Path) -> None:
    summary.rows.to_csv(run_dir / results.SUMMARY_CSV, index=False, float_format="%.6g")
    summary.deployments.to_csv(run_dir / results.DEPLOYMENTS_CSV, index=False, float_format="%.6g")
    summary.server.to_csv(run_dir / results.SERVER_CSV, index=False, float_format="%.6g")
    summary.chargeback.to_csv(run_dir / results.CHARGEBACK_CSV, index=False, float_format="%.6g")
    if not summary.strategies.empty:
        summary.strategies.to_csv(run_dir / results.STRATEGIES_CSV, index=False, float_format="%.6g")
    if not summary.pipeline.empty:
        summary.pipeline.to_csv(run_dir / results.PIPELINE_CSV, index=False, float_format="%.6g")
    if not summary.trials.empty:
        summary.trials.to_csv(run_dir / results.TRIALS_CSV, index=False, float_format="%.6g")
    if len(summary.energy):
        summary.energy.to_csv(run_dir / results.ENERGY_CSV, index=False, float_format="%.6g")
