"""Calibration references: Lindley on given arrivals (fixed and per-request service), the sampling band, the verdict."""

import math

import numpy as np
import pandas as pd
import pytest

from perseus.analysis.spans import request_id
from perseus.calibration import references
from perseus.calibration.analysis import (
    CONDITIONED,
    QS,
    TRACE_DRIVEN,
    client_share_ms,
    traced_parts,
    verdict_rows,
)
from perseus.calibration.theory import md1_percentiles


def loop_waits(arrivals, services):
    """Lindley's recursion written out, one customer at a time (the reference for the vectorised form)."""
    waits = [0.0]
    for n in range(1, len(arrivals)):
        waits.append(max(0.0, waits[-1] + services[n - 1] - (arrivals[n] - arrivals[n - 1])))
    return np.array(waits)


def test_hand_made_queue_with_per_request_service_times():
    # Arrive at 0, 1, 2, 10 s; services 3, 1, 2, 1 s. Customer 1 waits 3-1 = 2, customer 2 waits
    # 2+1-1 = 2, customer 3 finds the server idle (free at 6 s) and waits 0.
    arrivals = np.array([0.0, 1.0, 2.0, 10.0])
    services = np.array([3.0, 1.0, 2.0, 1.0])
    np.testing.assert_allclose(references.lindley_waits(arrivals, services), [0, 2, 2, 0])
    np.testing.assert_allclose(references.sojourns(arrivals, services), [3, 3, 4, 1])


def test_sojourns_serve_in_scheduled_order_whatever_the_record_order():
    arrivals = np.array([2.0, 0.0, 10.0, 1.0])
    services = np.array([2.0, 3.0, 1.0, 1.0])
    np.testing.assert_allclose(references.sojourns(arrivals, services), [4, 3, 1, 3])


def test_vectorised_recursion_equals_the_loop_for_random_service_times():
    rng = np.random.default_rng(5)
    arrivals = np.cumsum(rng.exponential(0.01, size=3000))
    services = rng.uniform(0.004, 0.012, size=3000)
    np.testing.assert_allclose(references.lindley_waits(arrivals, services), loop_waits(arrivals, services), atol=1e-12)


def test_stacked_queues_are_independent():
    rng = np.random.default_rng(6)
    arrivals = np.sort(rng.uniform(0, 10, size=(3, 500)), axis=1)
    stacked = references.lindley_waits(arrivals, 0.015)
    for row in range(3):
        np.testing.assert_allclose(stacked[row], loop_waits(arrivals[row], np.full(500, 0.015)), atol=1e-12)


def test_trace_driven_fills_untraced_requests_with_the_median_and_needs_one_trace():
    arrivals = np.array([0.0, 0.001, 0.002])
    measured = np.array([True, True, True])
    # The middle request is untraced: it gets the median (2 ms) of the traced 1 ms and 3 ms.
    services = np.array([0.001, np.nan, 0.003])
    got = references.trace_driven_percentiles(arrivals, services, measured, (50,))
    expected = references.sojourns(arrivals, np.array([0.001, 0.002, 0.003]))
    assert got[50] == pytest.approx(np.percentile(expected, 50) * 1e3)
    assert math.isnan(references.trace_driven_percentiles(arrivals, np.full(3, np.nan), measured, (50,))[50])


def test_trace_driven_queues_on_the_time_held_and_adds_the_time_beside_the_queue():
    # Two requests 1 ms apart; each holds the instance 4 ms (3 ms compute + 1 ms turnaround) and spends
    # 3 ms compute + 0.5 ms of the server's I/O outside the queue. The second waits 4 - 1 = 3 ms.
    arrivals, measured = np.array([0.0, 0.001]), np.array([True, True])
    got = references.trace_driven_percentiles(arrivals, np.full(2, 0.004), measured, (0, 100), np.full(2, 0.0035))
    assert got[0] == pytest.approx(3.5) and got[100] == pytest.approx(3.0 + 3.5)


def test_conditioned_counts_only_measured_requests_but_queues_warm_up_ones():
    # Two warm-up arrivals right before the measured one: it starts when both are done (18 ms) and
    # leaves at 28 ms.
    arrivals = np.array([-0.002, -0.001, 0.0])
    measured = np.array([False, False, True])
    got = references.conditioned_percentiles(arrivals, measured, 0.010, (50,))
    assert got == {50: pytest.approx(28.0)}


