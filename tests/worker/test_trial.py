"""Real trials, in this process, on real modules and the embedded data."""

import pytest

from tlbench import device_memory
from tlbench.plan import BUDGETS, CarriedRate, ModuleSource, Protocol, TrialSpec, scaled_learning_rate
from tlbench.worker.devices import is_out_of_memory
from tlbench.worker.trial import run_trial

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
    "onednn",
    "seconds",
)


def _gpus() -> list[dict]:
    """Details of this machine's GPUs, as TensorFlow sees them."""
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(g) for g in tf.config.list_physical_devices("GPU")]


def _device() -> str:
    return "GPU:0" if _gpus() else "CPU:0"


def _spec(mode, module, budget="quick", batch_size=16, backbone="mobilenet_v2_035_128", seed=0, kind="local", **more):
    source = ModuleSource(kind, module)
    return TrialSpec(backbone, mode, batch_size, "digits", seed, BUDGETS[budget], source, **more)


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
    assert record["device"].startswith("GPU:" if _gpus() else "CPU:") and record["host"]
    for key in ("test_accuracy", "val_accuracy", "train_accuracy"):
        assert 0.0 <= record[key] <= 1.0
    assert record["train_images_per_sec"] > 0 and record["infer_images_per_sec"] > 0
    assert record["peak_memory_bytes"] > 0 and record["seconds"] > 0
    assert isinstance(record["onednn"], bool)  # which CPU kernels ran: they change speed and memory
    assert record["split_sizes"] == {"train": 16, "val": 10, "test": 10}
    assert {split: sum(counts) for split, counts in record["class_counts"].items()} == record["split_sizes"]
    assert len(record["class_counts"]["val"]) == record["num_classes"] == 10 and record["split_seed"] == 0
    assert [c["penalty"] for c in record["probe_search"]] == list(BUDGETS["quick"].probe_penalties)
    assert record["probe_penalty"] in [c["penalty"] for c in record["probe_search"]]
    bases = list(BUDGETS["quick"].learning_rates["finetune"]) if mode == "finetune" else []
    assert [c["base_learning_rate"] for c in record["lr_search"]] == bases
    assert [c["learning_rate"] for c in record["lr_search"]] == [scaled_learning_rate(b, 16) for b in bases]
    if mode == "finetune":
        assert record["learning_rate"] == scaled_learning_rate(record["base_learning_rate"], 16)
    else:  # the probe has no learning rate
        assert record["learning_rate"] is record["base_learning_rate"] is record["kept_epoch"] is None
    assert record["learning_rate_rule"] == "base x sqrt(batch_size / 32)"
    assert record["test_passes"] == 1  # the test split was read once, after the choices
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


def test_a_module_that_is_not_a_feature_vector_is_an_error(tmp_path):
    from modules import save_spatial_module

    record = run_trial(_spec("transfer", save_spatial_module(tmp_path / "spatial")))
    assert record["status"] == "error" and "feature-vector module" in record["error"]


def test_out_of_memory_is_told_apart_from_other_failures():
    import tensorflow as tf

    assert is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(ValueError("bad"))


def test_the_learning_rate_and_the_probes_penalty_are_chosen_on_validation(tiny_records):
    for record, search, chosen in (
        (tiny_records["finetune"], "lr_search", "learning_rate"),
        (tiny_records["transfer"], "probe_search", "probe_penalty"),
    ):
        best = max(record[search], key=lambda c: (c["val_accuracy"], -c["val_loss"]))
        assert record[chosen] == best[chosen.removeprefix("probe_")]
        assert record["val_accuracy"] == best["val_accuracy"] and record["val_loss"] == best["val_loss"]


