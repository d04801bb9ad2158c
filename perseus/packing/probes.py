"""A plan's probes, as rows: the names they go by and whether a tenant held (pure).

A probe runs one group at one load scale; it leaves one row per tenant (probes.csv), and passes when
every tenant holds.
"""

from __future__ import annotations

from collections.abc import Iterable


def group_label(group: Iterable[str]) -> str:
    return "+".join(sorted(group))


def probe_name(group: Iterable[str], k: float) -> str:
    return f"probe-{group_label(group)}-x{k:.3f}"


def holds(row: dict) -> bool:
    """Does a tenant hold at a probe's scale? VALID; or too little traffic to gather the evidence within the
    probe's longest duration while not one of its requests failed or missed the SLA. A light tenant in a
    group probed far below its rate would otherwise veto every low scale for want of requests, not for
    any miss. The verification run still requires every tenant VALID."""
    if row["valid"]:
        return True
    clean = row["errors"] == 0 and row["requests"] > 0 and row["sla_latency_ms"] <= row["sla_ms"]
    return bool(clean and not row["evidence_ok"] and row["over_sla"] == 0)
