"""The parts of the trace-driven reference, read back from `perseus calibrate` run folders:

    .venv/bin/python -m benchmarks.calibration_parts FOLDER [FOLDER ...] [--out FILE]

For each traced deployment of each folder (``spans.parquet``): the median time a request held the
instance beyond its compute (the busy turnaround), the median server I/O, both as
``perseus.calibration.analysis.traced_parts`` computes them, and the client's share of the round trip
(``client_share_ms``; calibrate adds the probe's to the trace-driven reference). The raw folders are
not committed (3 MB a run); their verdict tables are. A reading, not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from perseus import results
from perseus.calibration import analysis


def parts(folder: Path) -> dict:
    out: dict = {}
    for dep in sorted(p for p in folder.iterdir() if (p / results.SPANS).is_file()):
        requests = pq.read_table(dep / results.REQUESTS).to_pandas()
        spans = pq.read_table(dep / results.SPANS).to_pandas()
        measured = ~requests["warmup"] & requests["ok"]
        traced = analysis.traced_parts(requests, spans)[measured]
        out[dep.name] = {
            "requests": int(measured.sum()),
            "traced": int(traced["held_ms"].notna().sum()),
            "turnaround_ms_median": float(np.nanmedian(traced["held_ms"] - traced["compute_ms"])),
            "server_io_ms_median": float(np.nanmedian(traced["server_io_ms"])),
            "client_share_ms": analysis.client_share_ms(spans),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {str(f): parts(f) for f in args.folders}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
