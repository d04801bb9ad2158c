"""Which telemetry reads of a deployment failed, counted per source instead of swallowed.

A failed scrape leaves a gap in telemetry.parquet, and Triton's counters are read as increases
between scrapes, so a gap at the window's edge silently shortens what the chargeback and the server
breakdown rest on. The count goes into the manifest (``failed_scrapes``) and deployments.csv, and
the report warns when it is not zero.
"""

from __future__ import annotations

from collections import Counter

from perseus.kinds import TelemetrySource

# The sources, by the names the manifest's failed_scrapes uses.
TRITON_METRICS = TelemetrySource.TRITON_METRICS
TRITON_STATS = TelemetrySource.TRITON_STATS
HOST = TelemetrySource.HOST
NVML = TelemetrySource.NVML
FRAMEWORK_METRICS = TelemetrySource.FRAMEWORK_METRICS


class ScrapeCounts:
    """Scrapes tried and failed per source, for one deployment."""

    def __init__(self) -> None:
        self.tried: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def take(self, source: str, rows: list[tuple] | None) -> list[tuple]:
        """The rows of one scrape (None: it failed, and is counted)."""
        self.tried[source] += 1
        if rows is None:
            self.failed[source] += 1
            return []
        return rows

    def add_failures(self, source: str, tried: int, failed: int) -> None:
        """Counts kept elsewhere (the GPU sampler's own thread)."""
        self.tried[source] += tried
        self.failed[source] += failed

    def failures(self) -> dict[str, int]:
        """Failed scrapes per source, only the sources that failed at least once."""
        return {str(source): n for source, n in sorted(self.failed.items()) if n}
