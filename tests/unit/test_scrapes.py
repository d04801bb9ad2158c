"""Failed telemetry scrapes are counted, not swallowed: the readers say None, the counter keeps the tally,
and the summary turns a non-zero tally into a column and a warning."""

import os
import socket
import subprocess
import sys

import pandas as pd

from perseus.analysis.cost import EXECUTION, PER_REQUEST
from perseus.analysis.summary import counter_notes, scrape_notes
from perseus.telemetry import scrapes, triton
from perseus.telemetry.host import ProcessSampler


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then freed): connecting is refused, for real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_triton_readers_say_none_when_the_endpoint_refuses_and_empty_when_there_is_none():
    port = refused_port()
    assert triton.sample_rows(f"http://127.0.0.1:{port}/metrics", 1.0) is None
    assert triton.stats_rows(f"http://127.0.0.1:{port}", 1.0) is None
    # No URL (a remote server without metrics, an embedded deployment): nothing tried, nothing failed.
    assert triton.sample_rows("", 1.0) == [] and triton.stats_rows("", 1.0) == []


def test_host_sampler_of_a_process_that_ended_says_none():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert ProcessSampler(child.pid, "server").rows(1.0) is None
    assert ProcessSampler(os.getpid(), "loadgen").rows(1.0) is not None


def test_counts_per_source():
    counts = scrapes.ScrapeCounts()
    assert counts.take(scrapes.TRITON_METRICS, None) == []
    assert counts.take(scrapes.TRITON_METRICS, [("row",)]) == [("row",)]
    assert counts.take(scrapes.TRITON_STATS, []) == []  # answered, with nothing in it: not a failure
    counts.add_failures(scrapes.NVML, tried=10, failed=0)
    assert counts.failures() == {"triton_metrics": 1}
    assert counts.tried[scrapes.TRITON_METRICS] == 2 and counts.tried[scrapes.NVML] == 10


def test_scrape_notes_name_the_sources_and_the_figures_they_back():
    notes = scrape_notes(
        {
            "shared": {"failed_scrapes": {"triton_metrics": 3, "triton_stats": 2}},
            "solo-a": {"failed_scrapes": None},
            "solo-b": {},
        }
    )
    assert notes == [
        "deployment shared: 5 telemetry scrapes failed (Triton /metrics 3, the statistics API 2): "
        "the server breakdown (server.csv), the chargeback and the busy fraction rest on missing scrapes"
    ]


def test_a_chargeback_on_per_request_counters_is_said():
    counters = [PER_REQUEST, PER_REQUEST, EXECUTION]
    charge = pd.DataFrame({"deployment": ["shared", "shared", "g2"], "compute_counter": counters})
    (note,) = counter_notes(charge)
    assert note.startswith("deployment shared: the statistics API's execution counters are missing")
