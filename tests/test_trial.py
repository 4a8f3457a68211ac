"""Real trials, in this process, on real modules and the embedded data."""

import pytest

from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
from tlbench.trial import _is_out_of_memory, run_trial

REQUIRED = (
    "trial_id",
    "backbone",
    "mode",
    "batch_size",
    "dataset",
    "status",
    "error",
    "weights",
    "device",
    "host",
    "test_accuracy",
    "val_accuracy",
    "train_images_per_sec",
    "infer_images_per_sec",
    "peak_memory_bytes",
    "seconds",
)


def _spec(mode, module, budget="quick", batch_size=16, backbone="mobilenet_v2_035_128"):
    return TrialSpec(backbone, mode, batch_size, "digits", 0, BUDGETS[budget], ModuleSource("local", module))


@pytest.fixture(scope="module")
def tiny_records(tiny_module):
    return {mode: run_trial(_spec(mode, tiny_module)) for mode in ("transfer", "finetune")}


@pytest.mark.parametrize("mode", ["transfer", "finetune"])
def test_a_trial_of_each_mode_gives_a_complete_record(tiny_records, tiny_module, mode):
    record = tiny_records[mode]
    assert record["status"] == "ok", record["error"]
    assert set(REQUIRED) <= set(record) and record["error"] is None
    assert record["trial_id"] == f"mobilenet_v2_035_128-{mode}-bs16-digits-seed0"
    assert record["weights"] == f"local:{tiny_module}" and record["module_format"] == "tf2-savedmodel"
    assert record["device"].startswith("CPU:") and record["host"]
    for key in ("test_accuracy", "val_accuracy", "train_accuracy"):
        assert 0.0 <= record[key] <= 1.0
    assert record["train_images_per_sec"] > 0 and record["infer_images_per_sec"] > 0
    assert record["peak_memory_bytes"] > 0 and record["seconds"] > 0
    assert record["split_sizes"] == {"train": 16, "val": 10, "test": 10}
    assert [c["learning_rate"] for c in record["lr_search"]] == list(BUDGETS["quick"].learning_rates[mode])
    assert record["learning_rate"] in BUDGETS["quick"].learning_rates[mode]
    assert record["train_timing"]["timed_steps"] >= BUDGETS["quick"].min_timed_steps


def test_only_finetune_trains_the_backbone(tiny_records):
    transfer, finetune = tiny_records["transfer"], tiny_records["finetune"]
    assert transfer["trainable_params"] == 16 * 10 + 10  # the Dense head alone
    assert finetune["trainable_params"] > transfer["trainable_params"]
    assert finetune["total_params"] == transfer["total_params"]


def test_finetune_needs_more_memory_than_transfer_at_the_same_batch(tiny_records):
    # What a step adds to what is resident: these trials share one process,
    # so the absolute peaks also hold what earlier tests left behind.
    assert tiny_records["finetune"]["activation_memory_bytes"] > tiny_records["transfer"]["activation_memory_bytes"]


def test_the_real_tf1_module_reaches_real_accuracy_in_transfer(shared_module):
    record = run_trial(_spec("transfer", shared_module, budget="cpu"))
    assert record["status"] == "ok", record["error"]
    assert record["module_format"] == "tf1-hub" and record["feature_dim"] == 1280
    assert record["test_accuracy"] >= 0.85  # pretrained ImageNet features separate the digits


def test_the_real_tf1_module_fine_tunes_through_its_tf_keras_conversion(shared_module):
    record = run_trial(_spec("finetune", shared_module))
    assert record["status"] == "ok", record["error"]
    assert record["converted_from"] == shared_module  # the record names both modules
    assert "/converted/mobilenet_v2_035_128-" in record["module"] and record["module_format"] == "tf2-savedmodel"
    assert record["conversion_max_abs_difference"] <= 1e-4
    assert record["trainable_params"] > 1280 * 10 + 10  # the backbone trains too


def test_a_module_that_is_not_a_feature_vector_is_an_error(tmp_path):
    from modules import save_spatial_module

    record = run_trial(_spec("transfer", save_spatial_module(tmp_path / "spatial")))
    assert record["status"] == "error" and "feature-vector module" in record["error"]


def test_out_of_memory_is_told_apart_from_other_failures():
    import tensorflow as tf

    assert _is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert _is_out_of_memory(MemoryError())
    assert not _is_out_of_memory(ValueError("bad"))