@pytest.mark.parametrize("mode", ["transfer", "finetune"])
def test_memory_is_measured_against_a_baseline_and_predicted_from_the_graph(tiny_records, mode):
    record = tiny_records[mode]
    # tlbench set the CPU allocator to BFC before TensorFlow was imported: its peak on any machine
    assert record["memory_method"] == f"tf-allocator:{_device()}"
    assert record["runtime_overhead_bytes"] == record["peak_rss_bytes"] - record["peak_memory_bytes"] > 0
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
    # The device's memory (here the CPU allocator's limit, the machine's memory) and the largest batch that fits it.
    assert record["device_memory_emulated"] is False and record["device_memory_bytes"] > 0
    if _device() == "CPU:0":
        assert record["device_memory_bytes"] == device_memory.cpu_allocator_limit()
    largest = record["max_batch_size_predicted"]
    assert largest == device_memory.largest_batch(record, record["device_memory_bytes"]) > 16
    assert device_memory.predicted_device_peak(record, largest) <= record["device_memory_bytes"]


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
        assert record["peak_flops_method"].startswith(f"matmul-probe:{_device()}:float32")
        assert record["train_flops_per_sec"] == pytest.approx(
            record["train_images_per_sec"] * record["train_flops_per_image"]
        )
        assert 0 < record["train_mfu"] < 1 and 0 < record["infer_mfu"] < 1
        assert record["train_mfu"] == pytest.approx(record["train_flops_per_sec"] / record["peak_flops_per_sec"])


def test_time_to_accuracy_and_the_validation_curve(tiny_records):
    # Transfer: the probe's fits along its penalties, the best on validation chosen.
    transfer = tiny_records["transfer"]
    fits = transfer["probe_search"]
    chosen = max(fits, key=lambda c: (c["val_accuracy"], -c["val_loss"]))
    assert transfer["probe_penalty"] == chosen["penalty"] and transfer["val_loss"] == chosen["val_loss"]
    assert [c["train_seconds"] for c in fits] == sorted(c["train_seconds"] for c in fits)
    assert transfer["time_to_accuracy_seconds"] == chosen["time_to_accuracy_seconds"] >= transfer["feature_seconds"] > 0
    assert transfer["lr_search"] == [] and transfer["max_epochs"] is None
    # Finetune: epoch 0 is the linear probe's start, with the probe's validation figures.
    record = tiny_records["finetune"]
    chosen = next(c for c in record["lr_search"] if c["learning_rate"] == record["learning_rate"])
    curve = chosen["val_curve"]
    assert [p["epoch"] for p in curve] == list(range(chosen["epochs_run"] + 1))
    assert curve[0]["val_loss"] == min(
        c["val_loss"] for c in record["probe_search"] if c["penalty"] == record["probe_penalty"]
    )
    assert chosen["epochs_run"] <= record["max_epochs"] == BUDGETS["quick"].epochs("finetune")
    kept = curve[chosen["kept_epoch"]]
    assert kept["val_loss"] == min(p["val_loss"] for p in curve) == record["val_loss"]
    assert kept["val_accuracy"] == record["val_accuracy"] and record["kept_epoch"] == chosen["kept_epoch"]
    reached = next(p for p in curve if p["val_accuracy"] >= record["val_accuracy"])
    assert record["time_to_accuracy_seconds"] == reached["train_seconds"] > 0
    assert record["time_to_accuracy_seconds"] >= record["feature_seconds"] > 0


def test_a_carried_rate_is_trained_alone_at_the_trials_batch_size(tiny_module):
    """driver/carry.py: a smaller batch's chosen base rate, the trial's only fine-tuning rate."""
    record = run_trial(_spec("finetune", tiny_module, batch_size=8, carried_rate=CarriedRate("source-id", 5e-5)))
    assert record["status"] == "ok", record["error"]
    assert record["learning_rate_carried_from"] == "source-id"
    assert [c["base_learning_rate"] for c in record["lr_search"]] == [5e-5] == [record["base_learning_rate"]]
    assert record["learning_rate"] == scaled_learning_rate(5e-5, 8)


