import numpy as np
import pytest
from PIL import Image

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


def _png(path, mode="RGB", size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=128 if mode in ("L", "P", "I;16") else (200, 10, 10)[: len(mode)]).save(path)


def test_image_folder_uses_usable_images_and_counts_the_rest(tmp_path):
    for name in ("cat", "dog"):
        for i in range(4):
            _png(tmp_path / name / f"{i}.png")
    _png(tmp_path / "dog" / "nested" / "deep.PNG")  # nested, upper-case suffix
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    _png(tmp_path / "cat" / ".hidden.png")
    images = data.open_dataset(str(tmp_path))
    assert images.class_names == ("cat", "dog")
    assert np.bincount(images.labels).tolist() == [4, 5]
    assert images.skipped_files == 3
    assert images.items(np.array([0]))[0].endswith(".png")


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "0 class sub-folder"),
        ({"only": 5}, "1 class sub-folder"),
        ({"a": 5, "b": 2}, "class 'b'"),
    ],
)
def test_unusable_folders_are_usage_errors(tmp_path, layout, message):
    for name, count in layout.items():
        (tmp_path / name).mkdir()
        for i in range(count):
            _png(tmp_path / name / f"{i}.png")
    with pytest.raises(UsageError, match=message):
        data.open_dataset(str(tmp_path))


def test_missing_dataset_and_file_dataset(tmp_path):
    with pytest.raises(UsageError, match="neither 'digits' nor an existing folder"):
        data.open_dataset(str(tmp_path / "absent"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        data.open_dataset(str(tmp_path / "file"))
