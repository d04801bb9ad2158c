"""perseus vs perf_analyzer, side by side against ONE tritonserver.

    benchmarks/get_perf_analyzer.sh            # once: fetches perf_analyzer into benchmarks/.tools/
    .venv/bin/python benchmarks/vs_perf_analyzer.py [--quick] [--protocol grpc] [--closed-only]

Two comparisons, in one run, against the same server:

1. Closed loop at concurrency 1, 2, 4, 8 on a model that does no work ("null": the calibration model
   with service_ms=0). Throughput and exact p50/p99 for perseus (a closed-loop TenantLoad driven by
   LoadRun, as perseus/load/build.py build_load_run builds it) and for perf_analyzer (--concurrency-range c).
2. Open-loop Poisson at rho 0.5 and 0.8 on the calibration model (a busy-wait M/D/1 server, 10 ms by
   default). p50/p90/p95/p99 of perseus and of perf_analyzer (--request-distribution poisson, default
   --max-threads and --max-threads 64) vs M/D/1 theory with the measured service time, plus the fixed
   client overhead measured at concurrency 1 (as perseus.calibration.analysis.client_overhead_ms does),
   added equally to both tools.

``--protocol grpc`` runs both tools over Triton's gRPC protocol (perseus's ``load.protocol = "grpc"``,
perf_analyzer's ``-i grpc``); ``--closed-only`` skips the open-loop part.

Writes benchmarks/results/vs_perf_analyzer.json (or --out) and prints two Markdown tables. A benchmark,
not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

# LoadRun imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus.load.engine import LoadRun, TenantLoad  # isort: skip

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from perseus import results
from perseus.calibration import model as calibration_model
from perseus.calibration.theory import md1_percentiles
from perseus.load import arrivals
from perseus.load.inputs import build_request
from perseus.records import StreamWriter
from perseus.server.local import LocalServer

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
NULL = "null"
CAL = calibration_model.NAME
QS = (50, 90, 95, 99)
SEED = 1


@dataclass(frozen=True)
class Settings:
    concurrencies: tuple[int, ...] = (1, 2, 4, 8)
    rhos: tuple[float, ...] = (0.5, 0.8)
    service_ms: float = 10.0
    closed_warmup_s: float = 2.0
    closed_duration_s: float = 10.0
    open_warmup_s: float = 2.0
    open_duration_s: float = 30.0  # perf_analyzer measures 3 stable windows of pa_window_ms: same span
    probe_warmup_s: float = 1.0
    probe_duration_s: float = 5.0
    pa_window_ms: int = 10_000
    # perf_analyzer repeats windows until the last 3 agree within --stability-percentage (default 10%),
    # up to --max-trials, and reports nothing if they never do. On a shared 2-core machine they often
    # never do, so the check is switched off (999%): each run measures exactly 3 windows and reports
    # their merged statistics, i.e. 3 x pa_window_ms of measurement.
    pa_stability_percentage: int = 999
    pa_max_trials: int = 4


QUICK = Settings(
    concurrencies=(1, 4),
    closed_warmup_s=0.5,
    closed_duration_s=2.0,
    open_warmup_s=0.5,
    open_duration_s=4.0,
    probe_warmup_s=0.5,
    probe_duration_s=2.0,
    pa_window_ms=1_500,
)


# -- server ----------------------------------------------------------------------------------------
def write_repository(repo: Path, service_ms: float) -> Path:
    """The calibration model at ``service_ms``, plus the same model at 0 ms served as "null"."""
    calibration_model.write_repository(repo, service_ms)
    return calibration_model.write_repository(repo, 0.0, name=NULL)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback server we started
        return json.loads(resp.read())


class ServerStats:
    """Triton's per-model statistics (ns precision) and the CPU time of the server's process group."""

    def __init__(self, server: LocalServer):
        self.server = server

    def model(self, name: str) -> dict:
        stats = _get_json(f"{self.server.url}/v2/models/{name}/stats")["model_stats"][0]
        inf = stats["inference_stats"]
        return {
            "count": int(stats["inference_count"]),
            "compute_ns": sum(int(inf[k]["ns"]) for k in ("compute_input", "compute_infer", "compute_output")),
            "queue_ns": int(inf["queue"]["ns"]),
        }

    def cpu_s(self) -> float:
        """utime + stime of every process in the server's group (tritonserver and its backend stubs)."""
        pid = self.server.pid()
        if pid is None:
            return math.nan
        pgid = os.getpgid(pid)
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # fields after "comm)": state, ppid, pgrp, ..., utime (11), stime (12)
                total += int(fields[11]) + int(fields[12])
        return total / tick


