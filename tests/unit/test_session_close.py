"""A deployment interrupted part-way through opening still closes: Ctrl-C can land between any two lines of
``DeploymentSession.open``, and ``close`` must then write what exists and raise nothing (a sweep hit
this: SIGINT after the request recorder was made and before the telemetry writer was)."""

from __future__ import annotations

import copy
import signal

import pytest

from perseus import results
from perseus import session as session_module
from perseus.errors import ServerError
from perseus.experiment import run_deployment
from perseus.manifest import Status
from perseus.plan import shared
from perseus.progress import Quiet
from perseus.records import StreamWriter
from perseus.scenario import parse
from tests.unit.test_scenario import BASE


@pytest.mark.parametrize("interrupted_at", [1, 2, 3], ids=["recorder", "telemetry", "server"])
def test_an_interrupt_anywhere_in_open_closes_cleanly(tmp_path, monkeypatch, interrupted_at):
    scenario = parse(copy.deepcopy(BASE), "x.toml")
    made: list[StreamWriter] = []

    def writer(path, schema):
        # Ctrl-C as the interrupted_at-th step of open() begins: the recorder, the telemetry, the server.
        if len(made) + 1 == interrupted_at:
            raise KeyboardInterrupt
        made.append(StreamWriter(path, schema))
        return made[-1]

    def server_for(*args):
        raise KeyboardInterrupt  # reached only once both writers exist

    monkeypatch.setattr(session_module, "StreamWriter", writer)
    monkeypatch.setattr(session_module, "server_for", server_for)
    outcome = run_deployment(
        scenario, shared(scenario), tmp_path / "models", tmp_path / "run", gpu=False, progress=Quiet(), index=1
    )
    assert outcome.status == Status.INTERRUPTED and outcome.ended
    assert len(made) == interrupted_at - 1
    dep_dir = tmp_path / "run" / "shared"
    # Whatever writer was made is closed into Parquet; none is left as a half-written stream.
    assert sorted(p.name for p in dep_dir.iterdir()) == sorted(w.path.name for w in made)
    assert outcome.requests == 0


def test_an_interrupt_while_closing_lets_the_close_finish(tmp_path, monkeypatch):
    scenario = parse(copy.deepcopy(BASE), "x.toml")

    class Interrupting(StreamWriter):
        def close(self):
            if self.path.name == results.REQUESTS:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C as the first writer closes
            return super().close()

    def server_for(*args):
        raise ServerError("no server here")  # the deployment fails in open(), then closes

    monkeypatch.setattr(session_module, "StreamWriter", Interrupting)
    monkeypatch.setattr(session_module, "server_for", server_for)
    outcome = run_deployment(
        scenario, shared(scenario), tmp_path / "models", tmp_path / "run", gpu=False, progress=Quiet(), index=1
    )
    # Both writers closed into Parquet, and the failure found first is what the outcome says.
    assert sorted(p.name for p in (tmp_path / "run" / "shared").iterdir()) == [results.REQUESTS, results.TELEMETRY]
    assert outcome.status == Status.FAILED and outcome.reason == "no server here"
