"""Closed loop on the no-work model: perseus's transports against perf_analyzer, interleaved, per request.

    PYTHONPATH=. .venv/bin/python -m benchmarks.transport [--quick] [--rounds 2] [--out FILE]

One local tritonserver serves the ``null`` model (the calibration model at 0 ms). At each concurrency
(1, 2, 4, 8) and in each round, in turn: perseus's closed loop (the real ``LoadRun``) with

- ``geventhttpclient``: the HTTP transport before this benchmark (kept here as ``GeventHttpClient``);
- ``wire``: the HTTP transport now (``perseus.load.wire.WireTransport``: the request's bytes built
  once, pooled keep-alive sockets);
- ``grpcio``: the gRPC transport before ``perseus.load.grpc_wire`` (grpcio in gevent mode, the prebuilt
  request bytes through a method without serialisers; kept here as ``GrpcioTransport``);
- ``grpc``: ``load.protocol = "grpc"`` now (``perseus.load.engine.GrpcTransport``: prebuilt HTTP/2
  frames on pooled connections);
- ``wire-gevent`` and ``grpc-gevent``: ``wire`` and ``grpc`` over gevent's cooperative socket, as the
  engine was before ``perseus.load.sockets.LoopSocket`` (``benchmarks/gevent_sockets.py``);

then perf_analyzer over HTTP and over gRPC (``-i grpc``) at the same concurrency. Round 2 runs the
perseus transports in reverse order. Per run: throughput, exact p50/p99, the client's CPU per request
(perseus: this process; perf_analyzer: the child) and the server's, and the CPU everything else on
the machine used (the noise). benchmarks/get_perf_analyzer.sh fetches perf_analyzer. A benchmark,
not a test.
"""

from __future__ import annotations

# LoadRun imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus.load.engine import LoadRun, TenantLoad  # isort: skip

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import grpc.experimental.gevent
import numpy as np
import pyarrow.parquet as pq
from geventhttpclient import HTTPClient

from benchmarks.gevent_sockets import gevent_sockets
from benchmarks.vs_perf_analyzer import NULL, Meter, ServerStats, Settings, perf_analyzer, perf_analyzer_binary
from benchmarks.vs_perf_analyzer import write_repository as write_null_repository
from perseus import results
from perseus.load import arrivals
from perseus.load.inputs import build_request
from perseus.records import StreamWriter
from perseus.server.local import LocalServer

CONCURRENCIES = (1, 2, 4, 8)
TRANSPORTS = ("geventhttpclient", "wire", "grpcio", "grpc")
ON_GEVENT_SOCKETS = ("wire-gevent", "grpc-gevent")
# grpcio's I/O runs in native threads that would block gevent's loop; in gevent mode it runs on the loop.
# It must be switched on before any channel exists.
grpc.experimental.gevent.init_gevent()


class GeventHttpClient:
    """The engine's HTTP transport before the wire transport: geventhttpclient's pooled client."""

    def __init__(self, url: str, request, connections: int, timeout_s: float):
        parts = urlsplit(url)
        self.request = request
        self.client = HTTPClient(
            parts.hostname, parts.port, concurrency=connections, connection_timeout=5.0, network_timeout=timeout_s
        )

    def send(self):
        req = self.request
        response = self.client.post(req.path, body=req.body, headers=req.headers)
        try:
            payload = response.read()
        finally:
            response.release()
        return response.status_code == 200, None, len(payload)

    def close(self) -> None:
        self.client.close()


