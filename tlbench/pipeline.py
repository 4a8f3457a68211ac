"""`tf.data` input pipelines: decode, convert to RGB floats in [0, 1], resize to
the backbone's input size, cache, then batch and prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tlbench.data import ImageSet


class SplitPipeline:
    """One split of a dataset at one image size. Decoding and resizing run
    once (the first pass fills an in-memory cache); every later pass, for any
    batch size, reads the cache."""

    def __init__(self, images: ImageSet, indices: np.ndarray, image_size: int):
        self.size = len(indices)
        self.labels = images.labels[indices]
        items = images.items(indices)
        to_rgb = _decode_file if images.paths is not None else _array_to_rgb

        def prepare(item, label):
            image = tf.image.resize(to_rgb(item), (image_size, image_size), antialias=True)
            return tf.clip_by_value(image, 0.0, 1.0), label

        self._cached = (
            tf.data.Dataset.from_tensor_slices((items, self.labels))
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
        )

    def batches(self, batch_size: int, *, shuffle_seed: int | None = None, repeat: bool = False):
        """Batches of (images, labels). `repeat` gives an endless stream of
        full batches, for timed passes."""
        ds = self._cached
        if shuffle_seed is not None:
            ds = ds.shuffle(self.size, seed=shuffle_seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


def _array_to_rgb(image):
    image = tf.cast(image, tf.float32)
    if image.shape.rank == 2:  # grey (h, w)
        image = tf.image.grayscale_to_rgb(image[..., tf.newaxis])
    return image


def _decode_file(path):
    # channels=3 turns grey and palette images into RGB and drops alpha;
    # convert_image_dtype scales 8- and 16-bit integers alike into [0, 1].
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.image.convert_image_dtype(image, tf.float32)
