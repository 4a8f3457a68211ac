"""Frozen work once per backbone per run: the backbone's features of the
train, validation and test images, and for the partial modes the activations at
their boundary (boundary.py), computed by one task and shared by every trial
of that backbone (each batch size, seed and mode), through Ray's object
store (driver/cluster.py), where trials on other nodes pull it.

What is shared is what a trial would compute itself: the same module, images
and split, in inference mode. A trial checks the first images' features (and
activations) against its own before it uses them, and computes them itself
when they don't match or the task failed; its record says which
(`frozen_inputs`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import numpy as np

from tlbench import data
from tlbench.errors import described
from tlbench.plan import TrialSpec
from tlbench.record import utc_now
from tlbench.registry import get_backbone

BATCH = 32  # images per forward pass of the shared computation
CHECKED_IMAGES = 8  # a trial compares this many images' features with its own
TOLERANCE = 1e-4  # largest absolute difference accepted (a converted TF1 module's own, convert.py)


def compute(spec: TrialSpec, images: data.ImageSet, modes: list) -> dict:
    """In a worker: the frozen inputs of every trial like `spec` (the same
    plan.TrialSpec.frozen_key) in `modes`. Never raises: a failure is
    returned, and the trials compute their own."""
    import ray

    started = time.perf_counter()
    shared = {"computation": uuid.uuid4().hex[:12], "node_id": ray.get_runtime_context().get_node_id()}
    try:
        from tlbench.worker.boundary import Activations, accuracy_path
        from tlbench.worker.devices import configure_devices
        from tlbench.worker.training import FeatureSplit
        from tlbench.worker.trial import load

        configure_devices(spec.device_memory)
        setup = load(replace(spec, mode="transfer"), images)
        extract = setup.classifier.extract_features
        pass_started = time.perf_counter()
        # Test's features too: a trial whose chosen weights are the probe's is tested on them (no choice reads them).
        splits = (*parts(setup), ("test", setup.test))
        features = {name: FeatureSplit(extract, split, BATCH).features.numpy() for name, split in splits}
        shared["feature_images_per_sec"] = sum(s.size for _, s in splits) / (time.perf_counter() - pass_started)
        shared.update(linear_answer(features, setup.train.labels, setup.val.labels))
        activations, backbone = {}, get_backbone(spec.backbone)
        for mode in sorted(set(modes) & {"last_block", "last_stage"}):
            partial = load(replace(spec, mode=mode), images)
            split, path = accuracy_path(partial.classifier, partial.module_path, backbone, partial.train, partial.val)
            if split is not None:
                cached = {name: Activations(split, part, BATCH).values.numpy() for name, part in parts(partial)}
                activations[mode] = {"layer": path["boundary_layer"], **cached}
        return {**shared, "features": features, "activations": activations, **_ended(started)}
    except Exception as failure:  # noqa: BLE001 - the trials then compute their own
        return {**shared, "error": described(failure), **_ended(started)}


def _ended(started: float) -> dict:
    """How long the computation took and when it ended: the moment its early answer came (reports/timing.py)."""
    return {"seconds": time.perf_counter() - started, "finished_at": utc_now()}


def linear_answer(features: dict, train_labels, val_labels) -> dict:
    """What the features say before anything trains (the run's early
    answer): LogME on the training images, and a ridge probe's validation
    accuracy (linear.py)."""
    from tlbench.linear import logme, ridge_probe

    probe = ridge_probe(features["train"], train_labels, features["val"], val_labels)
    return {"logme": logme(features["train"], train_labels), "ridge_val_accuracy": probe.val_accuracy}


def parts(setup) -> tuple:
    """The splits a search reads: (name, pipeline) of train and validation."""
    return ("train", setup.train), ("val", setup.val)


def usable(shared: dict | None, classifier, train, split=None, layer: str | None = None) -> tuple[dict | None, str]:
    """(the shared arrays this trial can use, why not otherwise): the first
    images' features, and the activations at `split`'s boundary, checked
    against what this trial's own classifier computes."""
    if shared is None:
        return None, "not shared: computed by the trial"
    if "error" in shared:
        return None, f"the shared computation failed ({shared['error']}): computed by the trial"
    first, _ = next(iter(train.batches(CHECKED_IMAGES)))
    own = classifier.extract_features(first).numpy()
    if _differs(own, shared["features"]["train"][: len(own)]):
        return None, "the shared features differ from the trial's own: computed by the trial"
    use = {"features": shared["features"], "activations": None}
    if split is not None:
        cached = shared["activations"].get(classifier.mode)
        if cached is None or cached["layer"] != layer:
            return use, "activations not shared for this mode: computed by the trial"
        if _differs(split.bottom(first, training=False).numpy(), cached["train"][: len(own)]):
            return use, "the shared activations differ from the trial's own: computed by the trial"
        use["activations"] = cached
    return use, ""


def _differs(own: np.ndarray, shared: np.ndarray) -> bool:
    return own.shape != shared.shape or not float(np.abs(own - shared).max()) <= TOLERANCE


def record_fields(frozen: dict | None, shared: dict | None, note: str) -> dict:
    """The record's `frozen_inputs`: whether the trial used the shared
    features (and activations), which computation made them, where, how long
    it took, when it ended and the early answer it gave (None where it failed)."""
    told = ("computation", "node_id", "seconds", "finished_at", "logme", "ridge_val_accuracy", "feature_images_per_sec")
    return {
        "shared": shared is not None,
        "activations_shared": bool(shared and shared["activations"] is not None),
        **{key: frozen.get(key) if frozen else None for key in told},
        "note": note or None,
    }
