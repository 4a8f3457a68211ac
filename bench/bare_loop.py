"""A bare training and inference loop with no tlbench code in it: the second
opinion on what a trial records. Run in a fresh process of its own:

    python bench/bare_loop.py MODULE IMAGE_SIZE BATCH TRAINED WINDOWS SECONDS

hub.KerasLayer(MODULE) + Dense(10), Adam, one `tf.function` training step and
one forward step on one fixed batch of random images. TRAINED says which
backbone variables train: "none" (the head alone: transfer), "all"
(finetune), or a regular expression over variable names (a partial mode).
The backbone runs in inference mode, as a trial's does with BatchNorm frozen.
Each pass: two untimed steps, then WINDOWS timed windows of at least three
steps and SECONDS each; prints {"train": img/s, "infer": img/s} as JSON, the
median over the windows.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# The allocator a trial's steps run with: tlbench sets it on every machine.
os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"

import tensorflow as tf  # after TF_USE_LEGACY_KERAS
import tensorflow_hub as hub
import tf_keras as keras


def main(module: str, size: int, batch: int, trained: str, windows: int, seconds: float) -> dict:
    backbone = hub.KerasLayer(module, trainable=trained != "none")
    head = keras.layers.Dense(10)
    images = keras.Input((size, size, 3))
    model = keras.Model(images, head(backbone(images, training=False)))
    pattern = None if trained in ("none", "all") else re.compile(trained)
    variables = [v for v in backbone.trainable_variables if pattern is None or pattern.search(v.name)]
    variables += head.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function
    def forward(x):
        return model(x, training=False)

    x = tf.random.uniform((batch, size, size, 3))
    y = tf.zeros((batch,), tf.int32)

    def rate(step) -> float:
        for _ in range(2):
            step().numpy()
        rates = []
        for _ in range(windows):
            start, steps = time.perf_counter(), 0
            while steps < 3 or time.perf_counter() - start < seconds:
                last = step()
                steps += 1
            last.numpy()
            rates.append(batch * steps / (time.perf_counter() - start))
        return statistics.median(rates)

    return {"train": rate(lambda: train_step(x, y)), "infer": rate(lambda: forward(x))}


if __name__ == "__main__":
    module, size, batch, trained, windows, seconds = sys.argv[1:]
    print(json.dumps(main(module, int(size), int(batch), trained, int(windows), float(seconds))))
