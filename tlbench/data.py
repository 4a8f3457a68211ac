"""Datasets and their splits, without TensorFlow.

A dataset is the embedded default (scikit-learn's bundled handwritten digits:
1,797 real 8x8 grey images, 10 classes), an image folder with one sub-folder
per class, or a TensorFlow Datasets dataset by name (`tfds:NAME`, written once
as an image folder by `worker/tfds_export.py`, run through `isolated`). Each
is checked here, in the driver, before any trial starts;
`worker/pipeline.py` turns a split into a `tf.data` pipeline in the worker.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tlbench.errors import UsageError
from tlbench.imagefolder import FolderScan, decode_verdicts, printable

if TYPE_CHECKING:
    from tlbench.plan import Budget, Protocol

EMBEDDED = "digits"
TFDS_PREFIX = "tfds:"
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}  # the rest trains
MIN_IMAGES_PER_CLASS = 3  # one each for train, validation and test


@dataclass(frozen=True)
class ImageSet:
    """A whole dataset: either arrays (grey or RGB floats in [0, 1]) or files."""

    name: str
    class_names: tuple[str, ...]
    labels: np.ndarray  # int32, one per image
    arrays: np.ndarray | None = None  # (n, h, w) or (n, h, w, 3) float32 in [0, 1]
    paths: tuple[str, ...] | None = None  # image files, decoded by the pipeline
    skipped_files: int = 0  # files in the folder that are not usable images
    skipped: dict = field(default_factory=dict)  # {reason: files}, adding up to skipped_files
    skipped_examples: dict = field(default_factory=dict)  # {reason: a few of those files, printable}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def items(self, indices: np.ndarray):
        """The images (arrays) or file paths at `indices`; paths as bytes
        (`os.fsencode`), which tf.data takes whatever the names' encoding."""
        if self.arrays is not None:
            return self.arrays[indices]
        return np.array([os.fsencode(path) for path in self.paths], dtype=object)[indices]

    def skipped_summary(self) -> str | None:
        """One line: how many files were skipped, why, and a few of them."""
        if not self.skipped_files:
            return None
        parts = []
        for reason, count in sorted(self.skipped.items(), key=lambda item: -item[1]):
            examples = self.skipped_examples.get(reason, [])
            more = ", ..." if count > len(examples) else ""
            parts.append(f"{count} {reason} ({', '.join(examples)}{more})")
        return f"{self.skipped_files} file(s) of '{printable(self.name)}' skipped: {'; '.join(parts)}"


