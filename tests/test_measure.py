"""The measurement code on cases with known answers."""

import numpy as np
import pytest

from tlbench.worker.measure import ProcessPeakRss, TimingPlan, time_steps


class FakeClock:
    """A clock that each step advances by a known duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.durations[self.calls]
        self.calls += 1


def test_warmup_is_excluded_and_images_per_second_follow():
    clock = FakeClock([9.0, 7.0] + [0.5] * 10)  # two slow warm-up steps (tracing)
    timing = time_steps(clock.step, TimingPlan(warmup_steps=2, min_steps=4, min_seconds=0.0), 32, clock=clock)
    assert [(w.steps, w.seconds) for w in timing.windows] == [(4, 2.0)]
    assert timing.images_per_sec == pytest.approx(64.0)
    assert timing.summary()["step_seconds_median"] == 0.5


def test_timing_runs_until_both_minimums_are_met():
    clock = FakeClock([1.0] + [0.25] * 20)
    timing = time_steps(clock.step, TimingPlan(warmup_steps=1, min_steps=2, min_seconds=1.5), 8, clock=clock)
    assert timing.windows[0].steps == 6  # 6 x 0.25 s reaches 1.5 s
    clock = FakeClock([1.0] * 20)
    timing = time_steps(clock.step, TimingPlan(warmup_steps=0, min_steps=3, min_seconds=0.5), 8, clock=clock)
    assert timing.windows[0].steps == 3


def test_repeats_give_the_median_and_the_interquartile_range():
    # Five windows of 2 steps each; the steps of window k take k x 0.1 s.
    durations = [step for k in (1, 2, 3, 4, 5) for step in (0.1 * k, 0.1 * k)]
    clock = FakeClock(durations)
    timing = time_steps(clock.step, TimingPlan(0, 2, 0.0, repeats=5), 10, clock=clock)
    summary = timing.summary()
    assert summary["repeats"] == 5 and summary["timed_steps"] == 10
    rates = sorted(10 / (0.1 * k) for k in (1, 2, 3, 4, 5))  # 100, 50, 33.3, 25, 20 images/s
    assert timing.images_per_sec == pytest.approx(rates[2])
    assert summary["images_per_sec_q1"] == pytest.approx(rates[1])  # inclusive quartiles of 5 values
    assert summary["images_per_sec_q3"] == pytest.approx(rates[3])
    assert (summary["images_per_sec_min"], summary["images_per_sec_max"]) == pytest.approx((20.0, 100.0))
    assert summary["step_seconds_median"] == pytest.approx(0.3)
    assert (summary["step_seconds_q1"], summary["step_seconds_q3"]) == pytest.approx((0.2, 0.4))


def test_the_device_is_synchronised_around_every_window_not_between_steps():
    events = []
    clock = FakeClock([0.1] * 20)

    def step():
        events.append("step")
        clock.step()

    time_steps(step, TimingPlan(1, 2, 0.0, repeats=2), 4, sync=lambda: events.append("sync"), clock=clock)
    assert events == ["step", "sync", "step", "step", "sync", "sync", "step", "step", "sync"]


def test_real_clock_measures_a_step_of_known_duration():
    import time

    timing = time_steps(lambda: time.sleep(0.02), TimingPlan(1, 5, 0.0, repeats=3), batch_size=10)
    summary = timing.summary()
    assert summary["step_seconds_min"] >= 0.02
    assert 0.02 <= summary["step_seconds_median"] < 0.05
    assert 200 < timing.images_per_sec <= 500
    assert summary["images_per_sec_min"] <= summary["images_per_sec_q1"] <= timing.images_per_sec
    assert timing.images_per_sec <= summary["images_per_sec_q3"] <= summary["images_per_sec_max"]


def test_matmul_probe_measures_a_plausible_peak():
    from tlbench.worker.measure import matmul_peak_flops

    flops, method = matmul_peak_flops("CPU:0", seconds=0.1)
    assert 1e9 < flops < 1e14  # one core of any CPU of the last 20 years, up to a large server
    assert method.startswith("matmul-probe:CPU:0:float32:2048x2048")


def test_rss_high_water_mark_sees_a_fresh_allocation():
    probe = ProcessPeakRss()
    probe.reset()
    before = probe.peak_bytes()
    block = np.ones(300 * 1024 * 1024 // 8)  # 300 MiB, touched
    assert block.sum() > 0
    grown = probe.peak_bytes() - before
    assert grown >= 250 * 1024 * 1024
    del block
    if probe.resettable:  # the peak goes back down to what is resident now
        probe.reset()
        assert probe.peak_bytes() < before + 250 * 1024 * 1024
