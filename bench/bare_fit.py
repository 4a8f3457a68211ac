"""The largest batch that trains under a memory limit, found by a bare tf_keras
loop with no tlbench code in it: the second opinion on `--batch-size max`.

    python bench/bare_fit.py MODULE IMAGE_SIZE TRAINED LIMIT_MB START

Each probe is a fresh process (`--probe ... BATCH`) with TensorFlow's CPU
allocator limited to LIMIT_MB (TF_CPU_ALLOCATOR_USE_BFC,
TF_CPU_BFC_MEM_LIMIT_IN_MB): hub.KerasLayer(MODULE) + Dense(10), Adam, two
training steps and a forward pass on a batch of random images, one op at a
time; exit status 0 when they ran, 3 on ResourceExhaustedError. TRAINED says which backbone
variables train: "none" (transfer), "all" (finetune) or a regular expression
over variable names (a partial mode); the tape watches those alone and the
backbone runs in inference mode, as BatchNorm frozen does.

From START the search doubles (or halves) until a batch fits and one doesn't,
then bisects until they are within 5 % of each other. Prints
{"found": batch, "probes": [[batch, fits], ...]} as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

OOM_STATUS = 3
TOLERANCE = 0.05


def probe(module: str, size: int, trained: str, batch: int) -> int:
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras as keras

    # One op at a time, as a GPU's stream runs them: with ops side by side the
    # allocator's peak depends on which ran together, from run to run.
    tf.config.threading.set_inter_op_parallelism_threads(1)

    backbone = hub.KerasLayer(module, trainable=trained != "none")
    head = keras.layers.Dense(10)
    head.build((None, backbone(tf.zeros((1, size, size, 3)), training=False).shape[-1]))
    pattern = None if trained in ("none", "all") else re.compile(trained)
    variables = [v for v in backbone.trainable_variables if pattern is None or pattern.search(v.name)]
    variables = (variables if trained != "none" else []) + head.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(variables)
            logits = head(backbone(x, training=False))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    try:
        x = tf.random.uniform((batch, size, size, 3))
        y = tf.zeros((batch,), tf.int32)
        for _ in range(2):
            train_step(x, y).numpy()
        head(backbone(x, training=False)).numpy()
    except tf.errors.ResourceExhaustedError:
        return OOM_STATUS
    return 0


def fits(module: str, size: int, trained: str, limit_mb: int, batch: int) -> bool:
    env = {
        **os.environ,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPU_ALLOCATOR_USE_BFC": "true",
        "TF_CPU_BFC_MEM_LIMIT_IN_MB": str(limit_mb),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    argv = [sys.executable, __file__, "--probe", module, str(size), trained, str(batch)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, OOM_STATUS):
        raise RuntimeError(f"probe at batch {batch} failed: {done.stderr[-1500:]}")
    return done.returncode == 0


def search(module: str, size: int, trained: str, limit_mb: int, start: int) -> dict:
    probes, fit, fail = [], 0, None
    batch = max(1, start)
    while True:
        ok = fits(module, size, trained, limit_mb, batch)
        probes.append([batch, ok])
        if ok:
            fit = batch
        else:
            fail = batch
        if fail == 1 or (fit and fail and fail <= max(fit + 1, fit * (1 + TOLERANCE))):
            return {"found": fit or None, "probes": probes}
        if fail is None:
            batch = fit * 2
        elif not fit:
            batch = max(1, fail // 2)
        else:
            batch = (fit + fail) // 2


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        module, size, trained, batch = sys.argv[2:]
        sys.exit(probe(module, int(size), trained, int(batch)))
    module, size, trained, limit_mb, start = sys.argv[1:]
    print(json.dumps(search(module, int(size), trained, int(limit_mb), int(start))))
