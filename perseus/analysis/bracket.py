"""The largest load scale that passes: bracketing, then bisection (pure; the probe is injected).

A probe at scale k runs the deployment with every rate multiplied by k and says whether the
measurement is VALID (which includes every SLA met). Capacity is assumed monotone: if k passes,
every smaller k passes. Bracketing doubles (or halves) k from the start value until the outcome
flips; bisection then narrows [pass, fail] until its width is within ``precision`` of the pass end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_PRECISION = 0.1  # 10%: each probe is a full measured run, so be frugal
MAX_PROBES = 14
MIN_SCALE = 1 / 64
MAX_SCALE = 64.0


@dataclass
class Search:
    capacity: float | None  # largest passing scale found; None when even MIN_SCALE fails
    upper: float | None  # smallest failing scale found; None when MAX_SCALE still passes
    probes: list[tuple[float, bool]] = field(default_factory=list)

    def record(self, k: float, ok: bool) -> None:
        """One probe's outcome: the largest passing scale and the smallest failing one so far."""
        self.probes.append((k, ok))
        if ok:
            self.capacity = k if self.capacity is None else max(self.capacity, k)
        else:
            self.upper = k if self.upper is None else min(self.upper, k)

    @property
    def converged(self) -> bool:
        return self.capacity is not None and self.upper is not None


@dataclass(frozen=True)
class Searched:
    """One capacity search: which tenants were scaled together, as what kind of deployment."""

    tenants: tuple[str, ...]
    kind: str  # perseus.kinds.DeploymentKind: "solo" (one tenant alone) or "shared" (every tenant together)
    search: Search


def find_capacity(
    probe: Callable[[float], bool],
    *,
    start: float = 1.0,
    precision: float = DEFAULT_PRECISION,
    max_probes: int = MAX_PROBES,
) -> Search:
    result = Search(capacity=None, upper=None)

    def run(k: float) -> bool:
        ok = probe(k)
        result.record(k, ok)
        return ok

    k = start
    if run(k):
        while len(result.probes) < max_probes and k < MAX_SCALE and run(k := min(k * 2, MAX_SCALE)):
            pass
    else:
        while len(result.probes) < max_probes and k > MIN_SCALE and not run(k := max(k / 2, MIN_SCALE)):
            pass
    while result.converged and len(result.probes) < max_probes:
        lo, hi = result.capacity, result.upper
        if (hi - lo) / lo <= precision:
            break
        run((lo + hi) / 2)
    return result
