"""One trial, in one fresh worker process: a TrialSpec in, a record out.

Accuracy first (train with a learning-rate search on validation, test once),
then what the model costs counted from its graph (FLOPs, the activation bytes a
training step keeps), the device's peak FLOP/s from a matmul probe, and the
timed passes: training steps with memory against a baseline, then inference
steps. Out-of-memory becomes status "oom", any other failure status "error";
either way a record comes back and the grid goes on.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import datetime, timezone

from tlbench import data, environment
from tlbench.measure import TimingPlan, matmul_peak_flops, time_steps
from tlbench.plan import LEARNING_RATE_RULE, TrialSpec
from tlbench.registry import get_backbone


def run_trial(spec: TrialSpec, images: data.ImageSet | None = None) -> dict:
    """`images`: the dataset as the driver loaded it; read from
    `spec.dataset` when not given."""
    started = time.perf_counter()
    record = {
        **spec.describe(),
        "status": "ok",
        "error": None,
        "host": environment.host(),
        "process_id": os.getpid(),  # every trial has a fresh worker process
        "started_at": _utc_now(),
    }
    try:
        record["device"] = configure_devices()
        record.update(_measure(spec, images if images is not None else data.open_dataset(spec.dataset)))
    except Exception as error:  # noqa: BLE001 - every failure becomes a record
        record["status"] = "oom" if _is_out_of_memory(error) else "error"
        record["error"] = f"{type(error).__name__}: {_first_line(error)}"
    record["seconds"] = time.perf_counter() - started
    record["finished_at"] = _utc_now()
    return record


def configure_devices() -> str:
    """Memory growth on every visible GPU (before any op runs, so trials sharing
    a machine don't grab each other's memory); returns the device label."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU:{details.get('device_name', 'unknown')}"
    return f"CPU:{environment.cpu_model()}"


