"""Pretrained weights against random ones: real trials, in this process, of
Google's real MobileNet V2 module (../shared/models) and of its random-init
stand-in, on the embedded digits. (A file of its own: pytest-xdist's
--dist loadfile runs it beside test_trial.py, not after it.)"""

import pytest

from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
from tlbench.worker.trial import run_trial


@pytest.fixture(scope="module")
def real_and_standin_records(shared_module):
    """On the embedded digits with the cpu budget's data and linear probe:
    Google's real pretrained MobileNet V2 module in both modes, and the
    random-init stand-in in transfer. (One fine-tuning epoch at one learning rate and one
    short timed window: accuracy is what these tests are about.)"""
    from dataclasses import replace

    from tlbench.registry import get_backbone
    from tlbench.worker.weights import export_standin

    cpu = BUDGETS["cpu"]
    accuracy_only = replace(
        cpu,
        finetune_epochs=1,
        learning_rates={**cpu.learning_rates, "finetune": cpu.learning_rates["finetune"][:1]},
        warmup_steps=1,
        min_timed_steps=1,
        min_timed_seconds=0.0,
        timed_repeats=1,
    )
    standin = str(export_standin(get_backbone("mobilenet_v2_035_128")))
    # Random weights fine-tuned for one epoch stay near chance as their features do: their transfer trial says it.
    trials = [
        ("transfer", "local", shared_module),
        ("transfer", "standin", standin),
        ("finetune", "local", shared_module),
    ]
    return {
        (mode, kind): run_trial(
            TrialSpec("mobilenet_v2_035_128", mode, 16, "digits", 0, accuracy_only, ModuleSource(kind, module))
        )
        for mode, kind, module in trials
    }


def test_pretrained_features_beat_random_ones(real_and_standin_records):
    """With the L-BFGS probe, a random MobileNet's features separate the
    bundled digits too (test accuracy 0.898 here; the earlier Adam probe
    left them at chance, 0.10): pretrained ones do better, not by far."""
    real, standin = real_and_standin_records[("transfer", "local")], real_and_standin_records[("transfer", "standin")]
    assert real["status"] == standin["status"] == "ok", (real["error"], standin["error"])
    assert real["test_accuracy"] >= 0.90  # pretrained ImageNet features separate the digits
    assert real["val_accuracy"] > standin["val_accuracy"] and real["test_accuracy"] > standin["test_accuracy"]
    assert real["test_loss"] < standin["test_loss"]
    assert real["test_passes"] == standin["test_passes"] == 1


def test_the_real_tf1_module_fine_tunes_through_its_tf_keras_conversion(real_and_standin_records, shared_module):
    record = real_and_standin_records[("finetune", "local")]
    assert record["status"] == "ok" and record["test_accuracy"] >= 0.90, record["error"]
    assert record["test_passes"] == 1
    assert record["converted_from"] == shared_module  # the record names both modules
    assert "/converted/mobilenet_v2_035_128-" in record["module"] and record["module_format"] == "tf2-savedmodel"
    assert record["conversion_max_abs_difference"] <= 1e-4
    assert record["trainable_params"] > 1280 * 10 + 10  # the backbone trains too
    assert record["batch_norm_momentum"] == 0.997 and record["batch_norm"] == "frozen"
    assert record["batch_norm_momentum_note"].startswith("unused")  # frozen: the moving statistics stay
    assert real_and_standin_records[("transfer", "local")]["module_format"] == "tf1-hub"
