"""The classifier a trial trains: Input -> hub.KerasLayer -> Dense, and the
compiled (tf.function) steps it is trained, evaluated and timed with."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from tlbench.errors import ModuleError


class Classifier:
    """A TF Hub backbone with a new Dense head.

    `trainable=False` (transfer): the backbone runs in inference mode and only
    the head trains. `trainable=True` (finetune): every variable trains and
    BatchNorm runs in training mode. Each step is traced once (the batch
    dimension is left open), so training, evaluation and the timed passes all
    run the same compiled functions.
    """

    def __init__(self, module_path: str, image_size: int, num_classes: int, trainable: bool):
        self.backbone = hub.KerasLayer(module_path, trainable=trainable, name="backbone")
        images = keras.Input((image_size, image_size, 3), name="images")
        features = self.backbone(images)
        if features.shape.rank != 2:
            raise ModuleError(
                f"module {module_path} outputs shape {features.shape}; "
                "a feature-vector module (batch, features) is needed"
            )
        self.feature_dim = int(features.shape[-1])
        self.head = keras.layers.Dense(num_classes, name="head")
        self.model = keras.Model(images, self.head(features))
        self.optimizer = keras.optimizers.Adam()
        self.optimizer.build(self.model.trainable_variables)
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        image_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        feature_spec = tf.TensorSpec([None, self.feature_dim], tf.float32)
        label_spec = tf.TensorSpec([None], tf.int32)
        self.train_step = tf.function(self._train_step, input_signature=[image_spec, label_spec])
        self.head_train_step = tf.function(self._head_train_step, input_signature=[feature_spec, label_spec])
        self.predict = tf.function(lambda x: self.model(x, training=False), input_signature=[image_spec])
        self.extract_features = tf.function(lambda x: self.backbone(x, training=False), input_signature=[image_spec])
        self.predict_from_features = tf.function(lambda f: self.head(f), input_signature=[feature_spec])

    def parameter_counts(self) -> dict:
        trainable = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        total = sum(int(np.prod(v.shape)) for v in self.model.variables)
        return {"trainable_params": trainable, "total_params": total}

    def restart(self, learning_rate: float, weights: list) -> None:
        """Back to `weights` with a fresh optimizer state at `learning_rate`,
        without retracing any step."""
        self.model.set_weights(weights)
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate = learning_rate

    def _train_step(self, images, labels):
        """Forward, backward and optimizer update on one batch of images."""
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            loss = self._loss(labels, logits) + _sum(self.model.losses)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _head_train_step(self, features, labels):
        """The same update for the head alone, on cached backbone features."""
        with tf.GradientTape() as tape:
            loss = self._loss(labels, self.head(features))
        variables = self.head.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss


def _sum(losses):
    return tf.add_n(losses) if losses else 0.0
