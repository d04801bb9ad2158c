"""The sweep pipeline: design points checked up front, the sweep folder (new or resumed), then each point
run as its own deployment and committed atomically.

<sweep>/manifest.json           kind "sweep", the design (sweep.points) and the committed points
<sweep>/<point>/                the point's deployment folder (requests.parquet, telemetry, server.log)
<sweep>/points/<point>.json     the point's result, written by temp + rename once its deployment ended:
                                a point is committed exactly when this file exists
<sweep>/sweep.csv, pareto.csv, main_effects.csv, sweep.md, plots/
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from perseus import results
from perseus.analysis.stats import sla_latency
from perseus.checks import Prepared, prepare_run_dir
from perseus.errors import InputError, did_you_mean
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, DeploymentRecord, Manifest, Status, SweepBook
from perseus.plan import Deployment
from perseus.progress import Progress
from perseus.report import summary_of
from perseus.run import Runner, new_manifest, resume, save_inputs
from perseus.scenario import Scenario, parse_factor
from perseus.server import repository
from perseus.sweep.design import Point, apply, design, scale_of

POINTS = "points"
SWEEP_CSV = "sweep.csv"
PARETO_CSV = "pareto.csv"
MAIN_EFFECTS_CSV = "main_effects.csv"
SWEEP_MD = "sweep.md"


def describe(settings: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def check(ready: Prepared) -> list[Point]:
    """The design's points, each checked against the models (batching, batch sizes) before anything runs."""
    scenario, source = ready.scenario, str(ready.file)
    spec = scenario.sweep
    if spec is None:
        raise InputError(source, "sweep", "no [sweep] table: declare the design space to sweep (docs/scenario.md)")
    names = [t.name for t in scenario.tenants]
    for key in spec.factors:
        target, _ = parse_factor(key)
        if target not in (None, "*") and target not in names:
            raise InputError(
                source,
                f"sweep.factors.{json.dumps(key, ensure_ascii=False)}",
                f"no tenant {target!r} (tenants: {', '.join(names)})" + did_you_mean(target, names),
            )
    points = design(spec)
    levels = spec.effective_levels()
    for point in points:
        try:
            repository.check_models(apply(scenario, point.settings, levels), ready.repository, source)
        except InputError as exc:
            where = f"{exc.field}: " if exc.field else ""
            reason = f"point {point.name} ({describe(point.settings)}): {where}{exc.reason}"
            raise InputError(source, "sweep", reason) from None
    return points