def _measure(spec: TrialSpec, images: data.ImageSet) -> dict:
    import tensorflow as tf
    import tf_keras

    from tlbench import costs, weights
    from tlbench.measure import TensorFlowPeakMemory
    from tlbench.model import Classifier
    from tlbench.pipeline import SplitPipeline
    from tlbench.training import evaluate, fit_and_select

    backbone = get_backbone(spec.backbone)
    budget, protocol = spec.budget, spec.protocol
    finetune = spec.mode == "finetune"
    phases = Phases()
    module_path = weights.materialize(spec.module, backbone, protocol.batch_norm_momentum)
    tf1 = weights.is_tf1_hub_module(module_path)
    conversion = {}
    if finetune and tf1:
        # hub.KerasLayer can't fine-tune a TF1 Hub module: fine-tune the same
        # network rebuilt in tf_keras with the module's weights instead.
        from tlbench.convert import export_converted

        converted, difference = export_converted(module_path, backbone, protocol.batch_norm_momentum)
        conversion = {"converted_from": module_path, "conversion_max_abs_difference": difference}
        module_path, tf1 = str(converted), False
    tf_keras.utils.set_random_seed(spec.seed)

    # The split (and any cap) depends on the split seed only: every seed of a
    # run trains, validates and tests on the same images.
    splits = data.capped_splits(images, protocol.split_seed, protocol.max_train_images(budget), budget.max_eval_images)
    size = backbone.image_size
    train, val, test = (SplitPipeline(images, idx, size) for idx in (splits.train, splits.val, splits.test))

    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    mixed_precision, precision_note = _mixed_precision(spec.mixed_precision, device)
    classifier = Classifier(
        module_path,
        size,
        images.num_classes,
        trainable=finetune,
        jit_compile=spec.xla,
        mixed_precision=mixed_precision,
        batch_norm_momentum=protocol.batch_norm_momentum,
    )
    momentum_note = _batch_norm_momentum_note(finetune, module_path, classifier.batch_norm_momentum_passed)
    phases.end("load")
    # What the model costs, from its graph, before any training: a trial that
    # can't fit in this machine's memory is refused now, not left to swap it.
    cost = costs.trial_costs(classifier, spec.mode, module_path)
    if device.startswith("CPU"):
        cached_images = sum(len(idx) for idx in (splits.train, splits.val, splits.test)) * size * size * 3 * 4
        refuse_if_too_big(cost, spec.batch_size, cached_images)
    phases.end("costs")
    memory = TensorFlowPeakMemory(device)

    search = fit_and_select(
        classifier,
        train,
        val,
        mode=spec.mode,
        batch_size=spec.batch_size,
        budget=budget,
        seed=spec.seed,
    )
    test_result = evaluate(classifier.predict, test.batches(spec.batch_size))  # the one look at test
    phases.end("accuracy")

    probe_dtype = "float16" if mixed_precision else "float32"
    peak_flops, peak_method = matmul_peak_flops(device, probe_dtype)
    phases.end("peak_probe")

    plan = TimingPlan(budget.warmup_steps, budget.min_timed_steps, budget.min_timed_seconds, budget.timed_repeats)
    timed = timed_passes(classifier, train, spec.batch_size, plan, memory, spec.seed)
    phases.end("timed_passes")
    # The device's peak is probed again after the timed passes and the better
    # probe kept: on a shared machine one probe can land in a slow moment and
    # would make MFU look higher than it is.
    again, again_method = matmul_peak_flops(device, probe_dtype)
    if again > peak_flops:
        peak_flops, peak_method = again, again_method
    peak_method += ":better-of-2-probes"
    phases.end("peak_probe")

    per_image = cost["predicted_activation_bytes_per_image"]
    return {
        "module": module_path,
        "module_format": "tf1-hub" if tf1 else "tf2-savedmodel",
        **conversion,
        "image_size": size,
        "feature_dim": classifier.feature_dim,
        "num_classes": images.num_classes,
        "class_names": list(images.class_names),
        "split_sizes": splits.sizes(),
        "class_counts": splits.class_counts(images.labels, images.num_classes),
        "dataset_images": len(images.labels),
        "skipped_files": images.skipped_files,
        **classifier.parameter_counts(),
        "xla": spec.xla,
        "mixed_precision": mixed_precision,
        "precision_note": precision_note,
        "learning_rate": search.learning_rate,
        "base_learning_rate": search.base_learning_rate,
        "learning_rate_rule": LEARNING_RATE_RULE,
        "lr_search": search.candidates,
        "probe_lr_search": search.probe_candidates,
        "max_epochs": budget.epochs(spec.mode),
        "patience": budget.patience[spec.mode],
        "kept_epoch": search.kept_epoch,
        "batch_norm_momentum": protocol.batch_norm_momentum,
        "batch_norm_momentum_note": momentum_note,
        "train_accuracy": search.train.accuracy,
        "val_accuracy": search.val.accuracy,
        "val_loss": search.val.loss,
        "test_accuracy": test_result.accuracy,
        "test_loss": test_result.loss,
        "test_passes": test.passes,  # 1: the test split was read once, after every choice
        "feature_seconds": search.feature_seconds,
        "time_to_accuracy_seconds": search.time_to_accuracy_seconds,
        "phase_seconds": phases.seconds,
        **timed,
        **cost,
        "predicted_activation_bytes": per_image * spec.batch_size + cost["predicted_activation_bytes_per_batch"],
        "train_flops_per_sec": timed["train_images_per_sec"] * cost["train_flops_per_image"],
        "infer_flops_per_sec": timed["infer_images_per_sec"] * cost["forward_flops_per_image"],
        "peak_flops_per_sec": peak_flops,
        "peak_flops_method": peak_method,
        "train_mfu": timed["train_images_per_sec"] * cost["train_flops_per_image"] / peak_flops,
        "infer_mfu": timed["infer_images_per_sec"] * cost["forward_flops_per_image"] / peak_flops,
    }


