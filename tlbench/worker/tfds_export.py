"""TensorFlow Datasets by name (`--dataset tfds:NAME`), written as image folders.

A TFDS dataset with an image and a class label (its `supervised_keys`) is
prepared by tensorflow-datasets (from `TFDS_DATA_DIR`, or downloaded), then
written once, every split together, as an image folder in tlbench's cache:
one sub-folder per class, numbered in label order. From there it is an image
folder like any other: checked, split by tlbench's own stratified protocol
(TFDS's splits are pooled), read by the same pipeline. The driver runs
`export` through `tlbench.isolated` (`data.tfds_folder`).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from tlbench.data import TFDS_PREFIX as PREFIX
from tlbench.errors import UsageError, one_line
from tlbench.files import build_folder_atomically, cache_root

STAMP = "tlbench_tfds.json"


def export(name: str) -> str:
    """Prepare TFDS dataset `name` and write it as an image folder (atomically:
    a staging folder renamed into place); the folder's path."""
    import numpy as np
    import tensorflow_datasets as tfds
    from PIL import Image

    target = cache_root() / "datasets" / f"tfds-{_safe(name)}"
    if (target / STAMP).exists():
        return str(target)
    try:
        builder = tfds.builder(name)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=1)
        hint = f"; did you mean '{PREFIX}{close[0]}'?" if close else ""
        raise UsageError(f"unknown TFDS dataset '{name}'{hint}") from None
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 - offline, a missing dependency, a broken download ...
        reason = one_line(error, 200)
        raise UsageError(
            f"TFDS dataset '{name}' is not prepared in {_data_root(builder)} and can't be downloaded "
            f"({type(error).__name__}: {reason}); prepare it where there is network and set TFDS_DATA_DIR"
        ) from None
    image_key, label_key = _supervised_keys(builder, name)
    class_names = builder.info.features[label_key].names

    def fill(staging: Path) -> dict:
        folders = [staging / f"{index:03d}-{_safe(label)}" for index, label in enumerate(class_names)]
        for folder in folders:
            folder.mkdir()
        count = 0
        for split in builder.info.splits:
            for example in tfds.as_numpy(builder.as_dataset(split=split)):
                image = np.asarray(example[image_key])
                image = image[..., 0] if image.shape[-1] == 1 else image  # grey (h, w, 1) -> (h, w)
                Image.fromarray(image).save(folders[int(example[label_key])] / f"{split}-{count:07d}.png")
                count += 1
        return {"tfds": name, "images": count, "classes": list(class_names)}

    build_folder_atomically(target, STAMP, fill)
    return str(target)


def _supervised_keys(builder, name: str) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    features = builder.info.features
    if (
        not keys
        or len(keys) != 2
        or not isinstance(features[keys[0]], tfds.features.Image)
        or not isinstance(features[keys[1]], tfds.features.ClassLabel)
    ):
        raise UsageError(f"TFDS dataset '{name}' has no (image, class label) pair to classify; give another")
    return keys


def _data_root(builder) -> str:
    return str(Path(builder.data_dir).parent.parent)  # <root>/<name>/<version>


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "x"
