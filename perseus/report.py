"""Results folder -> Summary -> summary.csv, report.md, report.html, plots. Reads only the folder."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perseus import results
from perseus.analysis.summary import Summary, summarize
from perseus.manifest import DeploymentRecord, Manifest, Status
from perseus.models.config import parse_config
from perseus.pricing.catalog import Price, lookup
from perseus.records import recover

# Only what perseus.analysis reads (summary, plots): every column here is copied by each groupby of the
# analysis, so one unused float64 column costs about a second and 80 MB at 10M records. Add a column
# here when the analysis starts reading it (scheduled_s, sent_s, service_ms and error are left out).
ANALYSIS_COLUMNS = ["tenant", "model", "deployment", "done_s", "latency_ms", "ok", "warmup"]
# Beside summary.csv and deployments.csv (results.py may adopt these names).


def read_analysis_frame(run_dir: Path, deployments: Sequence[str] | None = None) -> pd.DataFrame:
    """The request records the analysis needs, as pandas: tenant/model/deployment as categoricals.

    Strings as categoricals keep 10M records at about 30 bytes a row. ``split_blocks`` and
    ``self_destruct`` let pandas take Arrow's float buffers instead of copying them and free each
    column once converted, so the Arrow table and the frame are never both held in full.
    """
    columns = [*ANALYSIS_COLUMNS, "scheduled_s", "sent_s"]
    table = results.read_requests(run_dir, columns, dictionary=True, deployments=deployments)
    # The load generator's own delay (sent - scheduled), as one float32 column instead of two float64s.
    lag_ms = pc.cast(pc.multiply(pc.subtract(table["sent_s"], table["scheduled_s"]), 1e3), pa.float32())
    table = table.drop_columns(["scheduled_s", "sent_s"]).append_column("send_lag_ms", lag_ms)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    # Parquet decoding leaves freed buffers cached in Arrow's allocator (~40 bytes a record): hand
    # them back before the analysis allocates its own.
    pa.default_memory_pool().release_unused()
    return frame


def hardware_notes(manifest: Manifest) -> tuple[str, list[str]]:
    """A one-line hardware description, and warnings where the measured and priced hardware differ."""
    host, gpus = manifest.host, manifest.gpus
    gpu_text = ", ".join(g["name"] for g in gpus) if gpus else "no NVIDIA GPU"
    described = f"CPU: {host.get('cpu', '?')} ({host.get('cpu_cores', '?')} cores); {gpu_text}"
    ran_on = providers_text(manifest)
    if ran_on:
        described += f"; onnxruntime execution providers: {ran_on}"
    notes = []
    if manifest.gpu_note:
        notes.append(manifest.gpu_note)
    price = manifest.price or {}
    priced_gpu = price.get("gpu")
    if priced_gpu and not gpus:
        notes.append(
            f"measured without a GPU but priced as {price.get('name')} ({price.get('gpus')}x {priced_gpu}): "
            "the cost figures show how the method works, not what that instance would achieve"
        )
    elif priced_gpu and gpus and not any(priced_gpu.lower() in g["name"].lower() for g in gpus):
        notes.append(f"measured on {gpu_text} but priced as {price.get('name')} ({priced_gpu})")
    return described, notes


def providers_text(manifest: Manifest) -> str:
    """The execution providers the tenants ran on, as recorded per deployment: one list when all agree,
    else per tenant (deployments that record none, such as a remote server's, are left out)."""
    by_tenant: dict[str, list[str]] = {}
    for record in manifest.deployments.values():
        for tenant, used in (record.providers or {}).items():
            by_tenant.setdefault(tenant, [])
            if " > ".join(used) not in by_tenant[tenant]:
                by_tenant[tenant].append(" > ".join(used))
    kinds = {p for seen in by_tenant.values() for p in seen}
    if len(kinds) <= 1:
        return next(iter(kinds), "")
    return "; ".join(f"{tenant} {' or '.join(seen)}" for tenant, seen in by_tenant.items())


def missing_parts(run_dir: Path, deployments: Iterable[str], recovered: dict[str, list[str]]) -> list[str]:
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


def read_pipelines(run_dir: Path, deployments: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """Each deployment's ensemble tenants and their step models, as rendered for that deployment."""
    out = {}
    for name in deployments:
        path = run_dir / name / results.CONFIGS / results.STEPS_JSON
        if path.is_file():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def tenant_labels(telemetry: pd.DataFrame, deployments: dict[str, DeploymentRecord]) -> pd.DataFrame:
    """Triton labels its metrics by served model name. Locally that is the tenant's name; on a remote
    server it is the model's own name, mapped back here (when one tenant per model, so unambiguous)."""
    for name, record in deployments.items():
        served = record.served or {}
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


@dataclass(frozen=True)
class Folder:
    """What the analysis reads from a run folder, read once (records recovered first if a run crashed)."""

    manifest: Manifest
    deployments: dict[str, DeploymentRecord]  # those analysed, in run order
    requests: pd.DataFrame
    telemetry: pd.DataFrame
    price: Price | None
    recovered: dict[str, list[str]]
    spans: pd.DataFrame | None = None  # traced deployments' spans.parquet rows; None without tracing


def read_folder(run_dir: Path, only: Sequence[str] | None = None) -> Folder:
    """The run folder's manifest, records and telemetry: every deployment that started, or ``only`` these."""
    run_dir = Path(run_dir)
    manifest = Manifest.load(run_dir)
    chosen = {n: d for n, d in manifest.measured().items() if only is None or n in only}
    recovered: dict[str, list[str]] = {}
    for name in chosen:
        paths = recover(
            run_dir / name, {results.REQUESTS: results.REQUEST_SCHEMA, results.TELEMETRY: results.TELEMETRY_SCHEMA}
        )
        recovered[name] = [p.name for p in paths]
    names = list(chosen)
    pricing = manifest.scenario.effective["pricing"]
    # The price the run used (recorded in its manifest), so a rebuilt report keeps its figures even after
    # the catalog or the price cache changed; older manifests without one fall back to a lookup.
    price = (
        Price.from_dict(manifest.price)
        if manifest.price
        else lookup(pricing["provider"], pricing["instance"], pricing["region"], pricing["market"])
    )
    telemetry = tenant_labels(results.read_telemetry(run_dir, names).to_pandas(), chosen)
    spans = results.read_spans(run_dir, names)
    return Folder(
        manifest,
        chosen,
        read_analysis_frame(run_dir, names),
        telemetry,
        price,
        recovered,
        spans.to_pandas() if spans is not None else None,
    )


def summarize_folder(folder: Folder, run_dir: Path, hardware: list[str] = ()) -> Summary:
    """The one path from deployment folders to their Summary (report, capacity, sweep and ui all take it)."""
    failed = [
        f"deployment {n} {d.status}: {d.reason or ''}"
        for n, d in folder.deployments.items()
        if d.status != Status.COMPLETED
    ]
    return summarize(
        folder.requests,
        folder.manifest.scenario.effective,
        {name: analysis_record(run_dir, folder.manifest, name, r) for name, r in folder.deployments.items()},
        folder.price.usd_per_hour if folder.price else None,
        notes=tuple(failed + missing_parts(run_dir, folder.deployments, folder.recovered) + list(hardware)),
        telemetry=folder.telemetry,
        pipelines=read_pipelines(run_dir, folder.deployments),
        capacity=read_capacity(run_dir),
        not_started=[
            n for n, d in folder.manifest.deployments.items() if not d.measured and n not in folder.deployments
        ],
        spans=folder.spans,
    )


def analysis_record(run_dir: Path, manifest: Manifest, name: str, record: DeploymentRecord) -> dict:
    """A deployment's manifest record, with what the analysis needs from beside it: the model instances
    each tenant was served with (its configs/) and the price of the instance it is priced as."""
    data = record.model_dump(mode="json")
    data["instances"] = served_instances(run_dir / name / results.CONFIGS, record.tenants)
    if record.instance and record.instance in manifest.prices:
        data["usd_per_hour"] = float(manifest.prices[record.instance]["usd_per_hour"])
    return data


def served_instances(configs: Path, tenants: list[str]) -> dict[str, int]:
    """Model instances per tenant, from the config.pbtxt each was served with (none: remote or embedded)."""
    out = {}
    for tenant in tenants:
        path = configs / f"{tenant}.pbtxt"
        if path.is_file():
            groups = parse_config(path.read_text(encoding="utf-8")).instance_group
            # Triton's default for a group without a count is one instance (per GPU for KIND_GPU; the
            # rendered configs name their GPUs or run on one).
            out[tenant] = sum(max(g.count, 1) * max(len(g.gpus), 1) for g in groups) if groups else 1
    return out


def read_capacity(run_dir: Path) -> pd.DataFrame | None:
    """The folder's capacity table (a `perseus capacity` folder, or copied in by --capacity DIR)."""
    path = Path(run_dir) / results.CAPACITY_CSV
    return pd.read_csv(path) if path.is_file() else None


def summary_of(run_dir: Path, only: Sequence[str] | None = None) -> Summary:
    """The Summary of a run folder's deployments (or ``only`` these), from the folder alone."""
    return summarize_folder(read_folder(run_dir, only), run_dir)


def build(run_dir: Path) -> Summary:
    """Every CSV, the plots and report.md/html, from the run folder alone (`perseus report DIR`)."""
    # Deferred, not a cycle: matplotlib and jinja take about a second to import, and `perseus run`
    # imports this module before it checks its input, which should fail fast.
    from perseus.analysis.plots import make_plots
    from perseus.analysis.render import ReportContext, render_html, render_markdown

    run_dir = Path(run_dir)
    folder = read_folder(run_dir)
    manifest = folder.manifest
    described, notes = hardware_notes(manifest)
    summary = summarize_folder(folder, run_dir, notes)
    _write_tables(summary, run_dir)
    plots = make_plots(folder.requests, summary, run_dir / results.PLOTS, folder.telemetry, folder.spans)
    pricing, price = manifest.scenario.effective["pricing"], folder.price
    ctx = ReportContext(
        run_dir=str(run_dir),
        status=manifest.status,
        started=manifest.started,
        ended=manifest.ended or "",
        instance=pricing["instance"],
        region=pricing["region"],
        market=pricing["market"],
        usd_per_hour=price.usd_per_hour if price else None,
        price_source=price.source if price else "not in the bundled catalog",
        price_date=(price.date + (f"; {price.note}" if price.note else "")) if price else "",
        hardware=described,
        versions=manifest.versions,
        deployment_status={n: d.status + (f": {d.reason}" if d.reason else "") for n, d in folder.deployments.items()},
        command=manifest.command,
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
    if not summary.frameworks.empty:
        summary.frameworks.to_csv(run_dir / results.FRAMEWORKS_CSV, index=False, float_format="%.6g")
    if not summary.pipeline.empty:
        summary.pipeline.to_csv(run_dir / results.PIPELINE_CSV, index=False, float_format="%.6g")
    if not summary.trials.empty:
        summary.trials.to_csv(run_dir / results.TRIALS_CSV, index=False, float_format="%.6g")
    if len(summary.energy):
        summary.energy.to_csv(run_dir / results.ENERGY_CSV, index=False, float_format="%.6g")
    if len(summary.breakdown):
        summary.breakdown.to_csv(run_dir / results.BREAKDOWN_CSV, index=False, float_format="%.6g")
    if len(summary.attribution):
        summary.attribution.to_csv(run_dir / results.ATTRIBUTION_CSV, index=False, float_format="%.6g")
    if summary.at_capacity is not None:
        summary.at_capacity.tenants.to_csv(run_dir / results.COST_AT_CAPACITY_CSV, index=False, float_format="%.6g")
