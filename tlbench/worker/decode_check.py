"""Which image files a trial can decode, decided by the decoder the trials
use (`pipeline.decode_file`, then the resize): called by the driver in a
fresh process to check an image folder (`imagefolder.decode_verdicts`
through `isolated`), and by a trial whose input pipeline failed, to name the
file TensorFlow's own error doesn't."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from tlbench import data, imagefolder
from tlbench.errors import one_line
from tlbench.worker.pipeline import decode_file, resized

CHECK_SIZE = 8  # any size: the resize runs on what the decoder gave


class UndecodableImage(ValueError):
    """An image file of a trial's splits that TensorFlow can't decode."""


def problem(path: str) -> tuple[str, str] | None:
    """None when `path` decodes as in a trial, else (why it is skipped,
    TensorFlow's message). The path goes in as bytes: any name works."""
    try:
        resized(decode_file(tf.constant(os.fsencode(path))), CHECK_SIZE)
    except (tf.errors.NotFoundError, tf.errors.PermissionDeniedError) as error:
        return imagefolder.UNREADABLE, _message(error)
    except Exception as error:  # noqa: BLE001 - whatever fails here would fail the trial
        return imagefolder.UNDECODABLE, _message(error)
    return None


def verdicts(paths: list[str]) -> list[str | None]:
    """For each path, None when a trial can decode it, else why it is
    skipped. Decoded in threads: TensorFlow's kernels release the GIL."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [found and found[0] for found in pool.map(problem, paths)]


def naming_the_file(failure: Exception, spec, images: data.ImageSet) -> Exception:
    """A trial's `failure`; when it is a TensorFlow error and the trial read
    image files, an UndecodableImage naming the first file of the trial's
    splits that fails to decode, if one does (a file changed since the
    driver checked the folder, or differs on this node)."""
    if images.paths is None or not isinstance(failure, tf.errors.OpError):
        return failure
    budget, protocol = spec.budget, spec.protocol
    splits = data.capped_splits(images, protocol.split_seed, protocol.max_train_images(budget), budget.max_eval_images)
    for index in np.concatenate([splits.train, splits.val, splits.test]):
        path = images.paths[index]
        found = problem(path)
        if found:
            reason, message = found
            return UndecodableImage(
                f"image file '{imagefolder.printable(path)}' is {reason} ({message}); remove or replace it"
            )
    return failure


def _message(error: Exception) -> str:
    """TensorFlow's message without the op's name around it."""
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text, flags=re.DOTALL)
    return one_line(text, 200)
