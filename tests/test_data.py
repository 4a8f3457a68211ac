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


def test_class_counts_per_split_and_the_train_size_cap(digits):
    splits = data.capped_splits(digits, seed=0, max_train=40, max_eval=None)
    counts = splits.class_counts(digits.labels, digits.num_classes)
    assert {name: sum(c) for name, c in counts.items()} == splits.sizes() and splits.sizes()["train"] == 40
    assert min(counts["train"]) == 4 and max(counts["train"]) == 4  # 40 over 10 classes, stratified
    data.check_train_size(digits, 10)
    with pytest.raises(UsageError, match="--train-size 9 is less than the 10 classes"):
        data.check_train_size(digits, 9)


def _write_tfds_dataset(data_dir):
    """A real TFDS dataset, prepared by tensorflow-datasets from a generator
    (no download): 2 classes of 24x24 RGB images in a train and a test split."""
    import tensorflow_datasets as tfds

    class TlbenchTestShapes(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light"]),
            }
            return tfds.core.DatasetInfo(
                builder=self, features=tfds.features.FeaturesDict(features), supervised_keys=("image", "label")
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(20, 0), "test": self._generate_examples(10, 1)}

        def _generate_examples(self, count, seed):
            rng = np.random.default_rng(seed)
            for i in range(count):
                image = (rng.integers(0, 100, (24, 24, 3)) + 150 * (i % 2)).astype(np.uint8)
                yield i, {"image": image, "label": i % 2}

    TlbenchTestShapes(data_dir=str(data_dir)).download_and_prepare()


def test_a_tfds_dataset_by_name_becomes_an_image_folder(tmp_path, monkeypatch):
    _write_tfds_dataset(tmp_path / "tfds")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("TLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    images = data.open_dataset("tfds:tlbench_test_shapes")
    assert images.name == "tfds:tlbench_test_shapes" and images.class_names == ("000-dark", "001-light")
    assert len(images.labels) == 30 and np.bincount(images.labels).tolist() == [15, 15]  # both splits pooled
    assert images.skipped_files == 0 and all(path.endswith(".png") for path in images.paths)
    light = np.asarray(Image.open(images.paths[int(np.argmax(images.labels))]))
    assert light.shape == (24, 24, 3) and light.min() >= 150  # the pixels as TFDS stored them
    assert data.open_dataset("tfds:tlbench_test_shapes").paths == images.paths  # written once


def test_unknown_tfds_names_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(UsageError, match="unknown TFDS dataset 'beanz'; did you mean 'tfds:beans'"):
        data.open_dataset("tfds:beanz")


def test_tfds_without_tensorflow_datasets_installed_is_one_line_and_exit_2():
    """A Python where tensorflow_datasets can't be imported (None in
    sys.modules is Python's mark for that): the command says what to install."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['tensorflow_datasets'] = None\n"
        "from tlbench.cli import main\n"
        "sys.exit(main(['run', '--all', '--dataset', 'tfds:beans']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "needs tensorflow-datasets, which is not installed" in done.stderr
