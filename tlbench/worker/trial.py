"""One trial, in one fresh worker process: a TrialSpec in, a record out.

A trial is a short list of phases, each timed into `phase_seconds`:

1. load: the module (materialized, or converted from TF1), the splits and
   their pipelines, the classifier;
2. costs: what the model costs by its graph (FLOPs, the activation bytes a
   training step keeps, the predicted peak memory of its training and
   inference passes); on a CPU a trial whose predicted peak can't fit is
   refused here;
3. peak_probe: the device's peak FLOP/s, before training;
4. accuracy: the learning-rate search on validation, then the test split,
   once;
5. timed_passes (each pass timed again while unstable, stability.py),
   peak_probe: the timed training and inference steps with memory against a
   baseline, then the peak probed again (and again while the best two
   disagree; the best is kept).

Out-of-memory becomes status "oom", any other failure status "error"; either
way a record comes back and the grid goes on.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, replace

from tlbench import data, environment, record, stability
from tlbench.errors import described
from tlbench.plan import LEARNING_RATE_RULE, TrialSpec
from tlbench.registry import get_backbone, trains_backbone
from tlbench.worker.devices import compute_device, configure_devices, is_out_of_memory, mixed_precision, onednn_enabled
from tlbench.worker.measure import PeakFlops, TimingPlan, time_until_stable


def run_trial(spec: TrialSpec, images: data.ImageSet | None = None, frozen: dict | None = None) -> record.TrialRecord:
    """`images`: the dataset as the driver loaded it; read from
    `spec.dataset` when not given. `frozen`: the backbone's frozen inputs,
    computed once for the run's trials (frozen.compute)."""
    started, started_at = time.perf_counter(), record.utc_now()
    fields, status, error = {}, record.Status.OK, None
    try:
        # An emulated device's size is in the record however the trial ends (model_costs adds the device's own).
        fields.update(device_memory_emulated=spec.device_memory is not None, device_memory_bytes=spec.device_memory)
        images = images if images is not None else data.open_dataset(spec.dataset)
        fields["device"] = configure_devices(spec.device_memory)
        measure(spec, images, fields, frozen)
    except Exception as failure:  # noqa: BLE001 - every failure becomes a record
        status = record.Status.OOM if is_out_of_memory(failure) else record.Status.ERROR
        if status == record.Status.OOM:  # refused by the graph's prediction, or a real allocation failed
            from tlbench.worker.costs import PredictedOutOfMemory

            fields["oom_cause"] = "prediction" if isinstance(failure, PredictedOutOfMemory) else "allocator"
        if status == record.Status.ERROR and images is not None:
            from tlbench.worker.decode_check import naming_the_file  # TensorFlow's decode errors name no file

            failure = naming_the_file(failure, spec, images)
        error = described(failure)
    return record.make(
        **spec.record_fields(),
        **fields,
        status=status,
        error=error,
        host=environment.host(),
        process_id=os.getpid(),  # every trial has a fresh worker process
        started_at=started_at,
        finished_at=record.utc_now(),
        seconds=time.perf_counter() - started,
    )


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


def measure(spec: TrialSpec, images: data.ImageSet, fields: dict, frozen: dict | None = None) -> None:
    """The trial's figures into `fields`, phase by phase: a trial that fails
    (out of memory in a training step, say) keeps what it had measured, the
    graph's prediction of what fits included."""
    phases = Phases()
    fields["phase_seconds"] = phases.seconds  # filled as each phase ends
    setup = load(spec, images)
    fields.update(setup.record_fields())
    phases.end("load")
    cost = model_costs(setup, spec)
    fields.update(cost)
    phases.end("costs")
    # The first probe runs before training, not just before the timed passes:
    # what they time follows the training that ran before it, as a run's
    # steps do, and not a foreign kernel that leaves its own state behind.
    peak = PeakFlops(setup.device, "float16" if setup.mixed_precision else "float32")
    phases.end("peak_probe")
    accuracy = measure_accuracy(setup, spec, frozen)
    phases.end("accuracy")
    plan = TimingPlan(
        spec.budget.warmup_steps, spec.budget.min_timed_steps, spec.budget.min_timed_seconds, spec.budget.timed_repeats
    )
    timed = timed_passes(setup.classifier, setup.train, spec.batch_size, plan, setup.memory, spec.seed)
    phases.end("timed_passes")
    # Probed again after the timed passes, the better kept: on a shared
    # machine one probe can land in a slow moment and make MFU look high.
    peak.probe_again()
    phases.end("peak_probe")
    fields.update(
        xla=spec.xla,
        **accuracy,
        **timed,
        **throughput_figures(timed, cost, peak, spec.batch_size),
        **stability.judge_trial(timed["train_timing"], timed["infer_timing"], peak.probes),
    )


