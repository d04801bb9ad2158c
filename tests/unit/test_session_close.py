"""A deployment cut short while opening, or while closing, still closes: Ctrl-C can land between any two
lines of ``DeploymentSession.open``, and ``close`` must then write what exists and raise nothing (a sweep
hit this in CI: SIGINT after the request recorder was made and before the telemetry writer was). A
first Ctrl-C during ``close`` lets it finish. The cases run in session_close_child.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from perseus import results
from perseus.manifest import Status
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("session-close")
    child = [sys.executable, "-m", "tests.unit.session_close_child", str(out)]
    done = subprocess.run(child, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case, made", [("recorder", 0), ("telemetry", 1), ("server", 2)])
def test_an_interrupt_anywhere_in_open_closes_what_exists(cases, case, made):
    outcome = cases[case]
    assert "raised" not in outcome, outcome
    assert outcome["status"] == Status.INTERRUPTED and outcome["ended"] and outcome["requests"] == 0
    assert len(outcome["made"]) == made
    # Every writer made is closed into Parquet; none is left as a half-written stream.
    assert outcome["files"] == sorted(outcome["made"])


def test_an_interrupt_while_closing_lets_the_close_finish(cases):
    outcome = cases["closing"]
    assert "raised" not in outcome, outcome
    # Both writers closed into Parquet, and the failure found first is what the outcome says.
    assert outcome["files"] == sorted([results.REQUESTS, results.TELEMETRY])
    assert outcome["status"] == Status.FAILED and outcome["reason"] == "no server here"
