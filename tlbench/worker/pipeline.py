"""`tf.data` input pipelines: decode, convert to RGB floats in [0, 1], resize to
the backbone's input size, cache, then batch and prefetch.

With `host_memory` (a device of --device-memory's size emulated on a CPU,
devices.py) the decoded images and the timed batches are kept in numpy
arrays, outside TensorFlow's allocator, and each batch is copied into it
as it is read, as a GPU copies its batch to its device: the allocator then
holds what a GPU of that size would, and nothing beside.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from tlbench.data import ImageSet
from tlbench.device_memory import TIMED_BATCHES  # their bytes: device_memory.timed_batches_bytes


class SplitPipeline:
    """One split of a dataset at one image size. Decoding and resizing run
    once (the first pass fills an in-memory cache, or with `host_memory` a
    numpy array); every later pass, for any batch size, reads the cache."""

    def __init__(self, images: ImageSet, indices: np.ndarray, image_size: int, *, host_memory: bool = False):
        self.size, self.image_size = len(indices), image_size
        self.labels = images.labels[indices]
        self.passes = 0  # how often the split was read: the test split must be read once
        self.host_memory = host_memory
        self._host_images: np.ndarray | None = None  # host_memory: the decoded split, filled by the first pass
        items = images.items(indices)  # file paths as bytes: names need not be UTF-8
        to_rgb = decode_file if images.paths is not None else _array_to_rgb

        def prepare(item, label):
            return resized(to_rgb(item), image_size), label

        self._decoded = tf.data.Dataset.from_tensor_slices((items, self.labels)).map(
            prepare, num_parallel_calls=tf.data.AUTOTUNE
        )
        self._cached = self._decoded.cache()

    def batches(self, batch_size: int, *, shuffle_seed: int | None = None):
        """Batches of (images, labels): one pass, reshuffled on every call."""
        self.passes += 1
        if self.host_memory:  # the same order as from the cache (`order`)
            order = self.order(shuffle_seed)
            images = self._decoded_in_host_memory()
            rows = (order[start : start + batch_size] for start in range(0, self.size, batch_size))
            return (_copied_in(images[batch], self.labels[batch]) for batch in rows)
        ds = self._cached
        if shuffle_seed is not None:
            ds = ds.shuffle(self.size, seed=shuffle_seed, reshuffle_each_iteration=True)
        return untuned(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))

    def order(self, shuffle_seed: int | None = None) -> np.ndarray:
        """The split's images in the order a pass of `batches(...,
        shuffle_seed)` reads them: the permutation tf.data's shuffle gives,
        which depends on the seed and the split's size alone."""
        indices = tf.data.Dataset.range(self.size)
        if shuffle_seed is not None:
            indices = indices.shuffle(self.size, seed=shuffle_seed, reshuffle_each_iteration=True)
        return next(iter(untuned(indices.batch(max(self.size, 1))))).numpy()

    def timed_batches(self, batch_size: int, *, seed: int = 0, count: int = TIMED_BATCHES):
        """An endless cycle of `count` distinct full batches of the timed
        stream, held in memory, so that not even a tf.data iterator call
        (about half a millisecond here) is timed with a step. With
        `host_memory` they are held in host memory and each is copied in as
        it is read: the copy of a step's batch, as on a GPU, is timed with it."""
        if not self.host_memory:
            return itertools.cycle(list(self.timed_stream(batch_size, seed=seed, distinct_batches=count).take(count)))
        self.passes += 1
        order = np.resize(np.random.default_rng(seed).permutation(self.size), count * batch_size)
        images = self._decoded_in_host_memory()
        held = [(images[rows], self.labels[rows]) for rows in order.reshape(count, batch_size)]
        return (_copied_in(*batch) for batch in itertools.cycle(held))

    def timed_stream(self, batch_size: int, *, seed: int = 0, distinct_batches: int = TIMED_BATCHES):
        """An endless stream of full batches for timed passes: up to
        `distinct_batches` shuffled batches, assembled once and cached, then
        repeated. A step then gets a ready batch: on a CPU the input work would
        otherwise run on the cores the step is using and be timed with it."""
        self.passes += 1
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1  # no input threads competing with the step
        return untuned(
            self._cached.shuffle(self.size, seed=seed, reshuffle_each_iteration=False)
            .repeat()  # a split smaller than a batch still fills batches
            .batch(batch_size, drop_remainder=True)
            .take(distinct_batches)
            .cache()
            .repeat()
            .prefetch(2)
            .with_options(options)
        )

    def _decoded_in_host_memory(self) -> np.ndarray:
        """The split's images decoded, as one numpy array (host_memory)."""
        if self._host_images is None:
            images = np.empty((self.size, self.image_size, self.image_size, 3), np.float32)
            for at, (batch, _) in enumerate(untuned(self._decoded.batch(_DECODE_BATCH))):
                images[at * _DECODE_BATCH : at * _DECODE_BATCH + len(batch)] = batch.numpy()
            self._host_images = images
        return self._host_images


_DECODE_BATCH = 16  # images decoded at a time into host memory: few in the allocator at once


def untuned(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` without tf.data's autotuning. Its tuning thread wakes at
    10 ms, then at twice the last interval (at 10 x (2^k - 1) ms), and the end
    of a pass may wait for its next wake-up: measured here, a pass of a
    ResNet V2 50 fine-tuning epoch whose steps took 44 s ended at 81.9 s, one
    of 36 s at 41.0 s (and a pass of 0.7 s sleeps for 32 batches, filling the
    cache, at 41.0 s instead of 22.8 s). The splits are decoded once and
    cached in memory: there is nothing to tune."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _copied_in(images: np.ndarray, labels: np.ndarray) -> tuple:
    """A batch in host memory as tensors: a copy in TensorFlow's allocator."""
    return tf.constant(images), tf.constant(labels)


def _array_to_rgb(image):
    image = tf.cast(image, tf.float32)
    if image.shape.rank == 2:  # grey (h, w)
        image = tf.image.grayscale_to_rgb(image[..., tf.newaxis])
    return image


def decode_file(path):
    """An image file as RGB floats in [0, 1]: what a trial reads, and what
    `decode_check` accepts an image folder's files by."""
    # channels=3 turns grey and palette images into RGB and drops alpha;
    # convert_image_dtype scales 8- and 16-bit integers alike into [0, 1].
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.image.convert_image_dtype(image, tf.float32)


def resized(image, image_size: int):
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)