class Meter:
    """Deltas over a span: Triton's counters, and CPU time of the server, this process, reaped children
    (perf_analyzer) and everything else on the machine (other users' work: the noise indicator)."""

    def __init__(self, stats: ServerStats, model: str):
        self.stats, self.model = stats, model

    def __enter__(self) -> Meter:
        self.m0 = self.stats.model(self.model)
        self.server0 = self.stats.cpu_s()
        self.self0 = time.process_time()
        self.child0 = _children_cpu_s()
        self.busy0 = _machine_busy_s()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self.wall0
        m1 = self.stats.model(self.model)
        self.count = m1["count"] - self.m0["count"]
        self.service_ms = (m1["compute_ns"] - self.m0["compute_ns"]) / self.count / 1e6 if self.count else math.nan
        self.queue_ms = (m1["queue_ns"] - self.m0["queue_ns"]) / self.count / 1e6 if self.count else math.nan
        self.server_cpu_s = self.stats.cpu_s() - self.server0
        self.self_cpu_s = time.process_time() - self.self0
        self.child_cpu_s = _children_cpu_s() - self.child0
        busy = _machine_busy_s() - self.busy0
        self.other_cpu_s = busy - self.server_cpu_s - self.self_cpu_s - self.child_cpu_s

    def summary(self, client_cpu_s: float) -> dict:
        per_req = 1e6 / self.count if self.count else math.nan
        return {
            "server_requests": self.count,
            "server_service_ms": self.service_ms,
            "server_queue_ms": self.queue_ms,
            "wall_s": self.wall_s,
            "client_cpu_s": client_cpu_s,
            "server_cpu_s": self.server_cpu_s,
            "client_cpu_us_per_request": client_cpu_s * per_req,
            "server_cpu_us_per_request": self.server_cpu_s * per_req,
            # Cores' worth of CPU used by processes that are neither the server nor the load generator.
            "other_cpu_cores": max(0.0, self.other_cpu_s / self.wall_s),
        }


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _machine_busy_s() -> float:
    """Non-idle CPU seconds of the whole machine, all cores (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


# -- perseus -----------------------------------------------------------------------------------------
def perseus_run(
    url: str,
    model: str,
    tenant: str,
    *,
    arrival: str,
    warmup_s: float,
    duration_s: float,
    concurrency: int = 1,
    rate: float | None = None,
    tmp: Path,
    protocol: str = "http",
    grpc_address: str = "",
):
    """One LoadRun with one tenant, built as perseus/load/build.py build_load_run builds it; returns the requests
    frame."""
    rng = arrivals.tenant_rng(SEED, tenant)
    load = TenantLoad(
        tenant=tenant,
        model=model,
        deployment=tenant,
        request=build_request(url, model, 1, rng, protocol),
        arrival=arrival,
        concurrency=concurrency,
    )
    if load.open_loop:
        gen = arrivals.GENERATORS[arrival]
        load.schedule = np.concatenate([gen(rate, -warmup_s, warmup_s, rng), gen(rate, 0.0, duration_s, rng)])
    path = tmp / f"{tenant}.parquet"
    recorder = StreamWriter(path, results.REQUEST_SCHEMA)
    run = LoadRun(
        url, [load], recorder, warmup_s=warmup_s, duration_s=duration_s, request_timeout_s=30.0,
        grpc_address=grpc_address,
    )  # fmt: skip
    try:
        run.run(recorder.flush, tick_s=0.5)
    finally:
        recorder.close()
    if run.abort_reason:
        raise RuntimeError(f"perseus run {tenant} aborted: {run.abort_reason}")
    return pq.read_table(path).to_pandas()


def perseus_summary(frame, duration_s: float) -> dict:
    measured = frame[~frame["warmup"]]
    ok = measured[measured["ok"]]
    lat = ok["latency_ms"].to_numpy()
    out = {
        "requests": len(measured),
        "ok": len(ok),
        "errors": int((~measured["ok"]).sum()),
        "throughput": len(ok) / duration_s,
        **{f"p{q}_ms": float(np.percentile(lat, q)) if len(lat) else math.nan for q in QS},
    }
    lag = (measured["sent_s"] - measured["scheduled_s"]).to_numpy() * 1e3
    out["lag_p99_ms"] = float(np.percentile(lag, 99)) if len(lag) else math.nan
    return out


# -- perf_analyzer -----------------------------------------------------------------------------------
def perf_analyzer_binary() -> Path:
    found = os.environ.get("PERF_ANALYZER") or (TOOLS / "bin" / "perf_analyzer")
    found = Path(found)
    if not found.exists():
        found = Path(shutil.which("perf_analyzer") or found)
    if not found.exists():
        sys.exit("perf_analyzer not found: run benchmarks/get_perf_analyzer.sh first (or set PERF_ANALYZER)")
    return found


def perf_analyzer(
    binary: Path, server_url: str, model: str, args: list[str], settings: Settings, tmp: Path, grpc_address: str = ""
):
    """Run perf_analyzer once; returns (row of its CSV as numbers, command, stdout tail). With a
    ``grpc_address`` it speaks gRPC to it (``-i grpc``), else HTTP to ``server_url``."""
    csv_path = tmp / f"pa-{model}-{time.monotonic_ns()}.csv"
    hostport = grpc_address or server_url.removeprefix("http://")
    cmd = [
        str(binary),
        "-m", model,
        "-u", hostport,
        "-i", "grpc" if grpc_address else "http",
        "--measurement-interval", str(settings.pa_window_ms),
        "--stability-percentage", str(settings.pa_stability_percentage),
        "--max-trials", str(settings.pa_max_trials),
        "-f", str(csv_path),
        *args,
    ]  # fmt: skip
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (str(TOOLS / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60 + 3 * settings.pa_max_trials * settings.pa_window_ms / 1e3,
    )
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
    if proc.returncode != 0 or not csv_path.exists():
        return {"failed": f"exit {proc.returncode}"}, cmd, tail
    lines = csv_path.read_text().strip().splitlines()
    header = lines[0].split(",")
    values = [float(v) for v in lines[1].split(",")]
    row = dict(zip(header, values, strict=False))
    out = {
        "throughput": row["Inferences/Second"],
        **{f"p{q}_ms": row[f"p{q} latency"] / 1e3 for q in QS},
        "csv": row,
    }
    return out, [Path(c).name if c == str(binary) else c for c in cmd], tail


# -- the benchmark -----------------------------------------------------------------------------------
def run(settings: Settings, out_path: Path, quick: bool, protocol: str = "http", closed_only: bool = False) -> dict:
    binary = perf_analyzer_binary()
    started = time.perf_counter()
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(
            [
                ".venv/bin/python",
                "benchmarks/vs_perf_analyzer.py",
                *(["--quick"] if quick else []),
                *(["--protocol", protocol] if protocol != "http" else []),
                *(["--closed-only"] if closed_only else []),
            ]
        ),
        "protocol": protocol,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
        },
        "settings": settings.__dict__,
    }
    with tempfile.TemporaryDirectory(prefix="perseus-vs-pa-") as tmp_name:
        tmp = Path(tmp_name)
        repo = write_repository(tmp / "repo", settings.service_ms)
        server = LocalServer(repo, tmp / "server.log")
        try:
            server.start()
            url = server.url
            stats = ServerStats(server)
            report["server"] = {"version": _get_json(f"{url}/v2").get("version")}
            grpc_address = server.grpc_address if protocol == "grpc" else ""
            report["closed"] = closed_loop(settings, url, stats, binary, tmp, grpc_address)
            if not closed_only:
                report["open"] = open_loop(settings, url, stats, binary, tmp)
        finally:
            server.stop()
    report["elapsed_s"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = os.getloadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return report


def closed_loop(
    settings: Settings, url: str, stats: ServerStats, binary: Path, tmp: Path, grpc_address: str = ""
) -> list[dict]:
    """Per concurrency: perseus, perf_analyzer, perseus again. The two perseus runs bracket the
    perf_analyzer run, so slow drifts in the machine's background load hit both tools alike; perseus's
    figures pool both runs (throughput: total measured ok / total measured time)."""
    import pandas as pd

    rows = []
    for c in settings.concurrencies:
        frames, meters = [], []
        for half in ("a", "b"):
            if half == "b":
                _log(f"closed loop, concurrency {c}: perf_analyzer")
                with Meter(stats, NULL) as m:
                    pa, cmd, tail = perf_analyzer(
                        binary, url, NULL, ["--concurrency-range", str(c)], settings, tmp, grpc_address
                    )
                pa.update(m.summary(m.child_cpu_s), command=cmd, output_tail=tail)
            _log(f"closed loop, concurrency {c}: perseus ({half})")
            with Meter(stats, NULL) as m:
                frames.append(
                    perseus_run(
                        url,
                        NULL,
                        f"closed-c{c}{half}",
                        arrival="closed",
                        concurrency=c,
                        warmup_s=settings.closed_warmup_s,
                        duration_s=settings.closed_duration_s,
                        tmp=tmp,
                        protocol="grpc" if grpc_address else "http",
                        grpc_address=grpc_address,
                    )
                )
            meters.append(m)
        p = perseus_summary(pd.concat(frames), 2 * settings.closed_duration_s)
        p["runs"] = [perseus_summary(f, settings.closed_duration_s)["throughput"] for f in frames]
        p.update(_pooled(meters, self_cpu=True))
        ratio = p["throughput"] / pa["throughput"] if "throughput" in pa else math.nan
        rows.append({"model": NULL, "concurrency": c, "perseus": p, "perf_analyzer": pa, "throughput_ratio": ratio})
        _log(
            f"  perseus {p['throughput']:.0f}/s (runs {p['runs'][0]:.0f}, {p['runs'][1]:.0f}), "
            f"perf_analyzer {pa.get('throughput', math.nan):.0f}/s: {ratio:.2f}x"
        )
    return rows


def _pooled(meters: list[Meter], self_cpu: bool) -> dict:
    count = sum(m.count for m in meters)
    wall = sum(m.wall_s for m in meters)
    client = sum(m.self_cpu_s if self_cpu else m.child_cpu_s for m in meters)
    server = sum(m.server_cpu_s for m in meters)
    return {
        "server_requests": count,
        "wall_s": wall,
        "client_cpu_s": client,
        "server_cpu_s": server,
        "client_cpu_us_per_request": client / count * 1e6,
        "server_cpu_us_per_request": server / count * 1e6,
        "other_cpu_cores": max(0.0, sum(m.other_cpu_s for m in meters) / wall),
    }


def open_loop(settings: Settings, url: str, stats: ServerStats, binary: Path, tmp: Path) -> dict:
    # Probe: closed loop, one user, on the calibration model: service time S from Triton's counters and
    # the fixed client overhead = median(sent -> done) - S (perseus.calibration.analysis.client_overhead_ms).
    _log("probe: concurrency 1 on the calibration model")
    with Meter(stats, CAL) as m:
        frame = perseus_run(
            url, CAL, "probe", arrival="closed", concurrency=1,
            warmup_s=settings.probe_warmup_s, duration_s=settings.probe_duration_s, tmp=tmp,
        )  # fmt: skip
    measured = frame[(~frame["warmup"]) & frame["ok"]]
    service_ms = m.service_ms
    overhead_ms = float(np.median(measured["service_ms"])) - service_ms
    probe = {"service_ms": service_ms, "overhead_ms": overhead_ms, "requests": len(measured)}
    _log(f"  S = {service_ms:.3f} ms, client overhead = {overhead_ms:.3f} ms")

    rows = []
    for rho in settings.rhos:
        rate = rho / (service_ms / 1e3)
        entry: dict = {"rho": rho, "rate": rate}
        _log(f"open loop, rho {rho} ({rate:.2f} req/s): perseus")
        with Meter(stats, CAL) as m:
            frame = perseus_run(
                url, CAL, f"poisson-rho{round(rho * 100):03d}", arrival="poisson", rate=rate,
                warmup_s=settings.open_warmup_s, duration_s=settings.open_duration_s, tmp=tmp,
            )  # fmt: skip
        entry["perseus"] = {**perseus_summary(frame, settings.open_duration_s), **m.summary(m.self_cpu_s)}
        for label, extra in (("perf_analyzer", []), ("perf_analyzer_64", ["--max-threads", "64"])):
            _log(f"open loop, rho {rho}: {label}")
            args = ["--request-rate-range", f"{rate:.4f}", "--request-distribution", "poisson", *extra]
            with Meter(stats, CAL) as m:
                pa, cmd, tail = perf_analyzer(binary, url, CAL, args, settings, tmp)
            entry[label] = {**pa, **m.summary(m.child_cpu_s), "command": cmd, "output_tail": tail}
        # Theory per run, with the service time the server delivered during that run (as perseus
        # calibrate does): on a shared machine other load stretches the busy-wait, and the queue
        # responds to the service time it actually got. The client overhead is the probe's, for all.
        for k in ("perseus", "perf_analyzer", "perf_analyzer_64"):
            r = entry[k]
            s_ms = r["server_service_ms"]
            r["rho_effective"] = rate * s_ms / 1e3
            if r["rho_effective"] < 1:
                theory = md1_percentiles(rate, s_ms / 1e3, QS, seed=SEED)
                r["theory"] = {f"p{q}_ms": theory[q] + overhead_ms for q in QS}
            else:
                r["theory"] = {f"p{q}_ms": math.inf for q in QS}
            r["error_vs_theory"] = {
                f"p{q}": (r[f"p{q}_ms"] / r["theory"][f"p{q}_ms"] - 1.0) if f"p{q}_ms" in r else math.nan for q in QS
            }
        # And the nominal view: theory at the probe's service time (what the rate was set for).
        theory = md1_percentiles(rate, service_ms / 1e3, QS, seed=SEED)
        entry["theory_nominal"] = {f"p{q}_ms": theory[q] + overhead_ms for q in QS}
        _log(
            "  p99: theory {:.1f}, perseus {:.1f}, perf_analyzer {:.1f}, perf_analyzer 64 threads {:.1f} ms".format(
                entry["theory_nominal"]["p99_ms"],
                *(entry[k].get("p99_ms", math.nan) for k in ("perseus", "perf_analyzer", "perf_analyzer_64")),
            )
        )
        rows.append(entry)
    return {"probe": probe, "runs": rows}


# -- output ------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    nan = math.nan
    lines = [
        "Closed loop, no-work model (`null`): throughput in infer/s, latency in ms; perseus pools two "
        "runs bracketing the perf_analyzer run.",
        "",
        "| concurrency | perseus infer/s | perf_analyzer infer/s | ratio | p50 perseus / PA | p99 perseus / PA "
        "| client CPU µs/req perseus / PA | server CPU µs/req perseus / PA | others' CPU (cores) perseus / PA |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["closed"]:
        p, a = r["perseus"], r["perf_analyzer"]
        lines.append(
            f"| {r['concurrency']} | {p['throughput']:,.0f} | {a.get('throughput', nan):,.0f} | "
            f"**{r['throughput_ratio']:.2f}x** | {p['p50_ms']:.2f} / {a.get('p50_ms', nan):.2f} | "
            f"{p['p99_ms']:.2f} / {a.get('p99_ms', nan):.2f} | "
            f"{p['client_cpu_us_per_request']:.0f} / {a['client_cpu_us_per_request']:.0f} | "
            f"{p['server_cpu_us_per_request']:.0f} / {a['server_cpu_us_per_request']:.0f} | "
            f"{p['other_cpu_cores']:.2f} / {a['other_cpu_cores']:.2f} |"
        )
    if "open" not in report:
        return "\n".join(lines) + "\n"
    probe = report["open"]["probe"]
    lines += [
        "",
        f"Open loop, Poisson, calibration model; latency in ms as *measured (theory)*. Probe: S = "
        f"{probe['service_ms']:.3f} ms, client overhead = {probe['overhead_ms']:.3f} ms (added to theory "
        "for every tool). Theory per run: M/D/1 with the service time S the server delivered during that "
        "run, plus the overhead.",
        "",
        "| rho | rate (req/s) | source | S in run (ms) | rho in run | achieved (req/s) | p50 | p90 | p95 | p99 "
        "| p99 error | others' CPU (cores) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "perseus": "perseus",
        "perf_analyzer": "perf_analyzer, default `--max-threads`",
        "perf_analyzer_64": "perf_analyzer, `--max-threads 64`",
    }
    for e in report["open"]["runs"]:
        for k, name in names.items():
            r = e[k]
            cells = " | ".join(f"{r.get(f'p{q}_ms', nan):.1f} ({r['theory'][f'p{q}_ms']:.1f})" for q in QS)
            lines.append(
                f"| {e['rho']} | {e['rate']:.2f} | {name} | {r['server_service_ms']:.2f} | {r['rho_effective']:.3f} | "
                f"{r.get('throughput', nan):.2f} | {cells} | **{r['error_vs_theory']['p99']:+.1%}** | "
                f"{r['other_cpu_cores']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    parser.add_argument("--service-ms", type=float, default=None, help="calibration service time (default 10)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results path")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http", help="Triton protocol of both tools")
    parser.add_argument("--closed-only", action="store_true", help="skip the open-loop comparison")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    if args.service_ms is not None:
        settings = Settings(**{**settings.__dict__, "service_ms": args.service_ms})
    default_out = HERE / "results" / ("vs_perf_analyzer-quick.json" if args.quick else "vs_perf_analyzer.json")
    report = run(settings, args.out or default_out, args.quick, args.protocol, args.closed_only)
    print(markdown(report))
    _log(f"done in {report['elapsed_s']:.0f} s; results in {args.out or default_out}")


if __name__ == "__main__":
    main()
