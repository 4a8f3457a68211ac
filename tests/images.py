"""Image files for the dataset tests: good PNGs in class folders, and files
Pillow opens and verifies but TensorFlow's decoder refuses."""

from __future__ import annotations

import numpy as np
from PIL import Image


def png(path, mode="RGB", size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=128 if mode in ("L", "P", "I;16") else (200, 10, 10)[: len(mode)]).save(path)


def classes(root, names=("a", "b"), per_class=3):
    for name in names:
        for i in range(per_class):
            png(root / name / f"{i}.png")


def undecodable_files(folder):
    """Files Pillow opens and verifies, and TensorFlow's decoder refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    photo.save(folder / "whole.jpg", "JPEG")
    whole = (folder / "whole.jpg").read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "half.jpg").write_bytes(whole[: len(whole) // 2])  # cut in half
    Image.new("1", (16, 16), 1).save(folder / "one_bit.bmp")
    photo.save(folder / "tiff.jpg", "TIFF")  # a TIFF named .jpg
    return ["half.jpg", "one_bit.bmp", "tiff.jpg"]
