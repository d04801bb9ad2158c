"""Load patterns beyond constant and Poisson: step, spike and trace schedules (pure, seeded)."""

from pathlib import Path

import numpy as np
import pytest

from perseus import traces
from perseus.errors import InputError
from perseus.load import arrivals
from perseus.scenario import LoadSpec, parse

ROOT = Path(__file__).resolve().parents[2]
AZURE = ROOT / "scenarios/traces/azure_functions_sample.csv"
STAMPS = ROOT / "scenarios/traces/bursty_timestamps.csv"


def rng(seed=1):
    return np.random.default_rng(seed)


def test_step_levels_hold_their_rates_and_repeat():
    spec = LoadSpec(arrival="step", steps=[[20, 50], [200, 50]])
    s = arrivals.schedule(spec, 10, 200, rng())
    assert np.all(np.diff(s) >= 0)
    assert 170 <= np.sum(s < 0) <= 230  # warm-up at the first level: 20/s x 10 s
    for lo, hi, rate in [(0, 50, 20), (50, 100, 200), (100, 150, 20), (150, 200, 200)]:
        n = np.sum((s >= lo) & (s < hi))
        assert n == pytest.approx(rate * 50, rel=0.03)


def test_spike_raises_the_rate_only_inside_its_window():
    spec = LoadSpec(arrival="spike", rate=50, spike_rate=500, spike_at_s=20, spike_s=10)
    s = arrivals.schedule(spec, 0, 60, rng())
    assert np.sum((s >= 20) & (s < 30)) == pytest.approx(5000, rel=0.03)
    assert np.sum(s < 20) + np.sum(s >= 30) == pytest.approx(50 * 50, rel=0.05)


def test_schedules_are_seed_deterministic():
    for spec in (
        LoadSpec(arrival="step", steps=[[10, 1], [30, 1]]),
        LoadSpec(arrival="spike", rate=10, spike_rate=90, spike_at_s=1, spike_s=1),
        LoadSpec(arrival="trace", rate=40, trace=str(AZURE), trace_format="azure"),
    ):
        a = arrivals.schedule(spec, 1, 10, rng(5))
        b = arrivals.schedule(spec, 1, 10, rng(5))
        c = arrivals.schedule(spec, 1, 10, rng(6))
        np.testing.assert_array_equal(a, b)
        assert len(a) != len(c) or not np.array_equal(a, c)


def test_azure_trace_is_scaled_to_the_mean_rate_and_keeps_its_shape():
    counts = traces.read_azure_counts(AZURE)
    assert len(counts) == 60
    spec = LoadSpec(arrival="trace", rate=50, trace=str(AZURE), trace_format="azure", trace_minute_s=2.0)
    s = arrivals.schedule(spec, 0, 120, rng())  # exactly one pass over the 60 trace minutes
    assert len(s) / 120 == pytest.approx(50, rel=0.03)
    per_minute = np.histogram(s, bins=60, range=(0, 120))[0]
    # The busiest and quietest trace minutes stay the busiest and quietest.
    assert np.corrcoef(per_minute, counts)[0, 1] > 0.9


def test_timestamp_trace_replays_its_gaps_at_the_target_rate():
    stamps = traces.read_timestamps(STAMPS)
    spec = LoadSpec(arrival="trace", rate=20, trace=str(STAMPS))
    s = arrivals.schedule(spec, 0, 100, rng())
    assert len(s) / 100 == pytest.approx(20, rel=0.05)
    # Same burstiness: the gaps' coefficient of variation is the trace's own (> 1 for a bursty trace).
    cv_trace = np.std(np.diff(stamps)) / np.mean(np.diff(stamps))
    cv_sched = np.std(np.diff(s)) / np.mean(np.diff(s))
    assert cv_trace > 1.2
    assert cv_sched == pytest.approx(cv_trace, rel=0.1)


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"arrival": "step"}, "needs steps"),
        ({"arrival": "step", "steps": [[10, 0]]}, "seconds > 0"),
        ({"arrival": "step", "steps": [[10, 1]], "rate": 3}, "not rate"),
        ({"arrival": "spike", "rate": 10, "spike_rate": 50}, "needs spike_rate, spike_at_s and spike_s"),
        ({"arrival": "poisson", "rate": 10, "spike_s": 1}, "only for arrival 'spike'"),
        ({"arrival": "trace", "rate": 10}, "needs trace"),
        ({"arrival": "poisson", "rate": 10, "trace": "x.csv"}, "only for arrival 'trace'"),
        ({"arrival": "poisson", "rate": 10, "steps": [[1, 1]]}, "only for arrival 'step'"),
    ],
)
def test_pattern_options_are_validated(load, message):
    data = {"name": "x", "tenants": [{"name": "a", "model": "m", "sla_ms": 10, "load": load}]}
    with pytest.raises(InputError, match=message):
        parse(data, "x.toml")


def test_missing_and_malformed_trace_files_are_bad_input(tmp_path):
    from perseus.scenario import load

    bad = tmp_path / "bad.csv"
    bad.write_text("t\n1.0\nabc\n")
    for trace, fmt, reason in [
        ("nope.csv", "timestamps", "no such trace file"),
        ("bad.csv", "timestamps", "not a number"),
    ]:
        scenario = tmp_path / "s.toml"
        scenario.write_text(
            'name = "x"\n[[tenants]]\nname = "a"\nmodel = "m"\nsla_ms = 10\n'
            f'[tenants.load]\narrival = "trace"\nrate = 5\ntrace = "{trace}"\ntrace_format = "{fmt}"\n'
        )
        with pytest.raises(InputError, match=reason) as info:
            load(scenario)
        assert "tenants[0].load.trace" in str(info.value)
    azure = tmp_path / "azure.csv"
    azure.write_text("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,3,x\n")
    with pytest.raises(ValueError, match="must be numbers"):
        traces.read_azure_counts(azure)
