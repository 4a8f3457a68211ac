"""Datasets without image files to decode: the embedded digits, splits and
their caps, class counts, the budget's warning, names that are no dataset.
Image folders (their files checked by TensorFlow's decoder in a fresh
process) and TFDS: tests/worker/test_image_folders.py; the command and a run
on a dataset: tests/system/test_dataset_run.py."""

import numpy as np
import pytest

from tlbench import data
from tlbench.errors import UsageError


@pytest.fixture(scope="module")
def digits():
    return data.open_dataset("digits")


def test_embedded_default_is_real_images(digits):
    assert len(digits.labels) >= 1000 and digits.num_classes >= 3
    assert digits.arrays.dtype == np.float32
    assert digits.arrays.min() == 0.0 and digits.arrays.max() == 1.0
    assert len(np.unique(digits.arrays.reshape(len(digits.labels), -1), axis=0)) > 1000  # not synthetic copies


def test_split_is_disjoint_complete_stratified_and_seeded(digits):
    splits = data.split(digits.labels, seed=0)
    parts = [set(splits.train), set(splits.val), set(splits.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(len(digits.labels)))
    overall = np.bincount(digits.labels) / len(digits.labels)
    for indices in (splits.train, splits.val, splits.test):
        share = np.bincount(digits.labels[indices], minlength=digits.num_classes) / len(indices)
        assert np.abs(share - overall).max() < 0.02
    again = data.split(digits.labels, seed=0)
    assert np.array_equal(again.test, splits.test)
    assert not np.array_equal(data.split(digits.labels, seed=1).test, splits.test)


def test_capped_splits_keep_class_proportions(digits):
    splits = data.capped_splits(digits, seed=0, max_train=64, max_eval=32)
    assert splits.sizes() == {"train": 64, "val": 32, "test": 32}
    counts = np.bincount(digits.labels[splits.train], minlength=10)
    assert counts.min() >= 6 and counts.max() <= 7
    full = data.split(digits.labels, seed=0)
    assert set(splits.train) <= set(full.train) and set(splits.test) <= set(full.test)
    assert data.capped_splits(digits, 0, None, None).sizes() == full.sizes()


def test_missing_dataset_and_file_dataset(tmp_path):
    with pytest.raises(UsageError, match="neither 'digits' nor an existing folder"):
        data.open_dataset(str(tmp_path / "absent"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        data.open_dataset(str(tmp_path / "file"))


def test_class_counts_per_split_and_the_train_size_cap(digits):
    splits = data.capped_splits(digits, seed=0, max_train=40, max_eval=None)
    counts = splits.class_counts(digits.labels, digits.num_classes)
    assert {name: sum(c) for name, c in counts.items()} == splits.sizes() and splits.sizes()["train"] == 40
    assert min(counts["train"]) == 4 and max(counts["train"]) == 4  # 40 over 10 classes, stratified
    data.check_train_size(digits, 10)
    with pytest.raises(UsageError, match="--train-size 9 is less than the 10 classes"):
        data.check_train_size(digits, 9)


def test_the_budget_warns_when_its_caps_leave_classes_without_training_images(tmp_path):
    from tlbench.plan import BUDGETS, Protocol

    many = data.ImageSet("many", tuple(map(str, range(1000))), np.repeat(np.arange(1000, dtype=np.int32), 5))
    warning = data.budget_warning(many, Protocol(), BUDGETS["quick"])
    assert warning == (
        "the 'quick' budget trains on 16 images, which leaves 984 of the 1000 classes of 'many' "
        "without a training image: accuracies say little; run without --quick"
    )
    assert "larger --train-size" in data.budget_warning(many, Protocol(train_size=1000), BUDGETS["cpu"])
    assert data.budget_warning(many, Protocol(), BUDGETS["gpu"]) is None
    digits = data.open_dataset("digits")
    assert data.budget_warning(digits, Protocol(), BUDGETS["quick"]) is None  # 16 images over 10 classes
