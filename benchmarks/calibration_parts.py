"""The parts of the trace-driven reference, read back from `perseus calibrate` run folders:

    .venv/bin/python -m benchmarks.calibration_parts FOLDER [FOLDER ...] [--out FILE]

For each traced deployment of each folder (``spans.parquet``): the median time a request held the
instance beyond its compute (the busy turnaround), the median server I/O, both as
``perseus.calibration.analysis.traced_parts`` computes them, and the client's share of the round trip
(``client_share_ms``; calibrate adds the probe's to the trace-driven reference). The raw folders are
not committed (3 MB a run); their verdict tables are. A reading, not a test.

And where each measured percentile's error against the trace-driven reference comes from
(``error_steps``): the error of the reference plus the dispatch lag (scheduled to sent) of each request,
then plus each request's client share beyond the probe's median (which the reference already holds),
then the measured latency itself (the rest: the server's own queueing beyond the reference's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from perseus import results
from perseus.analysis.spans import request_id
from perseus.calibration import analysis, references
from perseus.calibration.run import PROBE

QS = (50, 90, 95, 99)


def parts(folder: Path) -> dict:
    out: dict = {}
    probe = folder / PROBE / results.SPANS
    probe_client_ms = analysis.client_share_ms(pq.read_table(probe).to_pandas()) if probe.is_file() else np.nan
    for dep in sorted(p for p in folder.iterdir() if (p / results.SPANS).is_file()):
        requests = pq.read_table(dep / results.REQUESTS).to_pandas()
        spans = pq.read_table(dep / results.SPANS).to_pandas()
        measured = ~requests["warmup"] & requests["ok"]
        traced_all = analysis.traced_parts(requests, spans)
        traced = traced_all[measured]
        out[dep.name] = {
            "requests": int(measured.sum()),
            "traced": int(traced["held_ms"].notna().sum()),
            "turnaround_ms_median": float(np.nanmedian(traced["held_ms"] - traced["compute_ms"])),
            "server_io_ms_median": float(np.nanmedian(traced["server_io_ms"])),
            "client_share_ms": analysis.client_share_ms(spans),
        }
        if dep.name != PROBE and np.isfinite(probe_client_ms):
            out[dep.name]["error_steps"] = error_steps(requests, spans, traced_all, probe_client_ms)
    return out


def error_steps(requests: pd.DataFrame, spans: pd.DataFrame, traced: pd.DataFrame, client_ms: float) -> dict:
    """Each percentile's error (%) against the trace-driven reference as calibrate computes it, with the
    measured latency's parts added to that reference one at a time (the module docstring)."""
    reference = (
        references.trace_driven_latencies(
            requests["scheduled_s"].to_numpy(dtype=float),
            traced["held_ms"].to_numpy(dtype=float) / 1e3,
            (traced["compute_ms"] + traced["server_io_ms"]).to_numpy(dtype=float) / 1e3,
        )
        * 1e3
        + client_ms
    )
    ids = [request_id(t, s) for t, s in zip(requests["tenant"].astype(str), requests["scheduled_s"], strict=True)]
    mine = spans.set_index("request_id").reindex(ids)
    share = ((mine["recv_start_s"] - mine["sent_s"]) + (mine["done_s"] - mine["send_end_s"])).to_numpy() * 1e3
    lag = (requests["sent_s"] - requests["scheduled_s"]).to_numpy() * 1e3
    measured = (~requests["warmup"] & requests["ok"]).to_numpy()
    steps = {
        "reference": reference,
        "+ lag": reference + lag,
        "+ client share beyond the probe's": reference + lag + np.nan_to_num(share - client_ms),
        "measured": requests["latency_ms"].to_numpy(),
    }
    base = {q: float(np.percentile(reference[measured], q)) for q in QS}
    return {
        name: {f"p{q}": round(100 * (float(np.percentile(v[measured], q)) / base[q] - 1), 2) for q in QS}
        for name, v in steps.items()
    }


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
