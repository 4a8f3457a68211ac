"""Small SavedModels the tests build, in the spirit of VTAB's
`create_dummy_saved_model`: real TF2 SavedModels loaded through
hub.KerasLayer, small enough to train in a second."""

from __future__ import annotations

from pathlib import Path

import tlbench  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow


def save_tiny_feature_module(path: Path, features: int = 16) -> str:
    """Images (any size, floats in [0, 1]) -> `features` floats: two strided
    convolutions with BatchNorm, then global average pooling."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    images = keras.Input((None, None, 3))
    x = images
    for filters in (8, features):
        x = keras.layers.Conv2D(filters, 3, strides=4, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    model = keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))
    tf.saved_model.save(model, str(path))
    return str(path)


def save_spatial_module(path: Path) -> str:
    """A module whose output is a feature map, not a feature vector."""
    import tensorflow as tf
    import tf_keras as keras

    images = keras.Input((None, None, 3))
    model = keras.Model(images, keras.layers.Conv2D(4, 3, strides=8)(images))
    tf.saved_model.save(model, str(path))
    return str(path)
