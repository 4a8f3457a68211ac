"""Trial records made by hand for the tests, and records read back from a run
folder: one place for both, shared by every tier.

- `record`: the keys every record has (those `read_run` requires), then any
  field a test gives.
- `trial`: a record of one trial of a grid, its id made from its
  configuration and seed as `tlbench.plan.trial_id` makes it.
- `measured` / `seeds`: a finished trial with its three headline figures
  (accuracy, training images/s, peak memory), for one seed or several.
- `DECIDE_RECORDS`: a grid whose recommendation tests/unit/test_decide.py
  works out by hand, which the report's tests write as a run.
- `run_all`: the records of a `run --all` as its trials write them, every
  field the tables show; `RUN_ALL_RECORDS` on stand-ins and on pretrained
  weights.
- `read_records`: every line of a run folder's trials.jsonl, in order.
"""

from __future__ import annotations

import json
from pathlib import Path

from tlbench import record as _record
from tlbench.plan import trial_id as _trial_id
from tlbench.registry import MODES
from tlbench.results import TRIALS

MIB = 2**20


def record(trial_id: str = "t", **fields) -> dict:
    """The required keys (a ResNet V2 50 in transfer at batch 16 on digits,
    `ok`) and `fields`, which override them."""
    return {
        "trial_id": trial_id,
        "backbone": "resnet_v2_50",
        "mode": "transfer",
        "batch_size": 16,
        "dataset": "digits",
        "status": "ok",
        **fields,
    }


def trial(
    backbone: str,
    mode: str,
    batch_size: int,
    seed: int,
    *,
    dataset: str = "digits",
    status: str = "ok",
    weights: str = "tfhub:x",
    device: str = "CPU:x",
    **fields,
) -> dict:
    """A record of the trial (backbone, mode, batch size, seed) of a grid,
    with what every trial records about where it ran, and `fields`."""
    return record(
        _trial_id(backbone, mode, batch_size, dataset, seed),
        backbone=backbone,
        mode=mode,
        batch_size=batch_size,
        dataset=dataset,
        seed=seed,
        status=status,
        weights=weights,
        device=device,
        **fields,
    )


def measured(backbone, mode, batch_size, seed, accuracy, train, memory, **fields) -> dict:
    """A trial with its figures: `accuracy` on validation and test, `train`
    images/s (inference twice as fast), `memory` bytes at the peak. None
    for each, with status="oom", is a trial that ran out of memory."""
    return trial(
        backbone,
        mode,
        batch_size,
        seed,
        test_accuracy=accuracy,
        val_accuracy=accuracy,
        train_images_per_sec=train,
        infer_images_per_sec=None if train is None else 2 * train,
        peak_memory_bytes=memory,
        **fields,
    )


def seeds(backbone, mode, batch_size, accuracies, train, memory, **fields) -> list[dict]:
    """One configuration over seeds 0, 1, ...: one accuracy each, the same
    speed and memory."""
    return [measured(backbone, mode, batch_size, s, a, train, memory, **fields) for s, a in enumerate(accuracies)]


# ResNet: more accurate beyond noise, slow and heavy; MobileNet: fast and
# light, its finetune dominated; ResNet finetune at batch 64 out of memory.
DECIDE_RECORDS = [
    *seeds("resnet", "finetune", 32, (0.95, 0.96, 0.97), 3.0, 5000 * MIB),
    *seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 8.0, 2600 * MIB),
    *seeds("mobilenet", "transfer", 32, (0.90, 0.91, 0.92), 560.0, 300 * MIB),
    *seeds("mobilenet", "finetune", 32, (0.89, 0.90, 0.91), 90.0, 900 * MIB),  # dominated
    measured("resnet", "finetune", 64, 0, None, None, None, status="oom"),
]


RUN_ALL_BACKBONES = ("resnet_v2_50", "mobilenet_v2_035_128")
DIGITS_TEST_COUNTS = [13] * 8 + [12] * 2  # the digits' test split: 128 images, 10 classes
LOADED = "other processes took 48 % of the CPU while timed (> 15 %)"


