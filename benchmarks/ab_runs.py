"""What the interleaved `perseus calibrate` A/B benchmarks (server_slice, calibration_stub) share: their result file."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def write_runs(out: Path, args, runs: list[dict]) -> None:
    """``runs`` with the machine and the arguments they ran with, as JSON in ``out``."""
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "loadavg_end": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    out.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    print(f"wrote {out}")
