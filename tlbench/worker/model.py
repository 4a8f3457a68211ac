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

    `batch_norm_momentum`: passed to a trainable module that takes it as an
    argument, as TF Hub's TF2 image modules do (`batch_norm_momentum_passed`
    says whether it was).

    `jit_compile`: every step is compiled with XLA. `mixed_precision`: the head
    computes in float16 (variables float32, logits cast back to float32) with
    loss scaling. A TF Hub module's functions were traced in float32 when it
    was saved and keep computing in float32 whatever the Keras policy, so the
    backbone, where nearly all FLOPs are, is unchanged.
    """

    def __init__(
        self,
        module_path: str,
        image_size: int,
        num_classes: int,
        trainable: bool,
        *,
        jit_compile: bool = False,
        mixed_precision: bool = False,
        batch_norm_momentum: float | None = None,
    ):
        self.image_size = image_size
        self.backbone, self.batch_norm_momentum_passed = _backbone(
            module_path, image_size, trainable, batch_norm_momentum
        )
        images = keras.Input((image_size, image_size, 3), name="images")
        features = self.backbone(images)
        if features.shape.rank != 2:
            raise ModuleError(
                f"module {module_path} outputs shape {features.shape}; "
                "a feature-vector module (batch, features) is needed"
            )
        self.feature_dim = int(features.shape[-1])
        policy = "mixed_float16" if mixed_precision else "float32"
        self.head = keras.Sequential(
            [
                keras.layers.Dense(num_classes, dtype=policy),
                keras.layers.Activation("linear", dtype="float32"),  # float32 logits for a stable loss
            ],
            name="head",
        )
        self.model = keras.Model(images, self.head(features))
        self.optimizer = keras.optimizers.Adam()
        if mixed_precision:
            self.optimizer = keras.mixed_precision.LossScaleOptimizer(self.optimizer)
        self.optimizer.build(self.model.trainable_variables)
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        image_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        feature_spec = tf.TensorSpec([None, self.feature_dim], tf.float32)
        label_spec = tf.TensorSpec([None], tf.int32)

        def compiled(fn, *signature):
            return tf.function(fn, input_signature=list(signature), jit_compile=jit_compile)

        self.train_step = compiled(self._train_step, image_spec, label_spec)
        self.head_train_step = compiled(self._head_train_step, feature_spec, label_spec)
        self.predict = compiled(lambda x: self.model(x, training=False), image_spec)
        self.extract_features = compiled(lambda x: self.backbone(x, training=False), image_spec)
        self.predict_from_features = compiled(lambda f: self.head(f), feature_spec)

    def parameter_counts(self) -> dict:
        trainable = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        total = sum(int(np.prod(v.shape)) for v in self.model.variables)
        return {"trainable_params": trainable, "total_params": total}

    def restart(self, learning_rate: float, weights: list) -> None:
        """Back to `weights` with a fresh optimizer state at `learning_rate`,
        without retracing any step."""
        self.model.set_weights(weights)
        # The slots and step count only: a loss-scale optimizer keeps its scale.
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        for variable in optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate = learning_rate

    def _train_step(self, images, labels):
        """Forward, backward and optimizer update on one batch of images."""
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            loss = self._loss(labels, logits) + _sum(self.model.losses)
            scaled = self._scaled(loss)
        self._apply(tape.gradient(scaled, self.model.trainable_variables), self.model.trainable_variables)
        return loss

    def _head_train_step(self, features, labels):
        """The same update for the head alone, on cached backbone features."""
        with tf.GradientTape() as tape:
            loss = self._loss(labels, self.head(features))
            scaled = self._scaled(loss)
        self._apply(tape.gradient(scaled, self.head.trainable_variables), self.head.trainable_variables)
        return loss

    def _scaled(self, loss):
        """The loss as differentiated: scaled up under mixed precision, so small
        float16 gradients don't underflow."""
        if isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer):
            return self.optimizer.get_scaled_loss(loss)
        return loss

    def _apply(self, gradients, variables) -> None:
        if isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer):
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, variables))


def _backbone(module_path: str, image_size: int, trainable: bool, batch_norm_momentum: float | None):
    """(hub.KerasLayer, whether `batch_norm_momentum` went to the module)."""
    if trainable and batch_norm_momentum is not None:
        layer = hub.KerasLayer(
            module_path, trainable=True, arguments={"batch_norm_momentum": batch_norm_momentum}, name="backbone"
        )
        try:  # inference mode: a probe call must not move the moving averages
            layer(tf.zeros([1, image_size, image_size, 3]), training=False)
            return layer, True
        except (TypeError, ValueError):  # no traced function takes the argument
            pass
    return hub.KerasLayer(module_path, trainable=trainable, name="backbone"), False


def _sum(losses):
    return tf.add_n(losses) if losses else 0.0