class GrpcioTransport:
    """The engine's gRPC transport before ``perseus.load.grpc_wire``: grpcio, bytes in and out."""

    def __init__(self, address: str, request, connections: int, timeout_s: float):
        self.body, self.timeout_s = request.body, timeout_s
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        )
        self.call = self.channel.unary_unary(request.path)

    def send(self):
        try:
            payload = self.call(self.body, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            return False, str(exc)[:200], 0
        return True, None, len(payload)

    def close(self) -> None:
        self.channel.close()


def perseus_closed(server: LocalServer, transport: str, concurrency: int, warmup_s: float, duration_s: float, tmp):
    protocol = "grpc" if transport.startswith("grpc") else "http"
    request = build_request(server.url, NULL, 1, arrivals.tenant_rng(1, "null"), protocol)
    tenant = f"{transport}-c{concurrency}-{time.monotonic_ns()}"
    load = TenantLoad(tenant, NULL, tenant, request, "closed", concurrency=concurrency)
    if transport == "geventhttpclient":
        load.transport = lambda connections: GeventHttpClient(server.url, request, connections, 30.0)
    elif transport == "grpcio":
        load.transport = lambda connections: GrpcioTransport(server.grpc_address, request, connections, 30.0)
    path = tmp / f"{tenant}.parquet"
    recorder = StreamWriter(path, results.REQUEST_SCHEMA)
    sockets = gevent_sockets() if transport in ON_GEVENT_SOCKETS else contextlib.nullcontext()
    run = LoadRun(
        server.url,
        [load],
        recorder,
        warmup_s=warmup_s,
        duration_s=duration_s,
        request_timeout_s=30.0,
        grpc_address=server.grpc_address,
    )
    try:
        with sockets:
            run.run(recorder.flush, tick_s=0.5)
    finally:
        recorder.close()
    frame = pq.read_table(path).to_pandas()
    measured = frame[~frame["warmup"] & frame["ok"]]
    lat = measured["latency_ms"].to_numpy()
    return {
        "throughput": len(measured) / duration_s,
        "errors": int((~frame["ok"]).sum()),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| concurrency | client | round | infer/s | x perf_analyzer (same protocol) | p50 (ms) | p99 (ms) "
        "| client CPU µs/req | server CPU µs/req | others (cores) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r['client']} | {r['round'] + 1} | {r['throughput']:,.0f} | "
            f"{r.get('ratio', float('nan')):.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['client_cpu_us_per_request']:.0f} | {r['server_cpu_us_per_request']:.0f} | "
            f"{r['other_cpu_cores']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="perseus's, comma-separated")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transport.json")
    args = parser.parse_args()
    warmup_s, duration_s = (0.5, 2.0) if args.quick else (1.0, 4.0)
    pa_settings = Settings(pa_window_ms=1_500 if args.quick else 3_000, pa_max_trials=3)
    binary = perf_analyzer_binary()
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "PYTHONPATH=. .venv/bin/python -m benchmarks.transport"
        + (" --quick" if args.quick else "")
        + f" --rounds {args.rounds} --transports {args.transports}"
        + f" --concurrency {' '.join(map(str, args.concurrency))}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="perseus-transport-") as tmp_name:
        tmp = Path(tmp_name)
        server = LocalServer(write_null_repository(tmp / "repo", 0.0), tmp / "server.log")
        server.start()
        stats = ServerStats(server)
        try:
            transports = tuple(args.transports.split(","))
            for c in args.concurrency:
                for rnd in range(args.rounds):
                    pa = {}
                    for protocol, address in (("http", ""), ("grpc", server.grpc_address)):
                        with Meter(stats, NULL) as m:
                            out, cmd, _ = perf_analyzer(
                                binary, server.url, NULL, ["--concurrency-range", str(c)], pa_settings, tmp, address
                            )
                        pa[protocol] = {**out, **m.summary(m.child_cpu_s), "command": " ".join(cmd)}
                        row = {"concurrency": c, "client": f"perf_analyzer {protocol}", "round": rnd, **pa[protocol]}
                        row.pop("csv", None)
                        report["runs"].append(row)
                        print(table([row]).splitlines()[-1], flush=True)
                    for transport in transports if rnd % 2 == 0 else transports[::-1]:
                        with Meter(stats, NULL) as m:
                            out = perseus_closed(server, transport, c, warmup_s, duration_s, tmp)
                        row = {"concurrency": c, "client": transport, "round": rnd, **out, **m.summary(m.self_cpu_s)}
                        reference = pa["grpc" if transport.startswith("grpc") else "http"].get("throughput")
                        row["ratio"] = out["throughput"] / reference if reference else float("nan")
                        report["runs"].append(row)
                        print(table([row]).splitlines()[-1], flush=True)
        finally:
            server.stop()
    print(table(report["runs"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