def test_the_band_covers_about_95_percent_of_fresh_runs():
    # Runs shaped like `perseus calibrate --quick` at rho 0.8 (5 ms, 160/s): the band from one seed
    # must hold each percentile of about 95% of runs drawn with another.
    service, rate, warmup_s, duration_s = 0.005, 160.0, 1.0, 4.0
    n_warm, n_meas = round(rate * warmup_s), round(rate * duration_s)
    band = references.sampling_band(service, n_warm, n_meas, warmup_s, duration_s, QS, seed=1)
    fresh = references.simulated_run_percentiles(
        service, n_warm, n_meas, warmup_s, duration_s, QS, 1000, np.random.default_rng(99)
    )
    for i, q in enumerate(QS):
        lo, hi = band[q]
        covered = np.mean((fresh[:, i] >= lo) & (fresh[:, i] <= hi))
        # 1000 fresh runs: binomial sd 0.7 points; the band's own estimate adds about 1.
        assert 0.91 <= covered <= 0.985, (q, covered)


def test_the_band_surrounds_the_exact_distribution_for_long_runs():
    service, rate = 0.010, 50.0
    band = references.sampling_band(service, 250, 3000, 5.0, 60.0, QS, runs=200, seed=2)
    exact = md1_percentiles(rate, service, QS)
    # At rho 0.5 the median waits 0 (the atom at 0 holds half the mass): theory and the band's low
    # end sit on the service time itself.
    assert exact[50] == pytest.approx(10.0) and band[50][0] == pytest.approx(10.0) and band[50][1] > 10.0
    for q in (90, 95, 99):
        assert band[q][0] < exact[q] < band[q][1]


def requests_frame(scheduled, service_s, lag_s=0.0002):
    """Records of an ideal FIFO server with a fixed service time: latency is exactly the Lindley sojourn."""
    latency = references.sojourns(scheduled, service_s) + lag_s
    return pd.DataFrame(
        {
            "scheduled_s": scheduled,
            "sent_s": scheduled + lag_s,
            "done_s": scheduled + latency,
            "latency_ms": latency * 1e3,
            "ok": True,
            "warmup": scheduled < 0,
        }
    )


def test_verdict_against_the_run_arrivals_passes_an_ideal_server_and_reports_all_references():
    rng = np.random.default_rng(3)
    rate, service = 80.0, 0.010
    scheduled = np.concatenate([np.sort(rng.uniform(-1, 0, 80)), np.sort(rng.uniform(0, 10, 800))])
    rows = verdict_rows("rho-080", 0.8, requests_frame(scheduled, service), 10.0, 1.0, rate, 10.0, 0.2)
    latency = [r for r in rows if r["check"].endswith("latency")]
    assert len(latency) == len(QS)
    for r in latency:
        assert r["reference"] == CONDITIONED
        assert r["expected"] == r["conditioned_ms"]
        assert abs(r["error"]) < 1e-6 and r["passed"]
        assert r["band_lo_ms"] < r["band_hi_ms"]
        assert math.isnan(r["trace_ms"])
        assert r["exact_ms"] > 0


def _traced(held_ms, compute_ms=None, io_ms=0.0, index=None) -> pd.DataFrame:
    held = np.asarray(held_ms, dtype=float)
    compute = held if compute_ms is None else np.asarray(compute_ms, dtype=float)
    return pd.DataFrame({"compute_ms": compute, "held_ms": held, "server_io_ms": io_ms}, index=index)


def test_verdict_is_against_the_trace_when_there_is_one():
    rng = np.random.default_rng(4)
    scheduled = np.sort(rng.uniform(0, 10, 500))
    services = rng.uniform(0.006, 0.014, 500)
    frame = requests_frame(scheduled, services, lag_s=0.0)
    traced = _traced(services * 1e3, index=frame.index)
    traced.iloc[::3] = np.nan  # every third untraced
    rows = verdict_rows("rho-050", 0.5, frame, 10.0, 0.0, 50.0, 10.0, 0.0, traced=traced)
    p50 = next(r for r in rows if r["check"] == "p50 latency")
    assert p50["reference"] == TRACE_DRIVEN
    assert p50["tolerance"] == 0.05
    assert p50["expected"] == p50["trace_ms"]
    assert abs(p50["trace_error"]) < 0.05


