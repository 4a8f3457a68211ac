"""One trial, in one fresh worker process: a TrialSpec in, a record out.

Accuracy first (train with a learning-rate search on validation, test once),
then a separate timed pass: training steps with peak memory, then inference
steps. Out-of-memory becomes status "oom", any other failure status "error";
either way a record comes back and the grid goes on.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from tlbench import data, environment
from tlbench.errors import ModuleError
from tlbench.measure import TimingPlan, time_steps
from tlbench.plan import TrialSpec
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

    from tlbench import weights
    from tlbench.measure import TensorFlowPeakMemory
    from tlbench.model import Classifier
    from tlbench.pipeline import SplitPipeline
    from tlbench.training import evaluate, fit_and_select

    backbone = get_backbone(spec.backbone)
    budget = spec.budget
    phases = Phases()
    module_path = weights.materialize(spec.module, backbone)
    tf1 = weights.is_tf1_hub_module(module_path)
    if spec.mode == "finetune" and tf1:
        raise ModuleError(
            f"{module_path} is a TF1 Hub format module; hub.KerasLayer can't fine-tune those. "
            "Run it with --mode transfer, or give a TF2 SavedModel with --module"
        )
    tf_keras.utils.set_random_seed(spec.seed)

    splits = data.capped_splits(images, spec.seed, budget.max_train_images, budget.max_eval_images)
    size = backbone.image_size
    train, val, test = (SplitPipeline(images, idx, size) for idx in (splits.train, splits.val, splits.test))

    classifier = Classifier(module_path, size, images.num_classes, trainable=spec.mode == "finetune")
    phases.end("load")
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    memory = TensorFlowPeakMemory(device)

    search = fit_and_select(
        classifier,
        train,
        val,
        mode=spec.mode,
        batch_size=spec.batch_size,
        learning_rates=budget.learning_rates[spec.mode],
        epochs=budget.epochs(spec.mode),
        seed=spec.seed,
    )
    test_result = evaluate(classifier.predict, test.batches(spec.batch_size))  # the one look at test
    phases.end("accuracy")

    # The timed pass: the whole model's compiled train step on full batches of
    # images (for transfer too: that is what training from images costs), then
    # inference on its own.
    plan = TimingPlan(budget.warmup_steps, budget.min_timed_steps, budget.min_timed_seconds)
    train_stream = iter(train.batches(spec.batch_size, shuffle_seed=spec.seed, repeat=True))
    memory.reset()
    train_timing = time_steps(lambda: float(classifier.train_step(*next(train_stream))), plan, spec.batch_size)
    peak_bytes, memory_method = memory.peak()
    peak_rss = memory.rss.peak_bytes()

    infer_stream = iter(train.batches(spec.batch_size, repeat=True))
    infer_timing = time_steps(lambda: classifier.predict(next(infer_stream)[0]).numpy(), plan, spec.batch_size)
    phases.end("timed_passes")

    return {
        "module": module_path,
        "module_format": "tf1-hub" if tf1 else "tf2-savedmodel",
        "image_size": size,
        "feature_dim": classifier.feature_dim,
        "num_classes": images.num_classes,
        "split_sizes": splits.sizes(),
        "skipped_files": images.skipped_files,
        **classifier.parameter_counts(),
        "learning_rate": search.learning_rate,
        "lr_search": search.candidates,
        "epochs": budget.epochs(spec.mode),
        "train_accuracy": search.train.accuracy,
        "val_accuracy": search.val.accuracy,
        "val_loss": search.val.loss,
        "test_accuracy": test_result.accuracy,
        "test_loss": test_result.loss,
        "phase_seconds": phases.seconds,
        "train_images_per_sec": train_timing.images_per_sec,
        "infer_images_per_sec": infer_timing.images_per_sec,
        "train_timing": train_timing.summary(),
        "infer_timing": infer_timing.summary(),
        "warmup_steps": plan.warmup_steps,
        "peak_memory_bytes": peak_bytes,
        "memory_method": memory_method,
        "peak_rss_bytes": peak_rss,
    }


class Phases:
    """Wall time of each phase of a trial, in seconds: where the time went."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._last
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
