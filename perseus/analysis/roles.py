"""Which deployment plays which part in a comparison, read from the kinds the manifest recorded.

``deployments`` maps a deployment's name to its manifest record (``kind``, ``tenants``, ``base``), in
run order. Names are never parsed: a kind is recorded where the deployment is made (perseus/plan.py).
"""

from __future__ import annotations

from perseus.kinds import DeploymentKind


def first_of_kind(deployments: dict[str, dict], kind: DeploymentKind, tenant: str | None = None) -> str | None:
    """The first trial of the deployment of ``kind`` (holding ``tenant``, when given), or None."""
    for name, meta in deployments.items():
        first_trial = meta.get("base") in (None, name)
        if first_trial and meta.get("kind") == kind and (tenant is None or tenant in meta["tenants"]):
            return name
    return None
