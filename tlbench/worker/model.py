"""The classifier a trial trains: Input -> hub.KerasLayer -> Dense, and the
compiled (tf.function) steps it is trained, evaluated and timed with."""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from tlbench.errors import ModuleError
from tlbench.registry import Ladder, trains_backbone


class Trainable:
    """What a learning-rate search needs of a model it trains (training._search):
    `model` (its weights) and `optimizer`, restarted, paused and resumed."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer

    def restart(self, learning_rate: float, weights: list) -> None:
        """Back to `weights` with a fresh optimizer state at `learning_rate`,
        without retracing any step."""
        self.model.set_weights(weights)
        # The slots and step count only: a loss-scale optimizer keeps its scale.
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        for variable in optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate = learning_rate

    def training_state(self) -> tuple:
        """Where training is: the model's weights, the optimizer's slots and
        step count, its learning rate (a search pauses a learning rate's
        training with it)."""
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        slots = [variable.numpy() for variable in optimizer.variables]
        return self.model.get_weights(), slots, float(self.optimizer.learning_rate)

    def restore_training_state(self, state: tuple) -> None:
        """Back to a `training_state`, to go on as if never paused."""
        weights, slots, learning_rate = state
        self.model.set_weights(weights)
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        for variable, value in zip(optimizer.variables, slots, strict=True):
            variable.assign(value)
        self.optimizer.learning_rate = learning_rate

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


class Classifier(Trainable):
    """A TF Hub backbone with a new Dense head.

    `mode` (registry.MODES) says which variables train: transfer the head
    only; last_block and last_stage the head and the backbone variables whose
    names `ladder` matches for that mode; finetune every variable. Only those
    variables are watched by the training step's tape, so the backward pass
    stops at the first trained layer and the forward activations below it are
    not kept. `batch_norm` (plan.BATCH_NORM_POLICIES): while backbone
    variables train, the backbone's BatchNorm runs in inference mode
    ("frozen") or in training mode ("train"); in transfer it is always
    frozen. Each step is traced once (the batch dimension is left open), so
    training, evaluation and the timed passes all run the same compiled
    functions.

    `batch_norm_momentum`: with batch_norm="train", passed to a module that
    takes it as an argument, as TF Hub's TF2 image modules do
    (`batch_norm_momentum_passed` says whether it was).

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
        mode: str = "transfer",
        *,
        ladder: Ladder | None = None,
        batch_norm: str = "frozen",
        jit_compile: bool = False,
        mixed_precision: bool = False,
        batch_norm_momentum: float | None = None,
    ):
        self.image_size, self.mode, self.num_classes = image_size, mode, num_classes
        self.mixed_precision, self.jit_compile = mixed_precision, jit_compile
        trains = trains_backbone(mode)
        self.batch_norm = batch_norm if trains else "frozen"
        self._backbone_training = self.batch_norm == "train"
        self.backbone, self.batch_norm_momentum_passed = _backbone(
            module_path, image_size, trains, batch_norm_momentum if self._backbone_training else None
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
        self.trained_backbone_variables = _trained_backbone_variables(self.backbone, mode, ladder, module_path)
        self.trained_variables = self.trained_backbone_variables + list(self.head.trainable_variables)
        self.optimizer = keras.optimizers.Adam()
        if mixed_precision:
            self.optimizer = keras.mixed_precision.LossScaleOptimizer(self.optimizer)
        self.optimizer.build(self.trained_variables)
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        image_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        feature_spec = tf.TensorSpec([None, self.feature_dim], tf.float32)
        label_spec = tf.TensorSpec([None], tf.int32)

        def compiled(fn, *signature):
            return tf.function(fn, input_signature=list(signature), jit_compile=jit_compile)

        self.train_step = compiled(self._train_step, image_spec, label_spec)
        self.predict = compiled(lambda x: self.model(x, training=False), image_spec)
        self.extract_features = compiled(lambda x: self.backbone(x, training=False), image_spec)
        self.predict_from_features = compiled(lambda f: self.head(f), feature_spec)

    def parameter_counts(self) -> dict:
        trainable = sum(int(np.prod(v.shape)) for v in self.trained_variables)
        total = sum(int(np.prod(v.shape)) for v in self.model.variables)
        return {"trainable_params": trainable, "total_params": total}

    def trained_layers(self) -> dict:
        """The record's account of what trains in the backbone: how many
        variables, the first and last of their layers (in the module's
        variable order). (The BatchNorm policy is the spec's, plan.TrialSpec.)"""
        layers = [_layer_name(v.name) for v in self.trained_backbone_variables]
        return {
            "trained_backbone_variables": len(layers),
            "backbone_variables": len(self.backbone.trainable_variables) if trains_backbone(self.mode) else None,
            "trained_first_layer": layers[0] if layers else None,
            "trained_last_layer": layers[-1] if layers else None,
        }

    def training_forward(self, images):
        """Logits as a training step computes them: the backbone in the
        BatchNorm policy's mode, the head in training mode."""
        features = self.backbone(images, training=self._backbone_training)
        return self.head(features, training=True)

    def _train_step(self, images, labels):
        """Forward, backward and optimizer update on one batch of images."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.trained_variables)  # nothing below the first trained layer is recorded
            logits = self.training_forward(images)
            loss = self._loss(labels, logits) + _sum(self.model.losses)
            scaled = self._scaled(loss)
        self._apply(tape.gradient(scaled, self.trained_variables), self.trained_variables)
        return loss


def hub_layer(module_path: str, **kwargs):
    """hub.KerasLayer over the module at `module_path`. A TF2 SavedModel is
    loaded by hub.load and handed over as the callable it is: the layer
    tensorflow_hub builds from the path, without its attempt to import Keras 3
    for a load context first (an ImportError under tf_keras, after 2 s of
    importing Keras 3 and matplotlib, in every trial's process). A TF1 Hub
    module is no callable: its path goes in, and its signature is used."""
    from tlbench.worker.weights import is_tf1_hub_module

    return hub.KerasLayer(module_path if is_tf1_hub_module(module_path) else hub.load(module_path), **kwargs)


def _backbone(module_path: str, image_size: int, trainable: bool, batch_norm_momentum: float | None):
    """(hub.KerasLayer, whether `batch_norm_momentum` went to the module)."""
    if trainable and batch_norm_momentum is not None:
        layer = hub_layer(
            module_path, trainable=True, arguments={"batch_norm_momentum": batch_norm_momentum}, name="backbone"
        )
        try:  # inference mode: a probe call must not move the moving averages
            layer(tf.zeros([1, image_size, image_size, 3]), training=False)
            return layer, True
        except (TypeError, ValueError):  # no traced function takes the argument
            pass
    return hub_layer(module_path, trainable=trainable, name="backbone"), False


def _trained_backbone_variables(backbone, mode: str, ladder: Ladder | None, module_path: str) -> list:
    if not trains_backbone(mode):
        return []
    variables = list(backbone.trainable_variables)
    if mode == "finetune":
        return variables
    if ladder is None:
        raise ModuleError(f"mode {mode} needs the backbone's block layout (registry.Ladder); this backbone has none")
    pattern = re.compile(ladder.pattern(mode))
    chosen = [v for v in variables if pattern.search(v.name)]
    if not chosen:
        sample = ", ".join(v.name for v in variables[-3:])
        raise ModuleError(
            f"no variable of module {module_path} is in its {mode} (names matching {pattern.pattern!r}; "
            f"its last ones: {sample})"
        )
    return chosen


def _layer_name(variable_name: str) -> str:
    """`block_16_expand/kernel:0` -> `block_16_expand`."""
    return variable_name.split(":")[0].rpartition("/")[0] or variable_name


def _sum(losses):
    return tf.add_n(losses) if losses else 0.0


def batch_norm_momentum_note(classifier, module_path: str) -> str:
    """How the run's BatchNorm momentum reached the backbone, if at all."""
    from tlbench.worker.weights import exported_batch_norm_momentum

    if classifier.batch_norm != "train":
        return "unused: the backbone's BatchNorm runs in inference mode (batch_norm: frozen)"
    exported = exported_batch_norm_momentum(module_path)
    if exported is not None:
        return f"exported into tlbench's SavedModel ({exported:g})"
    if classifier.batch_norm_momentum_passed:
        return "passed to the module as its batch_norm_momentum argument"
    return "not applied: the module takes no batch_norm_momentum argument and keeps its own"