def timed_passes(classifier, pipeline, batch_size: int, plan: TimingPlan, memory, seed: int) -> dict:
    """Throughput and memory of the compiled steps the trial trains with.

    Training: the whole model's train step (forward, backward, optimizer; for
    transfer too: that is what training from images costs) on a cycle of
    distinct batches from the trial's pipeline, with the memory it adds to
    what is resident before it. Inference is a separate pass with its own peak.
    """
    import tensorflow as tf

    sync = tf.test.experimental.sync_devices
    train_stream = itertools.cycle(pipeline.timed_batches(batch_size, seed=seed))
    infer_stream = itertools.cycle(pipeline.timed_batches(batch_size, seed=seed + 1))
    # One step of each before the baseline (tracing: transfer trained the head
    # alone so far), so that the baseline is what a step starts from.
    classifier.train_step(*next(train_stream))
    classifier.predict(next(infer_stream)[0])
    sync()

    memory.reset()
    baseline = memory.in_use()  # weights, optimizer slots, cached data: what a step starts from
    train = time_steps(lambda: classifier.train_step(*next(train_stream)), plan, batch_size, sync=sync)
    peak, method = memory.peak()
    peak_rss = memory.rss.peak_bytes()

    memory.reset()
    infer_baseline = memory.in_use()
    infer = time_steps(lambda: classifier.predict(next(infer_stream)[0]), plan, batch_size, sync=sync)
    infer_peak, _ = memory.peak()
    return {
        "train_images_per_sec": train.images_per_sec,
        "infer_images_per_sec": infer.images_per_sec,
        "train_timing": train.summary(),
        "infer_timing": infer.summary(),
        "warmup_steps": plan.warmup_steps,
        "baseline_memory_bytes": baseline,
        "peak_memory_bytes": peak,
        "activation_memory_bytes": peak - baseline,
        "infer_peak_memory_bytes": infer_peak,
        "infer_activation_memory_bytes": infer_peak - infer_baseline,
        "memory_method": method,
        "peak_rss_bytes": peak_rss,
    }


class PredictedOutOfMemory(MemoryError):
    """A trial refused before training: the graph says it can't fit."""


def refuse_if_too_big(cost: dict, batch_size: int, cached_bytes: int) -> None:
    """Raise PredictedOutOfMemory when the training step's predicted memory
    (weights, gradients, Adam slots, the activations it keeps at this batch
    size) plus the cached images exceeds the memory available now. On a CPU
    that is the machine's RAM: going over would swap it, not fail cleanly."""
    import psutil

    needed = (
        cost["weight_bytes"]
        + cost["gradient_bytes"]
        + cost["optimizer_slot_bytes"]
        + cost["predicted_activation_bytes_per_image"] * batch_size
        + cost["predicted_activation_bytes_per_batch"]
        + cached_bytes
    )
    available = psutil.virtual_memory().available
    if needed > available:
        raise PredictedOutOfMemory(
            f"predicted {needed / 2**30:.1f} GiB for training at batch {batch_size} (weights, gradients, Adam "
            f"slots, activations, cached images) > {available / 2**30:.1f} GiB available: refused before training"
        )


def _batch_norm_momentum_note(finetune: bool, module_path: str, passed: bool) -> str:
    """How the run's BatchNorm momentum reached the backbone, if at all."""
    from tlbench.weights import exported_batch_norm_momentum

    if not finetune:
        return "unused: the frozen backbone's BatchNorm runs in inference mode"
    exported = exported_batch_norm_momentum(module_path)
    if exported is not None:
        return f"exported into tlbench's SavedModel ({exported:g})"
    if passed:
        return "passed to the module as its batch_norm_momentum argument"
    return "not applied: the module takes no batch_norm_momentum argument and keeps its own"


def _mixed_precision(requested: bool, device: str) -> tuple[bool, str | None]:
    """mixed_float16 where it pays: GPUs of compute capability 7.0 or newer."""
    if not requested:
        return False, None
    import tensorflow as tf

    if device.startswith("GPU"):
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        if details.get("compute_capability", (0, 0)) >= (7, 0):
            return True, "head in mixed_float16 with loss scaling; the TF Hub module computes in float32"
        return (
            False,
            f"not applied: {details.get('device_name', 'this GPU')} has no fast float16 (compute capability < 7.0)",
        )
    return False, "not applied: mixed_float16 needs a GPU of compute capability 7.0 or newer"


class Phases:
    """Wall time of each phase of a trial, in seconds: where the time went."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def end(self, name: str) -> None:
        """The time since the last `end` goes to `name` (added up when a
        phase comes back)."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(error, tf.errors.ResourceExhaustedError)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:500]