@dataclass
class Setup:
    """What the load phase builds: module, data, classifier, device."""

    module_path: str
    module_format: str  # tf2-savedmodel / tf1-hub
    conversion: dict  # converted_from, conversion_max_abs_difference (finetune of a TF1 module)
    images: data.ImageSet
    splits: data.Splits
    train: object  # pipeline.SplitPipeline
    val: object
    test: object
    classifier: object  # model.Classifier
    device: str  # the TensorFlow device: GPU:0 or CPU:0
    mixed_precision: bool
    precision_note: str | None
    momentum_note: str
    memory: object  # measure.TensorFlowPeakMemory

    def record_fields(self) -> dict:
        images, splits = self.images, self.splits
        return {
            "module": self.module_path,
            "module_format": self.module_format,
            **self.conversion,
            "image_size": self.classifier.image_size,
            "feature_dim": self.classifier.feature_dim,
            "num_classes": images.num_classes,
            "class_names": list(images.class_names),
            "split_sizes": splits.sizes(),
            "class_counts": splits.class_counts(images.labels, images.num_classes),
            "dataset_images": len(images.labels),
            "skipped_files": images.skipped_files,
            **self.classifier.parameter_counts(),
            **self.classifier.trained_layers(),
            "mixed_precision": self.mixed_precision,
            "precision_note": self.precision_note,
            "onednn": onednn_enabled(),
            "batch_norm_momentum_note": self.momentum_note,
        }


def load(spec: TrialSpec, images: data.ImageSet) -> Setup:
    import tf_keras

    from tlbench.worker import weights
    from tlbench.worker.measure import TensorFlowPeakMemory
    from tlbench.worker.model import Classifier, batch_norm_momentum_note
    from tlbench.worker.pipeline import SplitPipeline

    backbone, protocol = get_backbone(spec.backbone), spec.protocol
    trains = trains_backbone(spec.mode)
    module_path = weights.materialize(spec.module, backbone, protocol.batch_norm_momentum)
    tf1 = weights.is_tf1_hub_module(module_path)
    conversion = {}
    if trains and tf1:
        # hub.KerasLayer can't fine-tune a TF1 Hub module: fine-tune the same
        # network rebuilt in tf_keras with the module's weights instead.
        from tlbench.worker.convert import export_converted

        converted, difference = export_converted(module_path, backbone, protocol.batch_norm_momentum)
        conversion = {"converted_from": module_path, "conversion_max_abs_difference": difference}
        module_path, tf1 = str(converted), False
    tf_keras.utils.set_random_seed(spec.seed)
    # The split (and any cap) depends on the split seed only: every seed of a
    # run trains, validates and tests on the same images.
    splits = data.capped_splits(
        images, protocol.split_seed, protocol.max_train_images(spec.budget), spec.budget.max_eval_images
    )
    size = backbone.image_size
    device = compute_device()
    # A device of --device-memory's size emulated on a CPU holds only what a GPU's would: the decoded
    # images and timed batches stay outside TensorFlow's allocator, in host memory (pipeline.py).
    host_memory = spec.device_memory is not None and device.startswith("CPU")
    train, val, test = (
        SplitPipeline(images, idx, size, host_memory=host_memory) for idx in (splits.train, splits.val, splits.test)
    )
    applied, precision_note = mixed_precision(spec.mixed_precision, device)
    classifier = Classifier(
        module_path,
        size,
        images.num_classes,
        spec.mode,
        ladder=backbone.ladder,
        batch_norm=protocol.batch_norm,
        jit_compile=spec.xla,
        mixed_precision=applied,
        batch_norm_momentum=protocol.batch_norm_momentum,
    )
    return Setup(
        module_path=module_path,
        module_format="tf1-hub" if tf1 else "tf2-savedmodel",
        conversion=conversion,
        images=images,
        splits=splits,
        train=train,
        val=val,
        test=test,
        classifier=classifier,
        device=device,
        mixed_precision=applied,
        precision_note=precision_note,
        momentum_note=batch_norm_momentum_note(classifier, module_path),
        memory=TensorFlowPeakMemory(device),
    )


