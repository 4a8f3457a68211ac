"""Frozen work once per backbone per run: the backbone's features of the
train, validation and test images, for the partial modes the activations at
their boundary (boundary.py), and the linear probe's path on the features
(linear.logistic_path), computed by one task and shared by every trial of
that backbone (each batch size, seed and mode), through Ray's object store
(driver/cluster.py), where trials on other nodes pull it.

Where the backbone is cut, each image goes through it once: the features are
the part above the boundary run on the cached activations, checked against
the module's own (else the module computes them, as where it can't be cut).

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
from tlbench.registry import MODES, get_backbone

BATCH = 32  # images per forward pass of the shared computation
CHECKED_IMAGES = 8  # a trial compares this many images' features with its own
TOLERANCE = 1e-4  # largest difference accepted (a converted TF1 module's own, convert.py), scaled (boundary.agree)


def compute(spec: TrialSpec, images: data.ImageSet, modes: list) -> dict:
    """In a worker: the frozen inputs of every trial like `spec` (the same
    plan.TrialSpec.frozen_key) in `modes`, and the linear probe's path on
    them. Never raises: a failure is returned, and the trials compute their
    own."""
    import ray

    started = time.perf_counter()
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None  # None: called outside Ray
    shared = {"computation": uuid.uuid4().hex[:12], "node_id": node}
    try:
        from tlbench.linear import logistic_path
        from tlbench.worker.devices import configure_devices
        from tlbench.worker.trial import load

        configure_devices(spec.device_memory)
        setup = load(replace(spec, mode="transfer"), images)
        # What a trial spends before its first figure too: its process's start-up and the same load.
        shared["setup_seconds"] = time.perf_counter() - started
        activations, cuts = boundary_activations(spec, images, modes)
        features, cut, seconds, top_seconds = _features(setup, activations, cuts)
        shared["features_via"] = f"boundary:{activations[cut]['layer']}" if cut else "module"
        # Every image went through the whole backbone once, in its two parts where it was cut.
        per_image = seconds / sum(len(f) for f in features.values())
        shared["feature_images_per_sec"] = 1 / per_image
        shared["top_share"] = top_shares(cuts, activations, per_image, {cut: top_seconds / seconds} if cut else {})
        shared.update(linear_answer(features, setup.train.labels, setup.val.labels))
        # A convex fit on the same features gives every trial the same path: fitted once, each trial chooses on it.
        fits = logistic_path(features["train"], setup.train.labels, images.num_classes, spec.budget.probe_penalties)
        probe = {"penalties": tuple(spec.budget.probe_penalties), "fits": fits}
        return {**shared, "features": features, "activations": activations, "probe": probe, **_ended(started)}
    except Exception as failure:  # noqa: BLE001 - the trials then compute their own
        return {**shared, "error": described(failure), **_ended(started)}


def boundary_activations(spec: TrialSpec, images: data.ImageSet, modes: list) -> tuple[dict, dict]:
    """({mode: {"layer", "train", "val"}}, {mode: (its boundary.Split, the
    seconds of its bottom's pass)}) of the partial modes among `modes` whose
    backbone can be cut."""
    from tlbench.worker.boundary import Activations, accuracy_path
    from tlbench.worker.trial import load

    activations, cuts, backbone = {}, {}, get_backbone(spec.backbone)
    for mode in sorted(set(modes) & {"last_block", "last_stage"}):
        partial = load(replace(spec, mode=mode), images)
        split, path = accuracy_path(partial.classifier, partial.module_path, backbone, partial.train, partial.val)
        if split is not None:
            began = time.perf_counter()
            cached = {name: Activations(split, part, BATCH).values.numpy() for name, part in parts(partial)}
            activations[mode] = {"layer": path["boundary_layer"], **cached}
            cuts[mode] = (split, time.perf_counter() - began)
    return activations, cuts


def _features(setup, activations: dict, cuts: dict) -> tuple[dict, str | None, float, float]:
    """({split: features}, the partial mode whose cut computed them or None
    for the module, the seconds of a whole backbone's pass over every image,
    the seconds of that pass's top part). Where the backbone was cut, the
    features are the top's on the boundary activations (cached for training
    and validation; computed for test), at the highest boundary (the least
    left to run), checked against the module's own on the first images;
    else the module's."""
    import tensorflow as tf

    from tlbench.worker.boundary import Activations
    from tlbench.worker.training import FeatureSplit

    module = setup.classifier.extract_features
    # Test's features too: a trial whose chosen weights are the probe's is tested on them (no choice reads them).
    splits = (*parts(setup), ("test", setup.test))
    for mode in sorted(cuts, key=MODES.index):  # last_block before last_stage
        (split, bottom_seconds), cached = cuts[mode], activations[mode]
        top = tf.function(lambda a, split=split: split.top(a, training=False))
        began = time.perf_counter()
        # Test's activations are not cached: its bottom's pass runs here.
        on_boundary = {name: Activations(split, part, BATCH, cached.get(name)) for name, part in splits}
        top_began = time.perf_counter()
        features = {name: FeatureSplit(top, values, BATCH).features.numpy() for name, values in on_boundary.items()}
        ended = time.perf_counter()
        first, _ = next(iter(setup.train.batches(CHECKED_IMAGES)))
        if not _differs(module(first).numpy(), features["train"][: len(first)]):
            return features, mode, bottom_seconds + ended - began, ended - top_began
    began = time.perf_counter()
    features = {name: FeatureSplit(module, split, BATCH).features.numpy() for name, split in splits}
    return features, None, time.perf_counter() - began, 0.0


def top_shares(cuts: dict, activations: dict, whole_seconds: float, timed: dict) -> dict:
    """{partial mode: the share of a forward pass above its boundary}, what a
    step on its cached activations runs (driver/estimate.py): `timed` where
    the top's pass was timed itself, else one less its bottom's seconds per
    image (train and validation) over a whole pass's (`whole_seconds` per
    image)."""
    shares = {}
    for mode, (_, bottom_seconds) in cuts.items():
        images = len(activations[mode]["train"]) + len(activations[mode]["val"])
        shares[mode] = timed.get(mode, min(max(1 - bottom_seconds / images / whole_seconds, 0.0), 1.0))
    return shares


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
    use = {"features": shared["features"], "activations": None, "probe": shared.get("probe")}
    if split is not None:
        cached = shared["activations"].get(classifier.mode)
        if cached is None or cached["layer"] != layer:
            return use, "activations not shared for this mode: computed by the trial"
        if _differs(split.bottom(first, training=False).numpy(), cached["train"][: len(own)]):
            return use, "the shared activations differ from the trial's own: computed by the trial"
        use["activations"] = cached
    return use, ""


def _differs(own: np.ndarray, shared: np.ndarray) -> bool:
    from tlbench.worker.boundary import agree

    return not agree(own, shared, TOLERANCE)


def record_fields(frozen: dict | None, shared: dict | None, note: str, probe_shared: bool = False) -> dict:
    """The record's `frozen_inputs`: whether the trial used the shared
    features (and activations, and the probe's path), which computation made
    them, how, where, how long it took, when it ended and the early answer
    it gave (None where it failed)."""
    told = ("computation", "node_id", "seconds", "finished_at", "features_via")
    told += ("logme", "ridge_val_accuracy", "feature_images_per_sec", "setup_seconds", "top_share")
    return {
        "shared": shared is not None,
        "activations_shared": bool(shared and shared["activations"] is not None),
        "probe_shared": probe_shared,
        **{key: frozen.get(key) if frozen else None for key in told},
        "note": note or None,
    }
