"""A trial's seconds predicted before it runs (driver/estimate.py): by hand,
from a speed and the protocol's steps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tlbench.driver.estimate import PEAK_PROBES, Speed, timed_pass_seconds, trial_seconds
from tlbench.plan import BUDGETS, PEAK_PROBE_SECONDS, ModuleSource, TrialSpec

SIZES = {"train": 100, "val": 50, "test": 40}
# 1 image/ms; budget: 2 warm-up steps, 3 windows of at least 3 steps and 1 s; 3 rates, 2 epochs at most.
BUDGET = replace(BUDGETS["cpu"], warmup_steps=2, min_timed_steps=3, min_timed_seconds=1.0, timed_repeats=3)
SPEED = Speed(images_per_sec=1000.0, setup_seconds=4.0, top_share={"last_block": 0.1})
FIXED = 4.0 + PEAK_PROBES * PEAK_PROBE_SECONDS


def _spec(mode: str, batch: int = 8) -> TrialSpec:
    return TrialSpec("mobilenet_v2_035_128", mode, batch, "digits", 0, BUDGET, ModuleSource("standin", "m"))


def test_a_timed_pass_is_its_untimed_steps_then_each_window_at_least_its_steps_and_its_seconds():
    assert timed_pass_seconds(BUDGET, 0.01) == pytest.approx(3 * 0.01 + 3 * 1.0)  # short steps: 1 s a window
    assert timed_pass_seconds(BUDGET, 2.0) == pytest.approx(3 * 2.0 + 3 * 3 * 2.0)  # long ones: 3 steps a window


def test_transfer_trains_nothing_but_its_timed_steps_on_top_of_the_fixed_part():
    # Training steps of 8 images x 1 forward (1 ms each), inference the same: 3 x 1 s windows each.
    timed = 2 * timed_pass_seconds(BUDGET, 0.008)
    assert trial_seconds(_spec("transfer"), SIZES, SPEED) == pytest.approx(FIXED + timed)


def test_fine_tuning_runs_every_epoch_the_search_may_then_one_test_pass():
    # Successive halving over 3 rates, 2 epochs: 3 first epochs, then 1 more. An epoch: 100 training
    # images at 3 forwards each, 50 validation images at 1; then the 40 test images.
    search = (4 * (3 * 100 + 50) + 40) / 1000.0
    timed = timed_pass_seconds(BUDGET, 8 * 3 / 1000) + timed_pass_seconds(BUDGET, 8 / 1000)
    assert trial_seconds(_spec("finetune"), SIZES, SPEED) == pytest.approx(FIXED + search + timed)
    # A carried rate (one): its first epoch and its second.
    carried = (2 * (3 * 100 + 50) + 40) / 1000.0
    assert trial_seconds(_spec("finetune"), SIZES, SPEED, rates=1) == pytest.approx(FIXED + carried + timed)


def test_a_mode_on_cached_activations_runs_the_top_alone_and_one_that_cant_be_cut_the_whole_backbone():
    timed = timed_pass_seconds(BUDGET, 8 * 1.2 / 1000) + timed_pass_seconds(BUDGET, 8 / 1000)
    on_top = (4 * (3 * 0.1 * 100 + 0.1 * 50) + 40) / 1000.0  # the test pass runs the whole backbone
    assert trial_seconds(_spec("last_block"), SIZES, SPEED) == pytest.approx(FIXED + on_top + timed)
    uncut = replace(SPEED, top_share={})
    on_images = (4 * (1.2 * 100 + 50) + 40) / 1000.0
    assert trial_seconds(_spec("last_block"), SIZES, uncut) == pytest.approx(FIXED + on_images + timed)


def test_no_speed_from_a_failed_or_older_computation():
    told = {"feature_images_per_sec": 250.0, "setup_seconds": 3.5, "top_share": {"last_block": 0.2}}
    assert Speed.of(told) == Speed(250.0, 3.5, {"last_block": 0.2})
    assert Speed.of({**told, "error": "ValueError: no"}) is None
    assert Speed.of({"feature_images_per_sec": 250.0}) is None  # no start-up measured
