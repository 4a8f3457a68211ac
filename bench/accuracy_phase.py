"""One arm of bench/test_accuracy_phase.py, in a process of its own: a
trial's learning-rate search (`training.fit_and_select`) for a stand-in
backbone on the embedded digits, by today's protocol or the one before it.

    python bench/accuracy_phase.py BACKBONE MODE PROTOCOL TRAIN VAL BATCH

PROTOCOL "before": every fine-tuning rate runs every epoch, on images.
PROTOCOL "now": successive halving, and a partial mode on cached boundary
activations where the backbone can be cut (boundary.accuracy_path). Prints
{"seconds", "accuracy_path", "base_learning_rate", "kept_epoch",
"val_accuracy", "val_loss", "epochs"} as JSON: seconds from the search's
start (its cut and activations included) to its choice.
"""

from __future__ import annotations

import json
import sys
import time


def main(backbone_name: str, mode: str, protocol: str, train_images: int, val_images: int, batch_size: int) -> dict:
    import numpy as np

    import tlbench  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow

    # isort: split
    import tensorflow as tf

    # Both protocols on the same trajectories: with threads' reductions in any
    # order, a stand-in's near-chance validation losses tie and flip a choice.
    tf.config.experimental.enable_op_determinism()
    from tlbench import data
    from tlbench.plan import BUDGETS
    from tlbench.registry import get_backbone
    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.model import Classifier
    from tlbench.worker.pipeline import SplitPipeline
    from tlbench.worker.training import fit_and_select
    from tlbench.worker.weights import export_standin

    backbone = get_backbone(backbone_name)
    module = str(export_standin(backbone))
    images = data.open_dataset(data.EMBEDDED)
    train = SplitPipeline(images, np.arange(train_images), backbone.image_size)
    val = SplitPipeline(images, np.arange(train_images, train_images + val_images), backbone.image_size)
    for split in (train, val):  # decoded and cached before the clock starts, as in a trial's load
        for _ in split.batches(batch_size):
            pass
    classifier = Classifier(module, backbone.image_size, images.num_classes, mode, ladder=backbone.ladder)
    started = time.perf_counter()
    cut, path = accuracy_path(classifier, module, backbone, train, val) if protocol == "now" else (None, {})
    search = fit_and_select(
        classifier, train, val, mode=mode, batch_size=batch_size, budget=BUDGETS["cpu"], seed=0,
        split=cut, halving=protocol == "now",
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - started,
        "accuracy_path": path.get("accuracy_path", "images" if mode != "transfer" else "features"),
        "base_learning_rate": search.base_learning_rate,
        "kept_epoch": search.kept_epoch,
        "val_accuracy": search.val.accuracy,
        "val_loss": search.val.loss,
        "epochs": sum(candidate["epochs_run"] for candidate in search.candidates),
    }


if __name__ == "__main__":
    backbone, mode, protocol, train, val, batch = sys.argv[1:]
    print(json.dumps(main(backbone, mode, protocol, int(train), int(val), int(batch))))
