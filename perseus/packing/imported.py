"""`perseus plan --from DIR`: capacity measured elsewhere (other hardware, another instance type).

DIR is an earlier plan folder, for example one measured on a GPU instance through the remote launcher.
Its probes.csv holds every probe (one row per tenant) and its manifest.json the instance it was priced
as and the scenario it measured. Each group searched there becomes a measured option of this plan,
priced from today's catalog as that instance. Its capacity holds only for the same tenants, so every
tenant it measured must have the same SLA, load and server settings here, and serve one of the models
it accepts here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from perseus.analysis.bracket import Search
from perseus.errors import InputError
from perseus.manifest import CommandKind, Manifest
from perseus.packing.probes import holds
from perseus.packing.variants import Member, label
from perseus.pricing.catalog import Price
from perseus.scenario import Scenario, Tenant

FLAG = "--from"
PROBES_CSV = "probes.csv"
# What a tenant's capacity depends on besides its model: the fields that must be equal here and there.
SAME_FIELDS = ("sla_ms", "sla_percentile", "batch", "load", "server")


@dataclass(frozen=True)
class Imported:
    source: str  # the folder, as given
    instance: str
    usd_per_hour: float  # today's catalog price of one server of `instance`
    searches: dict[frozenset[str], Search]  # member labels (this plan's names) -> the search made there


def read(folder: Path, scenario: Scenario, table: Mapping[str, Member], price_of: Callable[[str], Price]) -> Imported:
    """The groups measured in ``folder``, in this plan's terms; one InputError naming the folder otherwise."""
    where = f"{folder}"
    if not Path(folder).is_dir():
        raise InputError(FLAG, None, f"{where}: no such folder")
    try:
        manifest = Manifest.load(Path(folder))
    except (OSError, ValueError):
        raise InputError(FLAG, None, f"{where}: not a perseus plan folder (no readable manifest.json)") from None
    if manifest.kind != CommandKind.PLAN or not (Path(folder) / PROBES_CSV).is_file():
        raise InputError(FLAG, None, f"{where}: not a `perseus plan` folder with a {PROBES_CSV}")
    if not manifest.price or "name" not in manifest.price:
        raise InputError(FLAG, None, f"{where}: its manifest names no instance type")
    instance = str(manifest.price["name"])
    theirs = {t["name"]: t for t in manifest.scenario.effective.get("tenants", [])}
    probes = pd.read_csv(Path(folder) / PROBES_CSV)
    missing = {"deployment", "tenant", "scale", "group"} - set(probes.columns)
    if missing:
        raise InputError(FLAG, None, f"{where}: {PROBES_CSV} lacks the columns {', '.join(sorted(missing))}")
    models = _models(probes, theirs, where)
    for tenant in sorted({t for _, t in models}):
        _same_tenant(tenant, scenario, theirs, models, where)
    return Imported(str(folder), instance, price_of(instance).usd_per_hour, _searches(probes, scenario, models))


def _models(probes: pd.DataFrame, theirs: Mapping[str, dict], where: str) -> dict[tuple[str, str], str]:
    """(probe, tenant) -> the model it served: probes.csv's model column, else the tenant's one model there."""
    out = {}
    for row in probes.to_dict("records"):
        tenant = str(row["tenant"])
        if tenant not in theirs:
            raise InputError(FLAG, None, f"{where}: {PROBES_CSV} names tenant {tenant!r}, not in its manifest")
        model = row.get("model")
        out[(str(row["deployment"]), tenant)] = str(model) if isinstance(model, str) else str(theirs[tenant]["model"])
    return out


def _same_tenant(
    tenant: str, scenario: Scenario, theirs: Mapping[str, dict], models: Mapping[tuple[str, str], str], where: str
) -> None:
    here = next((t for t in scenario.tenants if t.name == tenant), None)
    if here is None:
        raise InputError(FLAG, None, f"{where}: measured tenant {tenant!r}, which this scenario does not have")
    mine = here.model_dump(mode="json")
    try:  # through today's model: a key added since (with its default) is no difference
        there = Tenant.model_validate(theirs[tenant]).model_dump(mode="json")
    except ValidationError:
        raise InputError(FLAG, None, f"{where}: tenant {tenant!r} there is not a tenant this perseus reads") from None
    for name in SAME_FIELDS:
        if mine.get(name) != there.get(name):
            raise InputError(
                FLAG, None, f"{where}: tenant {tenant!r} has another {name} there; its capacity does not hold here"
            )
    for (_, t), model in models.items():
        if t == tenant and model not in here.variants:
            raise InputError(
                FLAG,
                None,
                f"{where}: tenant {tenant!r} was measured with model {model!r}, which it does not accept here",
            )


def _searches(
    probes: pd.DataFrame, scenario: Scenario, models: Mapping[tuple[str, str], str]
) -> dict[frozenset[str], Search]:
    """Each group's search, rebuilt from its probes: the largest scale that passed, the smallest that failed."""
    several = {t.name: len(t.variants) > 1 for t in scenario.tenants}
    rows_of: dict[str, list[dict]] = defaultdict(list)
    for row in probes.to_dict("records"):
        rows_of[str(row["deployment"])].append(row)
    out: dict[frozenset[str], Search] = {}
    for deployment, rows in rows_of.items():
        group = frozenset(label(r["tenant"], models[(deployment, r["tenant"])], several[r["tenant"]]) for r in rows)
        search = out.setdefault(group, Search(capacity=None, upper=None))
        search.record(float(rows[0]["scale"]), all(holds(r) for r in rows))
    return out
