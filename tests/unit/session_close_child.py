"""Run by test_session_close.py in a fresh interpreter (the deployment session imports the load engine,
and Locust monkey-patches the standard library on import).

Runs the real ``run_deployment`` on a scenario whose opening is cut short in four ways, and prints, as
JSON per case: the outcome's status and reason, the record writers made, and the files left in the
deployment's folder. Two things are stand-ins, named here: ``server_for``, which raises instead of
starting a tritonserver (none is needed to reach the lines under test), and the record writers'
constructor, which makes real ``StreamWriter``s but raises Ctrl-C at the chosen step (and, in the
closing case, as the request recorder closes).
"""

from __future__ import annotations

# The session imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus import session as session_module  # isort: skip

import copy
import json
import signal
import sys
from pathlib import Path

from perseus import results
from perseus.errors import ServerError
from perseus.experiment import run_deployment
from perseus.plan import shared
from perseus.progress import Quiet
from perseus.records import StreamWriter
from perseus.scenario import parse
from tests.unit.test_scenario import BASE


class InterruptedClose(StreamWriter):
    """Ctrl-C as the request recorder closes, the first thing ``close`` writes."""

    def close(self):
        if self.path.name == results.REQUESTS:
            signal.raise_signal(signal.SIGINT)
        return super().close()


def _case(root: Path, interrupted_at: int | None) -> dict:
    """``interrupted_at``: Ctrl-C as the n-th step of open() begins (1 the recorder, 2 the telemetry
    writer, 3 the server). None: the server fails, and Ctrl-C comes while closing."""
    made: list[StreamWriter] = []

    def writer(path, schema):
        if len(made) + 1 == interrupted_at:
            raise KeyboardInterrupt
        made.append((InterruptedClose if interrupted_at is None else StreamWriter)(path, schema))
        return made[-1]

    def server_for(*args):
        if interrupted_at is None:
            raise ServerError("no server here")
        raise KeyboardInterrupt

    session_module.StreamWriter, session_module.server_for = writer, server_for
    scenario = parse(copy.deepcopy(BASE), "x.toml")
    outcome = run_deployment(scenario, shared(scenario), root / "models", root, gpu=False, progress=Quiet(), index=1)
    return {
        "status": str(outcome.status),
        "reason": outcome.reason,
        "ended": bool(outcome.ended),
        "requests": outcome.requests,
        "made": [w.path.name for w in made],
        "files": sorted(p.name for p in (root / "shared").iterdir()),
    }


def _guarded(root: Path, interrupted_at: int | None) -> dict:
    # Each case reports its own failure, so one that raises does not hide the others.
    try:
        return _case(root, interrupted_at)
    except BaseException as exc:
        return {"raised": f"{type(exc).__name__}: {exc}"}


def main(out: Path) -> None:
    cases = {"recorder": 1, "telemetry": 2, "server": 3, "closing": None}
    print(json.dumps({name: _guarded(out / name, at) for name, at in cases.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