def test_the_trace_reference_adds_the_clients_share_and_the_lag_is_shown_apart():
    # An ideal server, every request sent 1 ms late: the trace-driven reference plus the client's share
    # (0.3 ms, not the whole 0.8 ms overhead) and the lag is exactly what was measured.
    rng = np.random.default_rng(6)
    scheduled, service, lag, io, client = np.sort(rng.uniform(0, 10, 400)), 0.010, 0.001, 0.0002, 0.0003
    frame = requests_frame(scheduled, service, lag_s=lag + io + client)
    frame["sent_s"] = frame["scheduled_s"] + lag
    traced = _traced(np.full(400, service * 1e3), io_ms=io * 1e3, index=frame.index)
    rows = verdict_rows("rho-040", 0.4, frame, 10.0, 0.0, 40.0, 10.0, 0.8, traced=traced, client_ms=client * 1e3)
    for r in (r for r in rows if r["check"].endswith("latency")):
        expected = r["trace_ms"]
        assert r["expected"] == expected and r["error"] > 0.02  # the lag, counted against the harness
        assert r["error"] == pytest.approx(lag * 1e3 / expected, rel=1e-6)
        assert abs(r["error_without_lag"]) < 1e-9  # and nothing else


def test_traced_parts_align_with_the_requests_and_count_the_turnaround_only_while_busy():
    requests = pd.DataFrame({"tenant": ["rho-050"] * 4, "scheduled_s": [0.5, 0.25, 1.75, 0.51]}, index=[10, 11, 12, 13])
    spans = pd.DataFrame(
        {
            "request_id": [request_id("rho-050", t) for t in (1.75, 0.5, 0.51)],
            "recv_start_s": [1.7501, 0.5001, 0.5101],
            "queue_start_s": [1.7502, 0.5002, 0.5102],  # 0.51 queued while 0.5 ran: a busy turnaround
            "compute_start_s": [2.0, 0.6, 0.6125],
            "compute_end_s": [2.01, 0.612, 0.6225],
            "send_end_s": [2.0103, 0.6123, 0.6228],
        }
    )
    parts = traced_parts(requests, spans)
    assert parts.index.tolist() == [10, 11, 12, 13] and parts.loc[11].isna().all()
    assert parts.loc[10, "compute_ms"] == pytest.approx(12.0)
    assert parts.loc[10, "held_ms"] == pytest.approx(12.5)  # 0.5 ms until the waiting 0.51 started
    # The others had no one waiting behind them: they are given the median busy turnaround, 0.5 ms.
    assert parts.loc[12, "held_ms"] == pytest.approx(10.5) and parts.loc[13, "held_ms"] == pytest.approx(10.5)
    assert parts.loc[10, "server_io_ms"] == pytest.approx(0.1 + 0.3)
    assert traced_parts(requests, None) is None


def test_the_clients_share_is_the_probes_round_trip_outside_the_server():
    spans = pd.DataFrame(
        {
            "warmup": [True, False, False, False],
            "ok": [True, True, True, False],
            "sent_s": [0.0, 1.0, 2.0, 3.0],
            "recv_start_s": [0.9, 1.0001, 2.0002, 3.5],
            "send_end_s": [0.95, 1.011, 2.011, 3.6],
            "done_s": [1.0, 1.0112, 2.0113, 4.0],
        }
    )
    assert client_share_ms(spans) == pytest.approx(0.4)  # median of 0.3 and 0.5; warm-up, failure out
    assert math.isnan(client_share_ms(None))


def test_a_run_with_no_traced_request_is_judged_on_its_arrivals():
    rng = np.random.default_rng(8)
    frame = requests_frame(np.sort(rng.uniform(0, 5, 200)), 0.010)
    untraced = _traced(np.full(len(frame), np.nan), index=frame.index)
    rows = verdict_rows("rho-050", 0.5, frame, 5.0, 0.0, 40.0, 10.0, 0.0, traced=untraced)
    latency = [r for r in rows if r["check"].endswith("latency")]
    assert {r["reference"] for r in latency} == {CONDITIONED}
    assert all(math.isnan(r["trace_ms"]) for r in latency)
