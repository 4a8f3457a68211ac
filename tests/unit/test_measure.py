"""The measurement code on cases with known answers, without TensorFlow (its
matmul probe: tests/worker/test_peak_probe.py)."""

import statistics

import numpy as np
import pytest

from tlbench import stability
from tlbench.worker.measure import ProcessPeakRss, TimingPlan, time_steps, time_until_stable


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


def test_windows_record_their_spread_and_the_cpu_other_processes_took():
    import time

    # Real time passes (psutil counts CPU time in kernel ticks), the fake clock
    # gives the windows known lengths: 0.5 s and 1 s of 2 steps each.
    clock = FakeClock([0.25, 0.25, 0.5, 0.5])

    def step():
        time.sleep(0.25)
        clock.step()

    timing = time_steps(step, TimingPlan(0, 2, 0.0, repeats=2), 10, clock=clock)
    summary = timing.summary()
    rates = [40.0, 20.0]
    assert summary["images_per_sec_cv"] == pytest.approx(statistics.stdev(rates) / statistics.mean(rates))
    assert summary["window_steps_min"] == 2 and summary["attempts"] == 1
    assert all(w.other_cpu_share is not None and 0.0 <= w.other_cpu_share <= 1.0 for w in timing.windows)
    assert summary["other_cpu_share_max"] == max(w.other_cpu_share for w in timing.windows)
    assert summary["other_cpu_share_mean"] == pytest.approx(statistics.mean(w.other_cpu_share for w in timing.windows))


def test_an_unstable_pass_is_timed_again_and_the_steadier_attempt_kept():
    # Fake windows far shorter than a kernel tick: no CPU share, the spread decides.
    # Attempt 1: windows of 3 steps at 10 and 20 images/s (unstable); attempt 2: 20 and 21 (stable).
    windows = [1.0, 0.5, 0.5, 0.5 * 20 / 21]
    clock = FakeClock([0.0] + [seconds for seconds in windows for _ in range(3)])
    timing = time_until_stable(clock.step, TimingPlan(1, 3, 0.0, repeats=2), 10, clock=clock)
    assert timing.attempts == 2 and clock.calls == 1 + 12  # one warm-up step, not two
    assert [w.seconds for w in timing.windows] == pytest.approx([1.5, 1.5 * 20 / 21])
    assert timing.summary()["attempts"] == 2


def test_a_pass_that_stays_unstable_keeps_its_least_unstable_attempt():
    # Second windows at 40, 20 and 14.3 images/s against 10: all beyond 10 %, the last least.
    windows = [1.0, 0.25, 1.0, 0.5, 1.0, 0.7]
    clock = FakeClock([seconds for seconds in windows for _ in range(3)])
    timing = time_until_stable(clock.step, TimingPlan(0, 3, 0.0, repeats=2), 10, clock=clock)
    assert timing.attempts == stability.TIMING_ATTEMPTS == 3
    assert [w.seconds for w in timing.windows] == pytest.approx([3.0, 2.1])


def test_a_smoke_timing_is_not_timed_again():
    clock = FakeClock([1.0, 2.0, 3.0])
    timing = time_until_stable(clock.step, TimingPlan(1, 1, 0.0, repeats=1), 10, clock=clock)
    assert timing.attempts == 1 and stability.quality(timing.summary()) == stability.SMOKE
