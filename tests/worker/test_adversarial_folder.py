"""The adversarial table's image folder (tests/unit/test_adversarial.py):
files an image folder may hold that a trial can't read, each skipped and
counted with its reason, in one folder checked in a process of its own (a
check that opened the FIFO would block forever), whose decode check runs
TensorFlow's decoder in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from images import png
from PIL import Image

from tlbench import imagefolder


def _cut_jpeg(path):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    photo.save(path, "JPEG")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


# (what a user left in a class folder, its name, how to make it at a path, the reason it is skipped)
FOLDER = [
    ("a JPEG cut in half", "half.jpg", _cut_jpeg, imagefolder.UNDECODABLE),
    ("a 1-bit BMP Pillow reads", "one_bit.bmp", lambda path: Image.new("1", (16, 16), 1).save(path, "BMP"),
     imagefolder.UNDECODABLE),
    ("a TIFF named .jpg", "tiff.jpg", lambda path: Image.new("RGB", (16, 16)).save(path, "TIFF"),
     imagefolder.UNDECODABLE),
    ("a FIFO named .png", "pipe.png", os.mkfifo, imagefolder.NOT_REGULAR),
    ("a broken symlink", "gone.png", lambda path: path.symlink_to("/nonexistent/tlbench/gone.png"),
     imagefolder.NOT_REGULAR),
    ("a symlink to the dataset root", "root", lambda path: path.symlink_to(path.parents[1]), imagefolder.INTO_DATASET),
    ("a symlink to another class", "class_a", lambda path: path.symlink_to(path.parents[1] / "a"),
     imagefolder.INTO_DATASET),
    ("a text file", "notes.txt", lambda path: path.write_text("not an image"), imagefolder.NOT_AN_IMAGE_NAME),
    ("a hidden file", ".thumb.png", png, imagefolder.HIDDEN),
]  # fmt: skip


@pytest.fixture(scope="module")
def checked_folder(tmp_path_factory):
    """One dataset holding every row's file in class `b`, and a class whose
    name is not UTF-8, checked by `data.open_dataset` in a fresh process with
    a timeout."""
    root = tmp_path_factory.mktemp("adversarial-dataset")
    for name in ("a", "b"):
        for i in range(3):
            png(root / name / f"{i}.png")
    for i in range(3):
        png(root / os.fsdecode(b"caf\xe9") / f"{i}.png")
    for _, name, make, _ in FOLDER:
        make(root / "b" / name)
    script = (
        "import json, sys\nfrom tlbench import data\nimages = data.open_dataset(sys.argv[1])\n"
        "print(json.dumps([images.class_names, images.labels.tolist(), images.skipped, images.skipped_examples]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("what, name, make, reason", FOLDER, ids=[row[0] for row in FOLDER])
def test_the_folder_check_skips_what_a_trial_could_not_read_with_its_reason(checked_folder, what, name, make, reason):
    class_names, labels, skipped, examples = checked_folder
    assert f"b/{name}" in examples[reason]
    assert skipped == {reason: sum(row[3] == reason for row in FOLDER) for reason in skipped}
    assert sum(skipped.values()) == len(FOLDER)
    # Every class keeps exactly its three good images; a name that is not UTF-8 shows as \xNN.
    assert class_names == ["a", "b", "caf\\xe9"] and sorted(labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
