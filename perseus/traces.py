"""Arrival traces: a CSV of timestamps, or per-minute counts in the Azure Functions 2019 format.

Azure Functions trace (Shahrad et al., "Serverless in the Wild", USENIX ATC 2020): one row per
function, columns HashOwner, HashApp, HashFunction, Trigger, then "1".."1440", the invocations in
each minute of a day. perseus sums the rows into one per-minute count series (the shape of the load)
and scales it to the tenant's mean rate.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from perseus.errors import InputError

AZURE_KEYS = ("HashOwner", "HashApp", "HashFunction", "Trigger")


def read_timestamps(path: Path) -> np.ndarray:
    """Arrival times (seconds) from the first column; a non-numeric first line is a header."""
    values = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or not row[0].strip():
                continue
            try:
                values.append(float(row[0]))
            except ValueError:
                if i == 0:
                    continue  # header
                raise ValueError(f"line {i + 1}: not a number: {row[0]!r}") from None
    times = np.sort(np.asarray(values, dtype=float))
    if len(times) < 2:
        raise ValueError("needs at least two timestamps")
    if not np.all(np.isfinite(times)) or times[0] < 0:
        raise ValueError("timestamps must be finite and >= 0")
    if times[-1] <= times[0]:
        raise ValueError("timestamps must span a positive time")
    return times - times[0]


def read_azure_counts(path: Path) -> np.ndarray:
    """Per-minute invocation counts summed over every function row."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        minutes = [c for c in (reader.fieldnames or []) if c not in AZURE_KEYS]
        if not minutes or not all(c.isdigit() for c in minutes):
            raise ValueError(
                "not the Azure Functions 2019 format (columns HashOwner, HashApp, HashFunction, Trigger, 1..N)"
            )
        minutes.sort(key=int)
        total = np.zeros(len(minutes))
        for i, row in enumerate(reader):
            try:
                total += np.array([float(row[m]) for m in minutes])
            except (TypeError, ValueError):
                raise ValueError(f"row {i + 2}: per-minute counts must be numbers") from None
    if total.sum() <= 0 or np.any(total < 0):
        raise ValueError("per-minute counts must be >= 0 and not all zero")
    return total


def check_trace(load, source: str, field: str) -> None:
    """Parse the trace once at load time, so a missing or malformed file is bad input (exit 2)."""
    path = Path(load.trace)
    if not path.is_file():
        raise InputError(source, field, f"no such trace file: {path}")
    try:
        read_azure_counts(path) if load.trace_format == "azure" else read_timestamps(path)
    except (ValueError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(source, field, f"malformed {load.trace_format} trace {path.name}: {exc}") from None