def model_costs(setup: Setup, spec: TrialSpec) -> dict:
    """What the model costs by its graph, before any training, with the peaks
    the timed passes will measure, predicted: on a CPU, a trial that can't fit
    in the machine's memory is refused now rather than left to swap it."""
    from tlbench import device_memory
    from tlbench.worker import costs
    from tlbench.worker.devices import device_memory_bytes
    from tlbench.worker.kernel_scratch import conv_kernels

    kernels = conv_kernels(setup.device, onednn_enabled())
    cost = costs.trial_costs(setup.classifier, spec.mode, setup.module_path, kernels)
    size = setup.classifier.image_size
    # `timed_passes` holds two streams of timed batches, training and inference: in the allocator measured
    # on a CPU; in host memory on a GPU, or on a CPU emulating one, where the allocator has a step's copy.
    timed_bytes = 2 * device_memory.timed_batches_bytes(spec.batch_size, size)
    host_memory = setup.train.host_memory or not setup.device.startswith("CPU")
    in_allocator = device_memory.timed_batches_bytes(spec.batch_size, size, count=1) if host_memory else timed_bytes
    peaks = costs.predicted_peaks(cost, spec.batch_size, in_allocator)
    if setup.device.startswith("CPU"):
        cached_images = sum(len(idx) for idx in (setup.splits.train, setup.splits.val, setup.splits.test))
        costs.refuse_if_too_big(
            peaks["predicted_peak_memory_bytes"],
            spec.batch_size,
            cached_images * device_memory.image_bytes(size) + (timed_bytes if host_memory else 0),
            setup.memory.runtime_overhead(),
        )
    per_image = cost["predicted_activation_bytes_per_image"]
    device_bytes = device_memory_bytes(setup.device, spec.device_memory)
    return {
        **cost,
        "predicted_activation_bytes": per_image * spec.batch_size + cost["predicted_activation_bytes_per_batch"],
        **peaks,
        "device_memory_bytes": device_bytes,
        "device_memory_emulated": spec.device_memory is not None,
        "max_batch_size_predicted": (
            device_memory.largest_batch({**cost, "image_size": size}, device_bytes) if device_bytes else None
        ),
    }


