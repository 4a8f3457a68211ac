"""The SavedModels tlbench exports itself (stand-ins, converted TF1 modules):
TF Hub's reusable SavedModel format, one function and the model's variables,
written atomically beside a stamp that says what they hold."""

from __future__ import annotations

from pathlib import Path

from tlbench.files import build_folder_atomically

EXPORT_FORMAT = "reusable1"  # in the names of exported folders: a new format is exported anew


def save_module_atomically(model, target: Path, stamp: str, describe) -> None:
    """Export `model` as a reusable SavedModel at `target`, with
    `describe(staging)` (which may check the export and raise) written beside
    it as `stamp`."""
    import tensorflow as tf

    def fill(staging: Path) -> dict:
        tf.saved_model.save(reusable_savedmodel(model), str(staging))
        return describe(staging)

    build_folder_atomically(target, stamp, fill)


def reusable_savedmodel(model):
    """The object TF Hub's reusable SavedModel format asks for: `__call__`
    (images, training) as one function, traced for training False and True,
    and the model's variables, trainable ones and regularization losses.

    Not the Keras model itself: `tf.saved_model.save` of a tf_keras model
    also keeps every layer's traced calls (MobileNet V2: 630 functions), and
    each load restores them all. Measured here, a load through hub.KerasLayer:
    MobileNet V2 0.35/128 4.5 s against 1.0-1.3 s, ResNet V2 50 5-6 s against
    1-1.8 s; a training step's graph costs 3x faster to count. The variables
    keep their names, which the ladder's patterns match."""
    import tensorflow as tf

    @tf.function
    def call(images, training=False):
        return model(images, training=training)

    images = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    for training in (False, True):
        call.get_concrete_function(images, training)
    module = tf.train.Checkpoint()
    module.__call__ = call
    module.variables = list(model.variables)
    module.trainable_variables = list(model.trainable_variables)
    module.regularization_losses = list(model.losses)
    return module
