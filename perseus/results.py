"""The results folder: layout, manifest, readers and writers. The one place that knows file names.

<run>/manifest.json, scenario.toml, summary.csv, deployments.csv, server.csv, chargeback.csv,
      trials.csv, energy.csv, report.html, report.md, plots/*.png
<run>/<deployment>/requests.parquet, telemetry.parquet, server.log, configs/*.pbtxt
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
SCENARIO_COPY = "scenario.toml"
SUMMARY_CSV = "summary.csv"
DEPLOYMENTS_CSV = "deployments.csv"  # one row per deployment: duration, completed, cost, SLAs met
SERVER_CSV = "server.csv"  # Triton's rates and energy per (deployment, tenant)
CHARGEBACK_CSV = "chargeback.csv"  # each multi-tenant deployment's cost split among its tenants
STRATEGIES_CSV = "strategies.csv"  # embedded vs external per tenant (only with strategies)
FRAMEWORKS_CSV = "frameworks.csv"  # serving frameworks side by side per tenant (only with [run] servers)
PIPELINE_CSV = "pipeline.csv"  # each ensemble step's server-side time (only with ensemble tenants)
STEPS_JSON = "steps.json"  # in <deployment>/configs/: each ensemble tenant's step models
TRIALS_CSV = "trials.csv"  # Student-t intervals across repeated trials (only with --repeat)
ENERGY_CSV = "energy.csv"  # GPU energy per deployment (only with NVML telemetry)
CAPACITY_CSV = "capacity.csv"  # perseus capacity's table; copied into a run folder by --capacity DIR
COST_AT_CAPACITY_CSV = "capacity_cost.csv"  # cost at capacity per (search, tenant), when capacity.csv exists
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
PLOTS = "plots"
REQUESTS = "requests.parquet"
TELEMETRY = "telemetry.parquet"
BREAKDOWN_CSV = "breakdown.csv"  # traced runs: latency parts at p50/p99 per (deployment, tenant)
ATTRIBUTION_CSV = "attribution.csv"  # traced runs with solo baselines: shared vs solo change, by cause
SPANS = "spans.parquet"  # traced requests' server timelines (run.trace_rate > 0), analysis.spans.SPAN_COLUMNS
SERVER_LOG = "server.log"
CONFIGS = "configs"
WORKERS = "workers"  # <run>/workers/worker-<i>.log: the local load workers' own output (--workers)

REQUEST_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("model", pa.string()),
        ("deployment", pa.string()),
        ("scheduled_s", pa.float64()),
        ("sent_s", pa.float64()),
        ("done_s", pa.float64()),
        ("latency_ms", pa.float64()),
        ("service_ms", pa.float64()),
        ("ok", pa.bool_()),
        ("error", pa.string()),
        ("warmup", pa.bool_()),
    ]
)

TELEMETRY_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("source", pa.string()),
        ("metric", pa.string()),
        ("labels", pa.string()),  # JSON object, sorted keys
        ("value", pa.float64()),
    ]
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_run_dir(scenario_name: str, root: Path = Path("results")) -> Path:
    return root / f"{scenario_name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"


def json_value(value):
    """numpy scalars -> Python values, so the JSON holds numbers and booleans, not their str()."""
    return value.item() if isinstance(value, np.generic) else value


# Owner-only, on purpose, for what holds the user's input as typed: the manifest (the command line and the
# scenario as requested and as effective, e.g. a remote server's URL), the scenario copy and the JSON
# records beside them (sweep points, plan probes). Such text can carry a credential a user put in a URL
# or a header. The measurements, tables, plots and reports (0644 under the usual umask) hold none of it.
PRIVATE_MODE = 0o600


def write_json_atomic(path: Path, data: dict) -> None:
    """Write-then-rename, so a crash never leaves a half-written manifest; the file is ``PRIVATE_MODE``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, PRIVATE_MODE)  # mkstemp's 0600 already, said here on purpose rather than by accident
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


def copy_private(source: Path, target: Path) -> None:
    """Copy a file created ``PRIVATE_MODE`` from the start (never readable by others, even for a moment)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)  # a file already there (a resumed sweep) keeps no wider mode
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out)


def read_manifest(run_dir: Path) -> dict:
    """The manifest as raw JSON, for tools and tests that check the file itself. perseus's own code reads
    and writes it only through ``perseus.manifest.Manifest``."""
    return json.loads((Path(run_dir) / MANIFEST).read_text(encoding="utf-8"))


def deployment_dirs(run_dir: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Deployment folders that recorded requests, in manifest order (or only ``names``, in that order)."""
    if names is None:
        names = list(read_manifest(run_dir).get("deployments", {}))
    return [Path(run_dir) / n for n in names if (Path(run_dir) / n / REQUESTS).exists()]


# Request columns with a handful of distinct values: read dictionary-encoded, they become pandas
# categoricals (a small integer code per row) instead of one Python string per row per column.
LOW_CARDINALITY = ("tenant", "model", "deployment")


def read_requests(
    run_dir: Path,
    columns: list[str] | None = None,
    *,
    dictionary: bool = False,
    deployments: Sequence[str] | None = None,
) -> pa.Table:
    """All deployments' request records as one Arrow table (only the columns asked for).

    ``dictionary=True`` reads ``LOW_CARDINALITY`` columns as ``dictionary<string>``, so that
    ``to_pandas()`` gives categoricals: at 10M records that is the difference between seconds and
    tens of seconds, and between about 1 GB and 3 GB, in every later groupby and filter.
    """
    names = list(REQUEST_SCHEMA.names) if columns is None else list(columns)
    encoded = [c for c in LOW_CARDINALITY if c in names] if dictionary else []
    tables = [
        pq.read_table(d / REQUESTS, columns=columns, read_dictionary=encoded or None)
        for d in deployment_dirs(run_dir, deployments)
    ]
    if not tables:
        fields = [REQUEST_SCHEMA.field(c) for c in names]
        fields = [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in encoded else f for f in fields]
        return pa.schema(fields).empty_table()
    return pa.concat_tables(tables)


def read_spans(run_dir: Path, deployments: Sequence[str] | None = None) -> pa.Table | None:
    """Every traced deployment's spans.parquet as one table; None when no deployment was traced."""
    tables = [pq.read_table(d / SPANS) for d in deployment_dirs(run_dir, deployments) if (d / SPANS).exists()]
    return pa.concat_tables(tables) if tables else None


def read_telemetry(run_dir: Path, deployments: Sequence[str] | None = None) -> pa.Table:
    tables = []
    for d in deployment_dirs(run_dir, deployments):
        path = d / TELEMETRY
        if path.exists():
            t = pq.read_table(path)
            tables.append(t.append_column("deployment", pa.array([d.name] * t.num_rows, pa.string())))
    if not tables:
        return TELEMETRY_SCHEMA.append(pa.field("deployment", pa.string())).empty_table()
    return pa.concat_tables(tables)