def _first_difference(a, b, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (path or "(top)")


def _differs(effective: dict, points: list[Point]):
    """What makes an earlier sweep folder another sweep than this one (None: the same, so it resumes)."""

    def differs(manifest: Manifest) -> str | None:
        if manifest.sweep is None:
            return "no sweep record"
        first = _first_difference(manifest.scenario.effective, effective)
        if first:
            return (
                f"a sweep of another scenario or settings (differs at {first}): resume with the same scenario file "
                "and flags"
            )
        if [p["name"] for p in manifest.sweep.points] != [p.name for p in points]:
            return "a sweep with other design points"
        return None

    return differs


def open_dir(out: Path | None, ready: Prepared, points: list[Point], command: str) -> tuple[Path, Manifest]:
    """A new sweep folder (``--out`` absent or empty), or an existing one of the same sweep, to resume."""
    effective = ready.scenario.model_dump(mode="json")
    manifest = new_manifest(ready, [], command, kind=CommandKind.SWEEP)
    if out is not None and Path(out).is_dir() and any(Path(out).iterdir()):
        return Path(out), resume(Path(out), manifest, "sweep", _differs(effective, points))
    run_dir = prepare_run_dir(out, f"{ready.scenario.name}-sweep")
    spec = ready.scenario.sweep
    manifest.sweep = SweepBook(
        sampling=spec.sampling,
        seed=spec.seed,
        levels=spec.effective_levels(),
        points=[{"name": p.name, "index": p.index, "settings": p.settings} for p in points],
    )
    save_inputs(run_dir, ready.file, manifest)
    return run_dir, manifest


def point_file(run_dir: Path, point: Point) -> Path:
    return run_dir / POINTS / f"{point.name}.json"


def committed(run_dir: Path, point: Point) -> bool:
    return point_file(run_dir, point).is_file()


def measure(run_dir: Path, point: Point, scenario: Scenario, entry: DeploymentRecord) -> dict:
    """The point's result record, from its own folder (its price is the run's, from the manifest)."""
    spec = scenario.sweep
    record = {
        "point": point.name,
        "index": point.index,
        "settings": point.settings,
        "scale": scale_of(point.settings, spec.effective_levels()),
        "status": str(entry.status),
        "reason": entry.reason,
        "servers": {t.name: t.server.model_dump(mode="json") for t in scenario.tenants},
        "objective_percentile": spec.objective_percentile,
        "tenants": {},
        "deployment": {},
    }
    path = run_dir / point.name / results.REQUESTS
    if not path.exists():
        return record
    summary = summary_of(run_dir, [point.name])
    requests = pq.read_table(path, columns=["tenant", "latency_ms", "ok", "warmup"]).to_pandas()
    measured = requests[~requests["warmup"]]
    for row in summary.rows.to_dict("records"):
        mine = measured[measured["tenant"] == row["tenant"]]
        objective = sla_latency(
            mine["latency_ms"].to_numpy(dtype=float), mine["ok"].to_numpy(dtype=bool), spec.objective_percentile
        )
        record["tenants"][row["tenant"]] = {k: results.json_value(v) for k, v in row.items()} | {
            "objective_ms": objective
        }
    record["deployment"] = {k: results.json_value(v) for k, v in summary.deployments.iloc[0].to_dict().items()}
    return record


def pending_points(run_dir: Path, points: list[Point], limit: int | None) -> list[Point]:
    """The points (of the first ``limit``) this run will measure: those not committed yet."""
    return [p for p in (points[:limit] if limit else points) if not committed(run_dir, p)]


def execute(
    ready: Prepared, points: list[Point], run_dir: Path, manifest: Manifest, limit: int | None, progress: Progress
) -> Status:
    """Run every point (of the first ``limit``) not yet committed, in design order; commit each as it ends.

    Returns the sweep's status. A point interrupted half-way is not committed: its folder is removed
    and it runs again on resume.
    """
    scenario = ready.scenario
    levels = scenario.sweep.effective_levels()
    names = tuple(t.name for t in scenario.tenants)
    book = manifest.sweep.committed
    for record in load_points(run_dir, points):  # a commit whose manifest update was lost still counts
        book.setdefault(record["point"], {"file": f"{POINTS}/{record['point']}.json", "status": record["status"]})
    chosen = points[:limit] if limit else points
    pending = pending_points(run_dir, points, limit)
    interrupted = False
    try:
        with Runner(run_dir, manifest, ready.use_gpu, progress) as runner:
            for point in pending:
                at_point = apply(scenario, point.settings, levels)
                partial = run_dir / point.name
                if partial.exists():  # left by an interrupted attempt; never a committed point's folder
                    shutil.rmtree(partial)
                deployment = Deployment(point.name, names, kind=DeploymentKind.POINT)
                status = runner.run(at_point, deployment, ready.repository)
                if status == Status.INTERRUPTED:
                    interrupted = True
                    break
                record = measure(run_dir, point, at_point, manifest.deployments[point.name])
                (run_dir / POINTS).mkdir(exist_ok=True)
                results.write_json_atomic(point_file(run_dir, point), record)
                book[point.name] = {"file": f"{POINTS}/{point.name}.json", "status": status, "at": results.utc_now()}
                runner.save()
    except KeyboardInterrupt:
        interrupted = True
    failed = any(book[p.name]["status"] != Status.COMPLETED for p in chosen if p.name in book)
    manifest.close(Status.INTERRUPTED if interrupted else (Status.FAILED if failed else Status.COMPLETED))
    manifest.sweep.pending = [p.name for p in points if not committed(run_dir, p)]
    manifest.save(run_dir)
    return manifest.status


def load_points(run_dir: Path, points: list[Point]) -> list[dict]:
    """The committed results of ``points``, in design order."""
    out = []
    for point in points:
        path = point_file(run_dir, point)
        if path.is_file():
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out
