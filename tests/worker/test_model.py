"""The classifier's options on a real tiny SavedModel: mixed precision, XLA."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def batch():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((8, 32, 32, 3), dtype=np.float32))
    return images, tf.constant(np.arange(8) % 2, dtype=tf.int32)


def _losses(classifier, batch, steps=15):
    return [float(classifier.train_step(*batch)) for _ in range(steps)]


def test_mixed_precision_puts_the_head_in_float16_and_keeps_float32_logits(tiny_module, batch):
    import tensorflow as tf
    import tf_keras as keras

    from tlbench.worker.model import Classifier

    classifier = Classifier(tiny_module, 32, 2, mode="finetune", mixed_precision=True)
    dense = classifier.head.layers[0]
    assert dense.compute_dtype == "float16" and dense.kernel.dtype == tf.float32  # float32 master weights
    assert classifier.predict(batch[0]).dtype == tf.float32
    assert isinstance(classifier.optimizer, keras.mixed_precision.LossScaleOptimizer)
    scale = float(classifier.optimizer.loss_scale)
    losses = _losses(classifier, batch)
    assert losses[-1] < losses[0]  # it trains
    classifier.restart(1e-3, classifier.model.get_weights())
    assert float(classifier.optimizer.loss_scale) > 0 and scale > 0  # a restart keeps the loss scale


def test_xla_compiles_the_steps_and_trains_like_the_default(tiny_module, batch):
    from tlbench.worker.model import Classifier

    plain = Classifier(tiny_module, 32, 2, mode="finetune")
    xla = Classifier(tiny_module, 32, 2, mode="finetune", jit_compile=True)
    xla.model.set_weights(plain.model.get_weights())
    assert xla.train_step.experimental_get_compiler_ir(*batch)(stage="hlo")  # it is an XLA program
    # Four steps: XLA compiles a step that trains the backbone anew each time (README, --xla).
    plain_losses, xla_losses = _losses(plain, batch, steps=4), _losses(xla, batch, steps=4)
    assert xla_losses[-1] < xla_losses[0]
    np.testing.assert_allclose(xla_losses, plain_losses, rtol=1e-3, atol=1e-4)
