"""The NVML sampler against FakeNVML, a test double (this machine has no GPU)."""

import json
import time

import pytest

from perseus.telemetry.nvml import SLOW_EVERY, GpuSampler
from tests.doubles.fake_nvml import FakeNVML


def rows_by_metric(rows):
    out = {}
    for t, source, metric, labels, value in rows:
        assert source == "nvml"
        out.setdefault(metric, []).append((json.loads(labels), value, t))
    return out


def test_no_driver_gives_one_clear_reason_and_no_thread():
    sampler = GpuSampler(time.perf_counter, nvml=FakeNVML(fail_init=True))
    reason = sampler.start()
    assert reason.startswith("no NVIDIA GPU: GPU metrics not collected")
    sampler.stop()
    assert sampler.drain() == []


def test_device_metrics_units_and_energy_delta():
    fake = FakeNVML()
    sampler = GpuSampler(lambda: 1.5, nvml=fake, pids=lambda: {100})
    fake.nvmlInit()
    sampler._devices = sampler._discover()
    sampler.sample()
    sampler.samples = 0  # energy is read every SLOW_EVERY samples; force the next one
    sampler.sample()
    m = rows_by_metric(sampler.drain())
    assert [v for _, v, _ in m["power_w"]] == [312.5, 312.5]  # mW -> W
    # Energy is a delta since sampling began, not the driver's lifetime counter.
    assert [v for _, v, _ in m["energy_j"]] == [0.0, pytest.approx(31.25)]
    assert m["memory_total_bytes"][0][1] == 80 * 2**30
    assert m["gpu_util_percent"][0][0] == {"gpu": "0", "name": "NVIDIA H100 80GB HBM3"}
    assert {t for _, _, t in m["sm_clock_mhz"]} == {1.5}


def test_process_metrics_only_for_wanted_pids_and_not_found_means_zero():
    fake = FakeNVML()
    sampler = GpuSampler(time.perf_counter, nvml=fake, pids=lambda: {100})
    fake.nvmlInit()
    sampler._devices = sampler._discover()
    sampler.sample()  # utilisation sample available
    sampler.samples = 0  # per-process readings come every SLOW_EVERY samples; force the next one
    sampler.sample()  # NOT_FOUND: no new sample
    m = rows_by_metric(sampler.drain())
    assert {labels["pid"] for labels, _, _ in m["process_sm_util_percent"]} == {"100"}
    assert [v for _, v, _ in m["process_sm_util_percent"]] == [60.0, 0.0]
    assert [v for _, v, _ in m["process_memory_used_bytes"]] == [512 * 2**20] * 2


def test_slow_readings_once_every_slow_every_samples():
    fake = FakeNVML()
    sampler = GpuSampler(time.perf_counter, nvml=fake, pids=lambda: {100})
    fake.nvmlInit()
    sampler._devices = sampler._discover()
    for _ in range(2 * SLOW_EVERY):
        sampler.sample()
    m = rows_by_metric(sampler.drain())
    assert len(m["power_w"]) == 2 * SLOW_EVERY
    assert len(m["sm_clock_mhz"]) == len(m["process_sm_util_percent"]) == len(m["energy_j"]) == 2


def test_mig_devices_are_sampled_and_unsupported_reads_skipped():
    fake = FakeNVML(mig=2)
    sampler = GpuSampler(time.perf_counter, nvml=fake)
    fake.nvmlInit()
    sampler._devices = sampler._discover()
    assert [labels for labels, _ in sampler._devices][1:] == [
        {"gpu": "0", "mig": "0", "name": "MIG 1g.10gb"},
        {"gpu": "0", "mig": "1", "name": "MIG 1g.10gb"},
    ]
    sampler.sample()
    m = rows_by_metric(sampler.drain())
    assert len(m["memory_used_bytes"]) == 3
    assert len(m["power_w"]) == 1  # MIG instances have no power reading
    assert sampler.failures == 0  # a reading the device never supported is not a failed scrape


def test_a_reading_that_worked_then_failed_is_counted():
    fake = FakeNVML()
    sampler = GpuSampler(time.perf_counter, nvml=fake)
    fake.nvmlInit()
    sampler._devices = sampler._discover()
    sampler.sample()
    fake.nvmlDeviceGetPowerUsage = lambda h: (_ for _ in ()).throw(fake.NVMLError("GPU is lost"))
    sampler.sample()
    sampler.sample()
    assert sampler.failures == 2
    assert len(rows_by_metric(sampler.drain())["power_w"]) == 1


def test_thread_samples_at_its_period():
    fake = FakeNVML()
    sampler = GpuSampler(time.perf_counter, period_s=0.02, nvml=fake)
    assert sampler.start() is None
    time.sleep(0.25)
    sampler.stop()
    assert 6 <= sampler.samples <= 16
    assert not fake.initialised
    assert len(rows_by_metric(sampler.drain())["power_w"]) == sampler.samples
