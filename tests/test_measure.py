"""The measurement code on cases with known answers."""

import numpy as np
import pytest

from tlbench.measure import ProcessPeakRss, TimingPlan, time_steps


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
    assert timing.step_seconds == (0.5, 0.5, 0.5, 0.5)
    assert timing.images_per_sec == pytest.approx(64.0)
    assert timing.summary()["step_seconds_median"] == 0.5


def test_timing_runs_until_both_minimums_are_met():
    clock = FakeClock([1.0] + [0.25] * 20)
    timing = time_steps(clock.step, TimingPlan(warmup_steps=1, min_steps=2, min_seconds=1.5), 8, clock=clock)
    assert len(timing.step_seconds) == 6  # 6 x 0.25 s reaches 1.5 s
    clock = FakeClock([1.0] * 20)
    timing = time_steps(clock.step, TimingPlan(warmup_steps=0, min_steps=3, min_seconds=0.5), 8, clock=clock)
    assert len(timing.step_seconds) == 3


def test_real_clock_measures_a_step_of_known_duration():
    import time

    timing = time_steps(lambda: time.sleep(0.02), TimingPlan(1, 5, 0.0), batch_size=10)
    assert timing.summary()["step_seconds_min"] >= 0.02
    assert 0.02 <= timing.summary()["step_seconds_median"] < 0.05
    assert 200 < timing.images_per_sec <= 500


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
