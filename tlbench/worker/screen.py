"""The worker's side of `screen`: one backbone, one features pass over the
train and validation images, and what it tells before anything trains —
a ridge probe's validation accuracy and LogME (linear.py), the pass's
images/s and the allocator's peak during it."""

from __future__ import annotations

import time

from tlbench import data
from tlbench.errors import described
from tlbench.plan import TrialSpec

BATCH = 32  # images per forward pass, as the run's shared frozen inputs (frozen.BATCH)


def screen_backbone(spec: TrialSpec, images: data.ImageSet) -> dict:
    """{"backbone", "status", ...figures} of `spec`'s backbone (its mode
    transfer); status "error" with the error, never raises."""
    started = time.perf_counter()
    result: dict = {"backbone": spec.backbone, "weights": spec.module.weights}
    try:
        from tlbench.worker.devices import configure_devices
        from tlbench.worker.frozen import linear_answer, parts
        from tlbench.worker.training import FeatureSplit
        from tlbench.worker.trial import load

        result["device"] = configure_devices(spec.device_memory)
        setup = load(spec, images)
        extract = setup.classifier.extract_features
        for _, split in parts(setup):  # decoded and cached first: the pass below times the backbone alone
            for _ in split.batches(BATCH):
                pass
        extract(next(iter(setup.train.batches(BATCH)))[0])  # traced before the clock starts
        setup.memory.reset()
        pass_started = time.perf_counter()
        features = {name: FeatureSplit(extract, split, BATCH).features.numpy() for name, split in parts(setup)}
        seconds = time.perf_counter() - pass_started
        peak, method = setup.memory.peak()
        result.update(
            status="ok",
            **linear_answer(features, setup.train.labels, setup.val.labels),
            infer_images_per_sec=(setup.train.size + setup.val.size) / seconds,
            peak_memory_bytes=peak,
            memory_method=method,
            feature_dim=setup.classifier.feature_dim,
            image_size=setup.classifier.image_size,
            images={"train": setup.train.size, "val": setup.val.size},
        )
    except Exception as failure:  # noqa: BLE001 - one backbone's failure is its row, not the screen's end
        result.update(status="error", error=described(failure))
    result["seconds"] = time.perf_counter() - started
    return result