def test_the_learning_rate_is_chosen_on_validation(tiny_records):
    for record in tiny_records.values():
        best = max(record["lr_search"], key=lambda c: (c["val_accuracy"], -c["val_loss"]))
        assert record["learning_rate"] == best["learning_rate"]
        assert record["val_accuracy"] == best["val_accuracy"] and record["val_loss"] == best["val_loss"]


@pytest.mark.parametrize("mode", ["transfer", "finetune"])
def test_memory_is_measured_against_a_baseline_and_predicted_from_the_graph(tiny_records, mode):
    record = tiny_records[mode]
    assert record["memory_method"] in ("tf-allocator:CPU:0", "rss-hwm", "rss-hwm-since-start")
    assert 0 < record["baseline_memory_bytes"] <= record["peak_memory_bytes"]
    assert record["activation_memory_bytes"] == record["peak_memory_bytes"] - record["baseline_memory_bytes"]
    assert record["prediction_method"] == "gradient-graph"
    per_image, per_batch = (
        record["predicted_activation_bytes_per_image"],
        record["predicted_activation_bytes_per_batch"],
    )
    assert record["predicted_activation_bytes"] == 16 * per_image + per_batch
    assert record["gradient_bytes"] == 4 * record["trainable_params"]  # float32 gradients
    assert record["optimizer_slot_bytes"] == 2 * record["gradient_bytes"]  # Adam: m and v


def test_finetune_keeps_activations_transfer_keeps_the_feature_vector(tiny_records):
    transfer, finetune = tiny_records["transfer"], tiny_records["finetune"]
    assert transfer["predicted_activation_bytes_per_image"] == 16 * 4  # the head's float32 input
    assert finetune["predicted_activation_bytes_per_image"] > 10 * transfer["predicted_activation_bytes_per_image"]
    assert finetune["activation_memory_bytes"] > transfer["activation_memory_bytes"]


def test_flops_and_model_flop_utilisation(tiny_records):
    transfer, finetune = tiny_records["transfer"], tiny_records["finetune"]
    assert transfer["forward_flops_per_image"] == finetune["forward_flops_per_image"] > 0
    head = 2 * 16 * 10 + 10  # the Dense head: matmul and bias
    assert transfer["train_flops_per_image"] == transfer["forward_flops_per_image"] + 2 * head
    assert finetune["train_flops_per_image"] == 3 * finetune["forward_flops_per_image"]
    for record in (transfer, finetune):
        assert record["peak_flops_method"].startswith("matmul-probe:CPU:0:float32")
        assert record["train_flops_per_sec"] == pytest.approx(
            record["train_images_per_sec"] * record["train_flops_per_image"]
        )
        assert 0 < record["train_mfu"] < 1 and 0 < record["infer_mfu"] < 1
        assert record["train_mfu"] == pytest.approx(record["train_flops_per_sec"] / record["peak_flops_per_sec"])


def test_time_to_accuracy_and_the_validation_curve(tiny_records):
    for mode, record in tiny_records.items():
        chosen = next(c for c in record["lr_search"] if c["learning_rate"] == record["learning_rate"])
        curve = chosen["val_curve"]
        assert [p["epoch"] for p in curve] == list(range(1, BUDGETS["quick"].epochs(mode) + 1))
        assert curve[-1]["val_accuracy"] == record["val_accuracy"]
        reached = next(p for p in curve if p["val_accuracy"] >= record["val_accuracy"])
        assert record["time_to_accuracy_seconds"] == reached["train_seconds"] > 0
        assert record["time_to_accuracy_seconds"] >= record["feature_seconds"]
        assert (record["feature_seconds"] > 0) == (mode == "transfer")  # features computed once, timed


def test_xla_and_mixed_precision_are_recorded(tiny_module):
    spec = TrialSpec(
        "mobilenet_v2_035_128",
        "finetune",
        8,
        "digits",
        0,
        BUDGETS["quick"],
        ModuleSource("local", tiny_module),
        xla=True,
        mixed_precision=True,
    )
    record = run_trial(spec)
    assert record["status"] == "ok", record["error"]
    assert record["xla"] is True
    # This machine has no GPU: asked for, not applied, and the record says why.
    assert record["mixed_precision"] is False and "not applied" in record["precision_note"]
    assert record["train_images_per_sec"] > 0