def _timing(rate: float, windows: int) -> dict:
    return {
        "repeats": windows,
        "window_steps_min": 10,
        "images_per_sec_median": rate,
        "images_per_sec_q1": rate * 0.94,
        "images_per_sec_q3": rate * 1.03,
    }


def _run_all_trial(backbone, mode, batch, seed, *, weights, windows, status="ok") -> dict:
    """A record as a trial of `run --all` writes it: the fields the tables show."""
    fields = trial(
        backbone,
        mode,
        batch,
        seed,
        weights=weights,
        device="CPU:AMD EPYC 7B13",
        status=status,
        seconds=61.0 + batch,
        num_classes=10,
        split_sizes={"train": 256, "val": 128, "test": 128},
        class_counts={"train": [26] * 6 + [25] * 4, "val": DIGITS_TEST_COUNTS, "test": DIGITS_TEST_COUNTS},
    )
    if status != "ok":
        error = "ResourceExhaustedError: OOM when allocating tensor" if status == "oom" else "RuntimeError: x"
        return _record.make(**fields, error=error)
    mobilenet = backbone.startswith("mobilenet")
    # MobileNet guesses (13 of 128 right: chance); ResNet learns.
    accuracy = 13 / 128 if mobilenet else 0.62 + 0.03 * MODES.index(mode) + 0.01 * seed
    train = (1234.5 if mode == "transfer" else 345.6) if mobilenet else 4.8 * batch / (1 + MODES.index(mode))
    return _record.make(
        **fields,
        error=None,
        val_accuracy=accuracy,
        test_accuracy=accuracy,
        train_images_per_sec=train,
        infer_images_per_sec=train * 1.7,
        train_timing=_timing(train, windows),
        infer_timing=_timing(train * 1.7, windows),
        train_mfu=0.152 if mobilenet else 0.528,
        peak_memory_bytes=(40 if mobilenet else 600) * 2**20 * batch // 8 * (1 + MODES.index(mode)),
        activation_memory_bytes=12 * 2**20 * batch,
        predicted_activation_bytes=10 * 2**20 * batch,
        time_to_accuracy_seconds=25.0,
        **(
            {"unstable": {"train_images_per_sec": LOADED}}
            if (backbone, mode, batch) == (RUN_ALL_BACKBONES[0], "transfer", 8)
            else {}
        ),
    )


def run_all(*, weights: str, windows: int) -> list[dict]:
    """2 backbones x 4 modes x 2 batch sizes x 2 seeds: ResNet finetune at
    batch 16 out of memory, one MobileNet trial failed."""
    trials = []
    for backbone in RUN_ALL_BACKBONES:
        for mode in MODES:
            for batch in (8, 16):
                for seed in (0, 1):
                    status = "ok"
                    if (backbone, mode, batch) == (RUN_ALL_BACKBONES[0], "finetune", 16):
                        status = "oom"
                    elif (backbone, mode, batch, seed) == (RUN_ALL_BACKBONES[1], "last_stage", 8, 1):
                        status = "error"
                    trials.append(
                        _run_all_trial(backbone, mode, batch, seed, weights=weights, windows=windows, status=status)
                    )
    return trials


# A quick run on stand-ins (smoke figures, chance-level MobileNet) and a
# measured one on pretrained weights: the widest cells either has.
RUN_ALL_RECORDS = {
    "stand-ins, quick": run_all(weights="standin:random-init", windows=1),
    "pretrained": run_all(weights="tfhub:https://tfhub.dev/google/x/feature_vector/5", windows=3),
}


def read_records(run_dir: str | Path) -> list[dict]:
    """Every record of a run folder's trials.jsonl, in the order written."""
    return [json.loads(line) for line in (Path(run_dir) / TRIALS).read_text().splitlines()]