@dataclass(frozen=True)
class Splits:
    """Indices into an ImageSet; disjoint, each stratified by class."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def class_counts(self, labels: np.ndarray, num_classes: int) -> dict:
        """Images per class in each split: {split: [count of class 0, ...]}."""
        return {
            name: np.bincount(labels[indices], minlength=num_classes).tolist()
            for name, indices in (("train", self.train), ("val", self.val), ("test", self.test))
        }


def is_named(dataset: str) -> bool:
    """The embedded default or a TFDS name, rather than a folder."""
    return dataset == EMBEDDED or dataset.startswith(TFDS_PREFIX)


def tfds_installed() -> bool:
    return importlib.util.find_spec("tensorflow_datasets") is not None


def open_dataset(name_or_folder: str) -> ImageSet:
    """The embedded default, a TFDS dataset or an image folder; bad input
    raises UsageError."""
    check_given(name_or_folder)
    if name_or_folder == EMBEDDED:
        return load_digits()
    if name_or_folder.startswith(TFDS_PREFIX):
        name = name_or_folder.removeprefix(TFDS_PREFIX)
        if not name:
            raise UsageError("--dataset tfds:NAME needs a name, e.g. tfds:beans or tfds:tf_flowers")
        return replace(load_image_folder(tfds_folder(name)), name=name_or_folder)
    path = Path(name_or_folder)
    if not exists(path):
        hint = f"did you mean '{EMBEDDED}'? " if difflib.get_close_matches(name_or_folder, [EMBEDDED]) else ""
        raise UsageError(
            f"dataset '{name_or_folder}' is neither '{EMBEDDED}' nor an existing folder; {hint}"
            f"give '{EMBEDDED}', a folder with one sub-folder per class, or tfds:NAME"
        )
    if not path.is_dir():
        raise UsageError(f"dataset '{name_or_folder}' is a file; give a folder with one sub-folder per class")
    return load_image_folder(path)


def check_given(dataset: str) -> str:
    """An empty --dataset would be the current folder: refused."""
    if not dataset:
        raise UsageError(
            f"--dataset is empty; give '{EMBEDDED}', a folder with one sub-folder per class (e.g. '.'), or tfds:NAME"
        )
    return dataset


def tfds_folder(name: str) -> Path:
    """The image folder of TFDS dataset `name`, written on first use (in a
    fresh process: preparing it imports TensorFlow)."""
    from tlbench import isolated

    if not tfds_installed():
        raise UsageError(
            f"dataset '{TFDS_PREFIX}{name}' needs tensorflow-datasets, which is not installed: "
            "pip install tensorflow-datasets (or tlbench[tfds])"
        )
    return Path(isolated.call("tlbench.worker.tfds_export:export", name))


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except (ValueError, OSError):  # a NUL byte, a name too long for the filesystem
        return False


def load_digits() -> ImageSet:
    from sklearn.datasets import load_digits as sklearn_digits  # ships with scikit-learn

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    return ImageSet(
        name=EMBEDDED,
        class_names=tuple(str(c) for c in digits.target_names),
        labels=digits.target.astype(np.int32),
        arrays=images,
    )


def load_image_folder(root: Path) -> ImageSet:
    """One class per sub-folder (nested folders inside it count for it).
    Used: regular files named as images that TensorFlow decodes as a trial
    does. Everything else is skipped and counted by reason; hidden folders
    are left out."""
    scan = FolderScan(root)
    class_dirs = scan.class_folders()
    if len(class_dirs) < 2:
        raise UsageError(
            f"dataset folder '{printable(str(root))}' has {len(class_dirs)} class sub-folder(s); at least 2 are needed"
        )
    candidates = [(label, *found) for label, folder in enumerate(class_dirs) for found in scan.files(folder.path)]
    verdicts = decode_verdicts(root, {path: stamp for _, path, stamp in candidates})
    paths, labels = [], []
    for label, path, _ in candidates:
        if verdicts[path] is None:
            paths.append(path)
            labels.append(label)
        else:
            scan.skip(verdicts[path], path)
    labels = np.array(labels, dtype=np.int32)
    class_names = tuple(printable(folder.name) for folder in class_dirs)
    for name, count in zip(class_names, np.bincount(labels, minlength=len(class_dirs))):
        if count < MIN_IMAGES_PER_CLASS:
            raise UsageError(
                f"class '{name}' in '{printable(str(root))}' has {count} usable image(s); "
                f"at least {MIN_IMAGES_PER_CLASS} are needed for train/validation/test splits"
            )
    return ImageSet(
        name=str(root),
        class_names=class_names,
        labels=labels,
        paths=tuple(paths),
        skipped_files=sum(scan.skipped.values()),
        skipped=dict(scan.skipped),
        skipped_examples=scan.examples,
    )


def budget_warning(images: ImageSet, protocol: Protocol, budget: Budget) -> str | None:
    """One line when the budget's caps (and --train-size) leave classes of the
    dataset without a training image, else None."""
    train = capped_splits(images, protocol.split_seed, protocol.max_train_images(budget), budget.max_eval_images).train
    empty = int(np.count_nonzero(np.bincount(images.labels[train], minlength=images.num_classes) == 0))
    if not empty:
        return None
    if budget.name == "quick":
        hint = "run without --quick"
    elif protocol.train_size is not None:
        hint = "give a larger --train-size"
    else:
        hint = "use fewer classes, or GPUs (their budget trains on every image)"
    return (
        f"the '{budget.name}' budget trains on {len(train)} images, which leaves {empty} of the "
        f"{images.num_classes} classes of '{printable(images.name)}' without a training image: "
        f"accuracies say little; {hint}"
    )


def check_train_size(images: ImageSet, train_size: int | None) -> None:
    """--train-size must leave every class at least one training image."""
    if train_size is not None and train_size < images.num_classes:
        raise UsageError(
            f"--train-size {train_size} is less than the {images.num_classes} classes of '{images.name}'; "
            f"give at least {images.num_classes}"
        )


def split(labels: np.ndarray, seed: int) -> Splits:
    """Stratified train/validation/test split: within each class, a seeded
    shuffle, then 15% validation, 15% test (at least one each), rest train."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = max(1, round(len(members) * SPLIT_FRACTIONS["val"]))
        n_test = max(1, round(len(members) * SPLIT_FRACTIONS["test"]))
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val : n_val + n_test])
        parts["train"].append(members[n_val + n_test :])
    return Splits(**{name: np.sort(np.concatenate(p)) for name, p in parts.items()})


def stratified_subset(indices: np.ndarray, labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most `limit` of `indices`, keeping class proportions (largest
    remainder), chosen with a seeded shuffle. `None` keeps them all."""
    if limit is None or len(indices) <= limit:
        return indices
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels[indices], return_counts=True)
    exact = counts * limit / len(indices)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota))[: limit - quota.sum()]:
        quota[i] += 1
    chosen = [rng.permutation(indices[labels[indices] == c])[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def capped_splits(images: ImageSet, seed: int, max_train: int | None, max_eval: int | None) -> Splits:
    """The seeded stratified split, each part capped by the run's budget."""
    full = split(images.labels, seed)
    return Splits(
        train=stratified_subset(full.train, images.labels, max_train, seed),
        val=stratified_subset(full.val, images.labels, max_eval, seed),
        test=stratified_subset(full.test, images.labels, max_eval, seed),
    )