def measure_accuracy(setup: Setup, spec: TrialSpec, frozen: dict | None = None) -> dict:
    """The protocol of `training`: the search on validation, then the test
    split read once. `frozen`: the backbone's frozen inputs, shared by the
    run's trials (frozen.py), used where they match the trial's own."""
    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.frozen import record_fields, usable
    from tlbench.worker.training import evaluate, fit_and_select

    budget = spec.budget
    if spec.carried_rate is not None:  # searched at a smaller batch size (driver/carry.py): this rate alone
        budget = replace(budget, learning_rates={"finetune": (spec.carried_rate.base_learning_rate,)})
    backbone = get_backbone(spec.backbone)
    split, path = accuracy_path(setup.classifier, setup.module_path, backbone, setup.train, setup.val)
    shared, shared_note = usable(frozen, setup.classifier, setup.train, split, path["boundary_layer"])
    search = fit_and_select(
        setup.classifier,
        setup.train,
        setup.val,
        mode=spec.mode,
        batch_size=spec.batch_size,
        budget=budget,
        seed=spec.seed,
        split=split,
        shared=shared,
    )
    # The rebuilt backbone and the activations of a boundary search (tf.functions hold them in cycles) go
    # now, before the timed passes measure what is resident.
    del split
    gc.collect()
    # The one look at test: where the chosen weights are the probe's, on the shared test features.
    test_features = (shared or {}).get("features", {}).get("test") if search.probed else None
    if test_features is not None:
        test_inputs, test_passes = "features", 1
        labels = setup.test.labels.astype("int32")
        test = evaluate(setup.classifier.predict_from_features, [(test_features, labels)])
    else:
        test = evaluate(setup.classifier.predict, setup.test.batches(spec.batch_size))
        test_inputs, test_passes = "images", setup.test.passes
    return {
        **path,
        "frozen_inputs": record_fields(frozen, shared, shared_note, search.probe_shared),
        "probe_penalty": search.probe_penalty,
        "probe_search": search.probe_candidates,
        "learning_rate": search.learning_rate,
        "base_learning_rate": search.base_learning_rate,
        "learning_rate_rule": LEARNING_RATE_RULE,
        "lr_search": search.candidates,
        "max_epochs": budget.epochs(spec.mode),
        "patience": budget.stage_patience(spec.mode),
        "kept_epoch": search.kept_epoch,
        "batch_norm_momentum": spec.protocol.batch_norm_momentum,
        "train_accuracy": search.train.accuracy,
        "val_accuracy": search.val.accuracy,
        "val_loss": search.val.loss,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_passes": test_passes,  # 1: the test split was read once, after every choice
        "test_inputs": test_inputs,
        "feature_seconds": search.feature_seconds,
        "time_to_accuracy_seconds": search.time_to_accuracy_seconds,
    }


def throughput_figures(timed: dict, cost: dict, peak: PeakFlops, batch_size: int) -> dict:
    """Achieved FLOP/s and model FLOP utilisation of the timed passes."""
    train = timed["train_images_per_sec"] * cost["train_flops_per_image"]
    infer = timed["infer_images_per_sec"] * cost["forward_flops_per_image"]
    return {
        "train_flops_per_sec": train,
        "infer_flops_per_sec": infer,
        "peak_flops_per_sec": peak.flops_per_sec,
        "peak_flops_method": peak.method,
        "peak_flops_probes": list(peak.probes),
        "train_mfu": train / peak.flops_per_sec,
        "infer_mfu": infer / peak.flops_per_sec,
    }


def timed_passes(classifier, pipeline, batch_size: int, plan: TimingPlan, memory, seed: int) -> dict:
    """Throughput and memory of the compiled steps the trial trains with.

    Training: the model's train step (forward, backward of what the mode
    trains, optimizer; for transfer too: that is what training from images
    costs) on a cycle of
    distinct batches from the trial's pipeline, with the memory it adds to
    what is resident before it. Inference is a separate pass with its own peak.
    A pass `stability` judges unstable (spread over windows, other processes'
    CPU) is timed again (measure.time_until_stable); the peak is over every
    attempt, the same steps.
    """
    import tensorflow as tf

    sync = tf.test.experimental.sync_devices
    train_stream = pipeline.timed_batches(batch_size, seed=seed)
    infer_stream = pipeline.timed_batches(batch_size, seed=seed + 1)
    # One step of each before the baseline (tracing: transfer trained the head
    # alone so far), so that the baseline is what a step starts from.
    classifier.train_step(*next(train_stream))
    classifier.predict(next(infer_stream)[0])
    sync()

    memory.reset()
    baseline = memory.in_use()  # weights, optimizer slots, cached data: what a step starts from
    train = time_until_stable(lambda: classifier.train_step(*next(train_stream)), plan, batch_size, sync=sync)
    peak, method = memory.peak()
    peak_rss = memory.rss.peak_bytes()  # over the same steps: the allocator's bytes and the runtime's

    memory.reset()
    infer_baseline = memory.in_use()
    infer = time_until_stable(lambda: classifier.predict(next(infer_stream)[0]), plan, batch_size, sync=sync)
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
        "runtime_overhead_bytes": max(peak_rss - peak, 0) if memory.allocator else None,
    }
