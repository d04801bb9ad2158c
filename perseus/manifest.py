"""The run manifest (``<run>/manifest.json``): one typed record, read and written only here.

Every command that runs deployments (run, calibrate, capacity, sweep, ui, plan) changes it through
these methods, never through dictionary keys, so a status word or a field is spelt in one place.
``Manifest.load`` reads manifests written by earlier versions of this format too: fields they lack
take their defaults, and a deployment's kind, which they did not record, is worked out from what
they did record (its tenants and strategy), never from its name.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perseus import results
from perseus.kinds import DeploymentKind, Status
from perseus.plan import Deployment

# The status says "interrupted"; the reason says how, without the word again ("interrupted: stopped by ...").
INTERRUPTED_REASON = "stopped by Ctrl-C or SIGTERM"
RESUME_VERSIONS = ("perseus", "tritonserver", "onnxruntime")  # a resumed folder must match these


class CommandKind(StrEnum):
    """Which command wrote the folder."""

    RUN = "run"
    CALIBRATION = "calibration"
    CAPACITY = "capacity"
    SWEEP = "sweep"
    PLAN = "plan"


class _Record(BaseModel):
    # Unknown keys are kept (and written back), so a folder written by a newer perseus survives a
    # rewrite by this one; the fields below are the ones this version reads and writes.
    model_config = ConfigDict(extra="allow")


class DeploymentRecord(_Record):
    tenants: list[str]
    status: Status = Status.NOT_STARTED
    duration_s: float  # configured measured seconds; the measured ones when the deployment stopped early
    kind: DeploymentKind = DeploymentKind.SHARED
    base: str | None = None  # a repeated trial: the deployment it repeats (None: itself)
    trial: int = 1
    strategy: str = "external"  # external: through a server; embedded: in the load generator
    replicas: int = 1  # a group measured as one replica of `replicas` (each tenant's rate / replicas)
    instance: str | None = None  # the instance type priced for this deployment (None: the scenario's)
    scale: float | None = None  # a capacity probe's load scale
    server: str | None = None  # [run] servers: the serving framework it ran on (None: the scenario's server.kind)
    layout: str | None = None  # [run] servers: the deployment it is, on that framework (`shared` of `shared@mlserver`)
    started: str | None = None
    ended: str | None = None
    requests: int | None = None
    served: dict[str, str] | None = None  # tenant -> the model name it was served under
    models: dict[str, str] | None = None  # tenant -> the model it ran (a `models` variant; None: the scenario's)
    workers: list[dict] | None = None  # distributed load: each worker's shard and what arrived
    providers: dict[str, list[str]] | None = None  # tenant -> the onnxruntime execution providers it ran on
    batch_fallbacks: dict[str, int] | None = None  # tenant -> batched executions rerun one request at a time
    failed_scrapes: dict[str, int] | None = None  # telemetry source -> failed scrapes (perseus/telemetry/scrapes.py)
    reason: str | None = None
    server_log_tail: str | None = None
    # Run again after a failure (perseus calibrate: its traced server crashed): each earlier attempt's
    # reason, its folder kept beside this one as <name>.failed-<n>.
    retried: list[str] | None = None

    @property
    def measured(self) -> bool:
        """Did it start? (A deployment never started has nothing to analyse.)"""
        return self.status != Status.NOT_STARTED


class ScenarioRecord(_Record):
    file: str | None = None
    requested: dict[str, Any] = Field(default_factory=dict)
    effective: dict[str, Any] = Field(default_factory=dict)


class SweepBook(_Record):
    """``perseus sweep``'s design and which points are committed (a point's JSON file exists)."""

    sampling: str
    seed: int | None = None
    levels: dict[str, Any] = Field(default_factory=dict)
    points: list[dict] = Field(default_factory=list)
    committed: dict[str, dict] = Field(default_factory=dict)
    resumed: list[dict] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)


class Manifest(_Record):
    perseus: str
    command: str = ""
    kind: CommandKind = CommandKind.RUN
    scenario: ScenarioRecord = Field(default_factory=ScenarioRecord)
    seed: int | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    host: dict[str, Any] = Field(default_factory=dict)
    gpus: list[dict] = Field(default_factory=list)
    gpu_note: str | None = None
    price: dict[str, Any] | None = None
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict)  # other instances [[deployments]] are priced as
    started: str = ""
    ended: str | None = None
    status: Status = Status.RUNNING
    deployments: dict[str, DeploymentRecord] = Field(default_factory=dict)
    load_workers: dict[str, Any] | None = None
    sweep: SweepBook | None = None
    plan: dict[str, Any] | None = None  # `perseus plan`'s settings (headroom, probe budget), checked on resume

    @model_validator(mode="before")
    @classmethod
    def _kinds_of_older_manifests(cls, data: Any) -> Any:
        """Older manifests did not record a deployment's kind: derive it from what they recorded."""
        if not isinstance(data, dict) or not isinstance(data.get("deployments"), dict):
            return data
        command = data.get("kind", CommandKind.RUN)
        tenants = [t.get("name") for t in ((data.get("scenario") or {}).get("effective") or {}).get("tenants", [])]
        for record in data["deployments"].values():
            if isinstance(record, dict) and "kind" not in record:
                record["kind"] = _derived_kind(record, command, tenants)
        return data

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def new(
        cls,
        *,
        kind: CommandKind = CommandKind.RUN,
        scenario_file: Path | None,
        requested: dict,
        effective: dict,
        deployments: list[Deployment],
        duration_s: float,
        price: dict | None,
        gpus: list[dict],
        prices: dict[str, dict] | None = None,
        gpu_note: str | None,
        command: str,
        versions: dict[str, str],
        host: dict,
        perseus_version: str,
    ) -> Manifest:
        manifest = cls(
            perseus=perseus_version,
            command=command,
            kind=kind,
            scenario=ScenarioRecord(
                file=None if scenario_file is None else str(scenario_file), requested=requested, effective=effective
            ),
            seed=effective.get("run", {}).get("seed"),
            versions=versions,
            host=host,
            gpus=gpus,
            gpu_note=gpu_note,
            price=price,
            prices=prices or {},
            started=results.utc_now(),
        )
        for deployment in deployments:
            manifest.add(deployment, duration_s)
        return manifest

    def add(self, deployment: Deployment, duration_s: float) -> DeploymentRecord:
        """The deployment's record, created "not started" if it is new."""
        if deployment.name not in self.deployments:
            self.deployments[deployment.name] = DeploymentRecord(
                tenants=list(deployment.tenants),
                duration_s=duration_s,
                kind=deployment.kind,
                base=deployment.base or deployment.name,
                trial=deployment.trial,
                strategy=deployment.strategy,
                replicas=deployment.replicas,
                instance=deployment.instance,
                scale=deployment.scale,
                server=deployment.server,
                layout=deployment.layout,
            )
        return self.deployments[deployment.name]

    def adopt(self, effective: dict, deployments: list[Deployment], duration_s: float) -> None:
        """A later stage of the same command (calibrate's utilisations) records its scenario and deployments."""
        self.scenario.effective = effective
        for deployment in deployments:
            self.add(deployment, duration_s)

    # -- a deployment's life ---------------------------------------------------------------------------
    def begin(
        self, deployment: Deployment, duration_s: float, models: dict[str, str] | None = None
    ) -> DeploymentRecord:
        """``models``: tenant -> the model it runs, where that is not the scenario's own (`perseus plan`'s variants)."""
        record = self.add(deployment, duration_s)
        record.status = Status.RUNNING
        record.models = models or None
        return record

    def interrupted(self, name: str) -> None:
        record = self.deployments[name]
        record.status, record.reason = Status.INTERRUPTED, INTERRUPTED_REASON

    def finish(self, name: str, **fields: Any) -> DeploymentRecord:
        """The deployment's outcome (status, times, requests, reason, ...); fields given as None are left unset."""
        record = self.deployments[name]
        for key, value in fields.items():
            setattr(record, key, value)
        return record

    def close(self, status: Status | None = None) -> Status:
        """The run is over: its status (from its deployments unless given) and end time."""
        self.status = self.overall_status() if status is None else status
        self.ended = results.utc_now()
        return self.status

    def reopen(self, at: str, command: str) -> None:
        """A resumed folder (``perseus sweep --out``) runs again."""
        if self.sweep is not None:
            self.sweep.resumed.append({"at": at, "command": command})
        self.status, self.ended = Status.RUNNING, None

    def overall_status(self) -> Status:
        statuses = [d.status for d in self.deployments.values()]
        if Status.INTERRUPTED in statuses or Status.RUNNING in statuses:
            return Status.INTERRUPTED
        if any(s != Status.COMPLETED for s in statuses):
            return Status.FAILED
        return Status.COMPLETED

    def machine_difference(self, other: Manifest) -> str | None:
        """What differs between the machine and software that wrote this manifest and ``other``'s, or None.

        Measurements from another host, CPU or GPU model, or another perseus, Triton or onnxruntime
        are not comparable, so a folder is never resumed across them (as pyperf refuses to merge runs
        whose metadata differ)."""
        checks = [
            ("host", self.host.get("hostname"), other.host.get("hostname")),
            ("CPU", self.host.get("cpu"), other.host.get("cpu")),
            ("GPU", [g.get("name") for g in self.gpus], [g.get("name") for g in other.gpus]),
            *((name, self.versions.get(name), other.versions.get(name)) for name in RESUME_VERSIONS),
        ]
        for what, mine, theirs in checks:
            if mine != theirs:
                return f"{what} {mine or 'none'} here, {theirs or 'none'} in the folder"
        return None

    def measured(self) -> dict[str, DeploymentRecord]:
        """The deployments that started, in run order."""
        return {name: d for name, d in self.deployments.items() if d.measured}

    # -- files -----------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        data = self.model_dump(mode="json")
        # A deployment's unset optional fields are left out, as earlier versions wrote them.
        data["deployments"] = {
            name: {k: v for k, v in record.items() if v is not None} for name, record in data["deployments"].items()
        }
        for optional in ("sweep", "plan"):
            if data.get(optional) is None:
                data.pop(optional, None)
        if data.get("load_workers") is None:
            data.pop("load_workers", None)
        return data

    def save(self, run_dir: Path) -> None:
        results.write_json_atomic(Path(run_dir) / results.MANIFEST, self.to_json())

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        """The folder's manifest; ValueError when the file is not a manifest of this format."""
        raw = json.loads((Path(run_dir) / results.MANIFEST).read_text(encoding="utf-8"))
        return cls.model_validate(raw)


def _derived_kind(record: dict, command: str, scenario_tenants: list[str]) -> DeploymentKind:
    """What an older manifest's deployment was, from its recorded strategy and tenants."""
    if record.get("strategy") == "embedded":
        return DeploymentKind.EMBEDDED
    if command == CommandKind.CAPACITY:
        return DeploymentKind.PROBE
    if command == CommandKind.SWEEP:
        return DeploymentKind.POINT
    if command == CommandKind.CALIBRATION:
        return DeploymentKind.CALIBRATION
    tenants = record.get("tenants", [])
    if len(tenants) == 1 and len(scenario_tenants) > 1:
        return DeploymentKind.SOLO
    if sorted(tenants) == sorted(scenario_tenants):
        return DeploymentKind.SHARED
    return DeploymentKind.GROUP