def test_seeds_give_a_spread_on_the_same_split(tiny_module):
    from tlbench.reports.configs import configurations

    records = [run_trial(_spec("finetune", tiny_module, batch_size=4, seed=seed)) for seed in (0, 1, 2)]
    assert all(r["status"] == "ok" for r in records)
    assert all(r["class_counts"] == records[0]["class_counts"] for r in records)  # one split for every seed
    # A seed changes the order of fine-tuning's batches, so the epoch that follows the probe's start.
    assert len({r["lr_search"][0]["val_curve"][1]["val_loss"] for r in records}) == 3
    (spread,) = configurations(records)
    assert spread.seeds == (0, 1, 2) and spread.test_std is not None
    # The probe is a convex fit on the same features: every seed gets the same one.
    probes = [run_trial(_spec("transfer", tiny_module, seed=seed)) for seed in (0, 1)]
    assert probes[0]["probe_search"] == [{**c, **_seconds(probes[0], i)} for i, c in enumerate(probes[1]["probe_search"])]
    assert probes[0]["test_loss"] == probes[1]["test_loss"]


def _seconds(record: dict, index: int) -> dict:
    """A probe fit's timings in `record`, which differ from run to run."""
    fit = record["probe_search"][index]
    return {key: fit[key] for key in ("fit_seconds", "train_seconds", "time_to_accuracy_seconds")}


def test_train_size_and_batch_norm_momentum_reach_the_trial(tiny_module):
    protocol = Protocol(split_seed=3, train_size=12, batch_norm_momentum=0.9, batch_norm="train")
    record = run_trial(_spec("finetune", tiny_module, batch_size=4, protocol=protocol))
    assert record["status"] == "ok", record["error"]
    assert record["split_sizes"]["train"] == 12 and record["split_seed"] == 3 and record["train_size"] == 12
    assert record["batch_norm_momentum"] == 0.9 and record["batch_norm"] == "train"
    # The tiny module is a plain Keras SavedModel: no batch_norm_momentum argument.
    assert record["batch_norm_momentum_note"].startswith("not applied")
    # BatchNorm frozen (the default): the momentum is not used, and the record says so.
    frozen = run_trial(_spec("finetune", tiny_module, batch_size=4, protocol=Protocol(train_size=12)))
    assert frozen["batch_norm"] == "frozen" and frozen["batch_norm_momentum_note"].startswith("unused")


def test_xla_and_mixed_precision_are_recorded(tiny_module):
    # Transfer: XLA compiles its step once (a mode that trains the backbone, at every step: README, --xla).
    record = run_trial(_spec("transfer", tiny_module, batch_size=8, xla=True, mixed_precision=True))
    assert record["status"] == "ok", record["error"]
    assert record["xla"] is True
    if not _gpus():  # asked for, not applied, and the record says why
        assert record["mixed_precision"] is False and "not applied" in record["precision_note"]
    else:  # applied where float16 is fast
        fast = _gpus()[0].get("compute_capability", (0, 0)) >= (7, 0)
        assert record["mixed_precision"] is fast and record["precision_note"]
    assert record["train_images_per_sec"] > 0


def test_a_trial_predicted_not_to_fit_in_memory_is_refused_before_training():
    """MobileNet V2 0.35/128 fine-tuning at batch 2**20 needs terabytes by its
    graph: on a CPU it ends `oom` before any training step, not swapping."""
    from tlbench.registry import get_backbone
    from tlbench.worker.weights import export_standin

    standin = str(export_standin(get_backbone("mobilenet_v2_035_128")))
    record = run_trial(_spec("finetune", standin, batch_size=2**20, kind="standin"))
    assert record["status"] == "oom"
    if _gpus():  # the refusal is a CPU's; a GPU's allocator runs out on its own, at once
        return
    assert (
        record["error"].startswith("PredictedOutOfMemory: predicted ") and "refused before training" in record["error"]
    )
