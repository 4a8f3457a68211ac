import io
import time

import pytest
from rich.console import Console

from tlbench.driver.progress import GridProgress


def _text(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_counts_elapsed_and_estimate_of_the_rest():
    progress = GridProgress(total=8, parallel=2, started=100.0)
    assert "estimate to come" in _text(progress.render(now=130.0))
    progress.finished({"trial_id": "a", "status": "ok", "seconds": 60.0})
    progress.finished({"trial_id": "b", "status": "oom", "seconds": 20.0})
    # mean 40 s x 6 trials left / 2 at once = 120 s
    assert progress.remaining_seconds() == 120.0
    text = _text(progress.render(now=190.0))
    assert "2/8 done · 0 running · 1 failed · elapsed 0:01:30 · about 0:02:00 left" in text


def test_running_trials_show_where_they_run():
    progress = GridProgress(total=2, parallel=2)
    progress.running = {
        "resnet_v2_50-finetune-bs8-digits-seed0": {"node": "abc123def456ffff", "gpus": ["1"], "since": time.time() - 65}
    }
    text = _text(progress.render())
    assert "resnet_v2_50-finetune-bs8-digits-seed0" in text and "abc123def456" in text and "0:01:05" in text
    progress.finished({"trial_id": "resnet_v2_50-finetune-bs8-digits-seed0", "status": "ok", "seconds": 65})
    assert not progress.running


def test_the_live_view_counts_the_frozen_computations_and_the_trials_that_used_them():
    progress = GridProgress(total=4, parallel=1)
    shared = lambda computation: {"shared": True, "computation": computation}
    progress.finished({"trial_id": "a", "backbone": "resnet_v2_50", "status": "ok", "frozen_inputs": shared("c1")})
    progress.finished({"trial_id": "b", "backbone": "resnet_v2_50", "status": "ok", "frozen_inputs": shared("c1")})
    progress.finished(
        {"trial_id": "c", "backbone": "mobilenet_v2_035_128", "status": "ok", "frozen_inputs": shared("c2")}
    )
    progress.finished(
        {"trial_id": "d", "backbone": "mobilenet_v2_035_128", "status": "ok", "frozen_inputs": {"shared": False}}
    )
    text = str(progress.render())
    assert (
        "frozen inputs: 2 computation(s) for 2 backbone(s) (mobilenet_v2_035_128, resnet_v2_50), used by 3 trial(s)"
        in text
    )


def test_the_estimate_scales_the_trials_predicted_flops_by_what_the_finished_ones_took():
    """The longest trials run first: after them, the mean of the finished
    ones would overstate the rest. Each trial's seconds here are 5 + 1e-8 x
    its FLOPs, as a fixed part (loading, the timed passes' minimum) and a
    part that grows with the compute."""
    predicted = {"big": 3e9, "medium": 1e9, "small": 2e8, "tiny": 1e8}
    took = {trial: 5 + 1e-8 * flops for trial, flops in predicted.items()}
    progress = GridProgress(total=4, parallel=1, predicted=predicted)
    progress.finished({"trial_id": "big", "status": "ok", "seconds": took["big"]})
    # One trial: its seconds per FLOP, through the origin.
    assert progress.remaining_seconds() == pytest.approx(took["big"] / 3e9 * 1.3e9)
    progress.finished({"trial_id": "medium", "status": "ok", "seconds": took["medium"]})
    # Two: the fixed part and the rate, exactly; a running trial counts what it has left.
    assert progress.remaining_seconds() == pytest.approx(took["small"] + took["tiny"])
    progress.running = {"small": {"node": "n", "gpus": [], "since": 1000.0}}
    assert progress.remaining_seconds(wall=1003.0) == pytest.approx(took["small"] - 3 + took["tiny"])
    assert progress.remaining_seconds(wall=2000.0) == pytest.approx(took["tiny"])  # overdue: none left, not less


def test_a_fit_that_would_give_a_negative_part_goes_through_the_origin():
    progress = GridProgress(total=3, parallel=2, predicted={"a": 1e9, "b": 2e9, "c": 4e9})
    progress.finished({"trial_id": "a", "status": "ok", "seconds": 30.0})
    progress.finished({"trial_id": "b", "status": "ok", "seconds": 10.0})  # faster for more FLOPs: no line
    assert progress.remaining_seconds() == pytest.approx(40.0 / 3e9 * 4e9 / 2)


def test_trials_predicted_from_their_frozen_task_count_by_their_prediction_from_before_the_first_trial():
    """The predictions (estimate.trial_seconds) come as each backbone's
    frozen task ends: its trials count by them; a trial without one, by the
    FLOPs fit of the finished trials, once there is one."""
    progress = GridProgress(total=3, parallel=1, predicted={"a": 3e9, "b": 1e9, "c": 1e9})
    progress.seconds.update(a=200.0, b=40.0)
    assert progress.remaining_seconds() is None  # c: no prediction, no finished trial
    progress.seconds["c"] = 25.0
    assert progress.remaining_seconds() == pytest.approx(265.0)  # before any trial
    assert "about 0:04:25 left" in _text(progress.render())
    progress.running = {"a": {"node": "n", "gpus": [], "since": 1000.0}}
    assert progress.remaining_seconds(wall=1150.0) == pytest.approx(50.0 + 40.0 + 25.0)
    progress.finished({"trial_id": "a", "status": "ok", "seconds": 180.0})
    assert progress.remaining_seconds() == pytest.approx(65.0)  # what a took is not a prediction of b and c
    del progress.seconds["c"]  # say c's backbone had no frozen task: by the fit, through the origin
    assert progress.remaining_seconds() == pytest.approx(40.0 + 180.0 / 3e9 * 1e9)
