"""Image folders, their files checked by TensorFlow's decoder in a fresh
process (what is used, what is skipped and why, the verdicts' cache, names
that are not UTF-8, FIFOs, symlinks), the trial's pipeline on what the check
accepts, and TFDS datasets by name."""

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from images import classes, png, undecodable_files
from PIL import Image

from tlbench import data, imagefolder
from tlbench.errors import UsageError


def test_image_folder_uses_usable_images_and_counts_the_rest(tmp_path):
    for name in ("cat", "dog"):
        for i in range(4):
            png(tmp_path / name / f"{i}.png")
    png(tmp_path / "dog" / "nested" / "deep.PNG")  # nested, upper-case suffix
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    png(tmp_path / "cat" / ".hidden.png")
    images = data.open_dataset(str(tmp_path))
    assert images.class_names == ("cat", "dog")
    assert np.bincount(images.labels).tolist() == [4, 5]
    assert images.skipped_files == 3
    assert images.skipped == {imagefolder.HIDDEN: 1, imagefolder.NOT_AN_IMAGE_NAME: 1, imagefolder.UNDECODABLE: 1}
    assert images.skipped_examples[imagefolder.UNDECODABLE] == ["cat/broken.jpg"]
    assert images.items(np.array([0]))[0].endswith(b".png")  # bytes: tf.data takes any name so


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
            png(tmp_path / name / f"{i}.png")
    with pytest.raises(UsageError, match=message):
        data.open_dataset(str(tmp_path))


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


def test_the_folder_check_accepts_exactly_what_the_trials_decoder_decodes(tmp_path):
    import tensorflow as tf

    from tlbench.worker.pipeline import SplitPipeline

    classes(tmp_path)
    bad = undecodable_files(tmp_path / "a")
    for name in bad:
        with Image.open(tmp_path / "a" / name) as image:
            image.verify()  # what the check used to accept
    images = data.open_dataset(str(tmp_path))
    assert images.skipped == {imagefolder.UNDECODABLE: 3}
    assert images.skipped_examples[imagefolder.UNDECODABLE] == [f"a/{name}" for name in bad]
    assert (
        images.skipped_summary()
        == f"3 file(s) of '{tmp_path}' skipped: 3 not decodable by TensorFlow ({', '.join(f'a/{n}' for n in bad)})"
    )
    everything = np.arange(len(images.labels))
    batch, _ = next(iter(SplitPipeline(images, everything, 16).batches(len(everything))))
    assert batch.shape == (6, 16, 16, 3)  # every accepted file decodes in a trial's pipeline
    for name in bad:  # and every refused one fails there
        one = data.ImageSet("one", ("a",), np.zeros(1, np.int32), paths=(str(tmp_path / "a" / name),))
        with pytest.raises(tf.errors.InvalidArgumentError):
            next(iter(SplitPipeline(one, np.arange(1), 16).batches(1)))


def test_decode_verdicts_are_cached_by_path_size_and_time(tmp_path):
    classes(tmp_path / "data", per_class=4)
    first = data.open_dataset(str(tmp_path / "data"))
    assert first.skipped_files == 0
    cache = imagefolder.verdict_cache(tmp_path / "data")
    verdicts = json.loads(cache.read_text())
    assert len(verdicts) == 8 and all(verdict is None for _, verdict in verdicts.values())
    # A verdict written into the cache is believed: the folder was not decoded again.
    verdicts[str(tmp_path / "data" / "a" / "0.png")][1] = imagefolder.UNDECODABLE
    cache.write_text(json.dumps(verdicts))
    assert data.open_dataset(str(tmp_path / "data")).skipped == {imagefolder.UNDECODABLE: 1}
    # A file that changed is decoded again.
    undecodable_files(tmp_path / "bad")
    (tmp_path / "data" / "b" / "0.png").write_bytes((tmp_path / "bad" / "half.jpg").read_bytes())
    again = data.open_dataset(str(tmp_path / "data"))
    assert again.skipped == {imagefolder.UNDECODABLE: 2}
    assert sorted(again.skipped_examples[imagefolder.UNDECODABLE]) == ["a/0.png", "b/0.png"]


def test_folders_and_files_whose_names_are_not_utf8_are_used(tmp_path):
    from tlbench.worker.pipeline import SplitPipeline

    classes(tmp_path, names=("plain",))
    odd = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(odd)
    for i in range(3):
        png(Path(os.fsdecode(odd + b"/\xff%d.png" % i)))
    images = data.open_dataset(str(tmp_path))
    assert images.class_names == ("caf\\xe9", "plain") and images.skipped_files == 0
    json.dumps({"class_names": images.class_names}, ensure_ascii=False).encode()  # printable, writable
    batch, labels = next(iter(SplitPipeline(images, np.arange(6), 8).batches(6)))
    assert batch.shape == (6, 8, 8, 3) and sorted(labels.numpy().tolist()) == [0, 0, 0, 1, 1, 1]


def test_a_fifo_named_as_an_image_is_skipped_without_blocking(tmp_path):
    """In a process of its own with a timeout: a check that opened the FIFO
    would wait for a writer forever."""
    import subprocess
    import sys

    classes(tmp_path)
    os.mkfifo(tmp_path / "b" / "pipe.png")
    script = (
        "import json\nimport sys\nfrom tlbench import data\n"
        "images = data.open_dataset(sys.argv[1])\n"
        "print(json.dumps([images.skipped, images.skipped_examples]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{imagefolder.NOT_REGULAR: 1}, {imagefolder.NOT_REGULAR: ["b/pipe.png"]}]


def test_symlinks_into_the_dataset_are_skipped_and_links_out_of_it_followed(tmp_path):
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    classes(root)
    classes(elsewhere, names=("c",))
    (root / "all").symlink_to(root)  # a class folder that is the dataset again
    (root / "a" / "also_b").symlink_to(root / "b")  # a folder of another class
    (root / "b" / "copy.png").symlink_to(root / "a" / "0.png")  # an image of another class
    (root / "c").symlink_to(elsewhere / "c")  # a class kept outside
    (elsewhere / "c" / "loop").symlink_to(elsewhere / "c")
    images = data.open_dataset(str(root))
    assert images.class_names == ("a", "b", "c") and np.bincount(images.labels).tolist() == [3, 3, 3]
    assert images.skipped == {imagefolder.INTO_DATASET: 3, imagefolder.ALREADY_READ: 1}
    assert sorted(images.skipped_examples[imagefolder.INTO_DATASET]) == ["a/also_b", "all", "b/copy.png"]


def test_a_trial_that_meets_an_undecodable_file_names_it(tmp_path, tiny_module):
    """A file that went bad after the check (here: added behind its back)."""
    from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
    from tlbench.worker.trial import run_trial

    classes(tmp_path / "data", per_class=4)
    images = data.open_dataset(str(tmp_path / "data"))
    undecodable_files(tmp_path / "bad")
    bad = str(tmp_path / "bad" / "half.jpg")
    images = replace(images, paths=(*images.paths, bad), labels=np.append(images.labels, np.int32(0)))
    spec = TrialSpec(
        "mobilenet_v2_035_128", "transfer", 8, "data", 0, BUDGETS["quick"], ModuleSource("local", tiny_module)
    )
    record = run_trial(spec, images)
    assert record["status"] == "error"
    assert record["error"] == (
        f"UndecodableImage: image file '{bad}' is not decodable by TensorFlow "
        "(jpeg::Uncompress failed. Invalid JPEG data or crop window.); remove or replace it"
    )
