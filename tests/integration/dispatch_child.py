"""Run by test_dispatch.py in a fresh interpreter (Locust monkey-patches the standard library on import).

Starts one real tritonserver with the calibration model at 0 ms, then sends the SAME seeded Poisson
schedule through the real ``LoadRun`` twice: with the spin-wait the engine used before, and with the
timerfd waiter it uses now. Prints, as JSON, the schedule and each run's recorded rows; and the
same tenant's request built for HTTP and for gRPC, with the schedule drawn after each.
"""

from __future__ import annotations

# LoadRun imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus.load.engine import LoadRun, TenantLoad  # isort: skip

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from perseus import results
from perseus.calibration import model as calibration_model
from perseus.load import arrivals, timing
from perseus.load.inputs import build_request
from perseus.records import StreamWriter
from perseus.scenario import LoadSpec
from perseus.server.local import LocalServer

WARMUP_S, DURATION_S = 0.5, 2.0
WAITERS = {"spin": timing.SpinWait, "timerfd": timing.TimerFdWait}


def one_run(url: str, waiter: str, tmp: Path) -> dict:
    rng = arrivals.tenant_rng(7, "t")
    request = build_request(url, calibration_model.NAME, 1, rng)
    schedule = arrivals.schedule(LoadSpec(arrival="poisson", rate=200.0), WARMUP_S, DURATION_S, rng)
    load = TenantLoad("t", calibration_model.NAME, waiter, request, "poisson", schedule=schedule)
    recorder = StreamWriter(tmp / f"{waiter}.parquet", results.REQUEST_SCHEMA)
    run = LoadRun(url, [load], recorder, warmup_s=WARMUP_S, duration_s=DURATION_S, request_timeout_s=10.0)
    run.new_waiter = WAITERS[waiter]
    try:
        run.run(recorder.flush, tick_s=0.25)
    finally:
        recorder.close()
    rows = pq.read_table(tmp / f"{waiter}.parquet").to_pydict()
    return {
        "schedule": np.asarray(schedule).tolist(),
        "waiter": type(WAITERS[waiter](0.0)).__name__,
        **{k: rows[k] for k in ("scheduled_s", "sent_s", "done_s", "ok", "warmup")},
    }


def protocols(url: str) -> dict:
    """The same tenant's request over HTTP and over gRPC, each from a fresh generator with the same seed,
    and the schedule drawn after it from each generator."""
    out = {}
    for protocol in ("http", "grpc"):
        rng = arrivals.tenant_rng(7, "t")
        request = build_request(url, calibration_model.NAME, 1, rng, protocol)
        schedule = arrivals.schedule(LoadSpec(arrival="poisson", rate=50.0), WARMUP_S, DURATION_S, rng)
        out[protocol] = {"body": request.body.hex(), "path": request.path, "schedule": schedule.tolist()}
    return out


def main() -> None:
    tmp = Path(sys.argv[1])
    repo = calibration_model.write_repository(tmp / "repo", 0.0)
    server = LocalServer(repo, tmp / "server.log")
    server.start()
    try:
        out = {name: one_run(server.url, name, tmp) for name in WAITERS}
        out["protocols"] = protocols(server.url)
    finally:
        server.stop()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
