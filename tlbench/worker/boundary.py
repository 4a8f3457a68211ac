"""Partial fine-tuning on cached boundary activations.

In last_block and last_stage with the backbone's BatchNorm frozen (and no
augmentation: tlbench has none), the frozen part of the backbone gives the
trained part the same input every epoch. So the search computes it once per
split, at the boundary (the input of the first trained layer), and trains
only the part above it and the head on those activations: the same
variables, loss and Adam as a step through the whole backbone, on the same
batches, so the same losses within float tolerance
(tests/worker/test_boundary.py). The timed passes still time the real step,
and the test split is read through the whole model, into which the trained
weights are copied back.

Only where tlbench knows the backbone's layers: its own exports (stand-ins
and converted TF1 modules), rebuilt in tf_keras and given the module's
variables by name, and checked against the module on the trial's images.
Any other module is one restored function that can't be cut, and trains on
images as before; so does a split whose activations would not fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tlbench.registry import Backbone
from tlbench.worker.model import Classifier, Trainable

MAX_ABS_DIFFERENCE = 1e-4  # the split's features against the module's, on the trial's images (see `agree`)
MEMORY_SHARE = 0.25  # the cached activations may take this share of the memory available


@dataclass(frozen=True)
class Split:
    """A backbone cut at its first trained layer: `bottom` (images in [0, 1]
    -> boundary activations) and `top` (boundary -> features)."""

    bottom: keras.Model
    top: keras.Model
    layer: str  # the first trained layer, whose input is the boundary
    bytes_per_image: int  # of the boundary activations


def split_backbone(classifier: Classifier, module_path: str, backbone: Backbone, images) -> tuple[Split | None, str]:
    """(the split, "") or (None, why not) for a classifier in a partial mode
    whose BatchNorm is frozen. `images`: a batch of the trial's images, on
    which the split must give the module's features."""
    from tlbench.worker.weights import CONVERTED_STAMP, STANDIN_STAMP

    if classifier.mode not in ("last_block", "last_stage") or classifier.batch_norm != "frozen":
        return None, "trains the backbone's BatchNorm or all of it: its input changes every epoch"
    if classifier.mixed_precision:
        return None, "mixed precision: the head's float16 step is kept as it is"
    if classifier.model.losses:
        return None, "the module has regularization losses, which its trained part would not see"
    folder = Path(module_path)
    if (folder / STANDIN_STAMP).exists():
        from tlbench.worker.weights import standin_model

        model = standin_model(backbone)
    elif (folder / CONVERTED_STAMP).exists():
        from tlbench.worker.convert import converted_architecture

        model = converted_architecture(backbone)
    else:
        return None, "a module tlbench didn't export: one restored function, which can't be cut"
    architecture = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    if not _took_the_modules_variables(model, classifier.backbone.variables):
        return None, "the module's variables don't match its architecture's, name for name"
    trained = {id(v) for v in _matching(architecture.trainable_variables, classifier)}
    first = next(layer for layer in architecture.layers if any(id(w) in trained for w in layer.trainable_weights))
    boundary = first.input
    top = keras.Model(boundary, architecture.output, name="trained_part")
    bottom = keras.Model(architecture.input, boundary, name="frozen_part")
    split = Split(_scaled_input(bottom), top, first.name, int(np.prod(boundary.shape[1:])) * 4)
    features, own = (
        split.top(split.bottom(images, training=False), training=False).numpy(),
        classifier.extract_features(images).numpy(),
    )
    if not agree(own, features):
        return None, f"the split's features are {float(np.abs(features - own).max()):.2g} away from the module's"
    return split, ""


def agree(own: np.ndarray, other: np.ndarray, tolerance: float = MAX_ABS_DIFFERENCE) -> bool:
    """The same shape, and at most `tolerance` apart, scaled down with
    values below 1: a random stand-in's features are about 1e-10, where an
    absolute 1e-4 would take any features at all (another image's, say)."""
    if own.shape != other.shape:
        return False
    return float(np.abs(own - other).max()) <= tolerance * min(1.0, float(np.abs(own).max()))


def accuracy_path(
    classifier: Classifier, module_path: str, backbone: Backbone, train, val
) -> tuple[Split | None, dict]:
    """How the trial's search runs, and the record's account of it: on
    cached features (transfer), on boundary activations (a split), or on
    images, with why not on activations."""
    if classifier.mode == "transfer":
        return None, {"accuracy_path": "features", "accuracy_path_note": None, "boundary_layer": None}
    images, _ = next(iter(train.batches(8)))
    split, why_not = split_backbone(classifier, module_path, backbone, images)
    if split is not None:
        import psutil

        needed, room = split.bytes_per_image * (train.size + val.size), psutil.virtual_memory().available
        if needed > MEMORY_SHARE * room:
            split, why_not = None, f"its activations ({needed / 2**30:.1f} GiB) would take over a quarter of memory"
    if split is None:
        return None, {"accuracy_path": "images", "accuracy_path_note": why_not, "boundary_layer": None}
    return split, {"accuracy_path": "boundary", "accuracy_path_note": None, "boundary_layer": split.layer}


def _scaled_input(bottom: keras.Model) -> keras.Model:
    """`bottom` taking images in [0, 1], as the module does (x * 2 - 1 first)."""
    images = keras.Input(bottom.input_shape[1:], name="images")
    return keras.Model(images, bottom(images * 2.0 - 1.0), name="frozen_part")


def _took_the_modules_variables(model: keras.Model, variables) -> bool:
    by_name = {v.name: v for v in variables}
    own = model.variables
    if sorted(v.name for v in own) != sorted(by_name) or any(v.shape != by_name[v.name].shape for v in own):
        return False
    for variable in own:
        variable.assign(by_name[variable.name])
    return True


def _matching(variables, classifier: Classifier) -> list:
    names = {v.name for v in classifier.trained_backbone_variables}
    return [v for v in variables if v.name in names]


class Activations:
    """One split's boundary activations, computed once on the trial's device
    (a GPU, where there is one), kept in host memory: the device holds a
    batch at a time, as it holds images."""

    def __init__(self, split: Split, pipeline, batch_size: int, values: np.ndarray | None = None):
        """`values`: computed already (frozen.py), in the pipeline's order."""
        if values is None:  # not in a CPU scope: a tf.function runs on the device it is called under
            bottom = tf.function(lambda x: split.bottom(x, training=False))
            values = np.concatenate([bottom(x).numpy() for x, _ in pipeline.batches(batch_size)])
        with tf.device("CPU:0"):
            self.values = tf.convert_to_tensor(values)
            self.labels = tf.constant(pipeline.labels, tf.int32)
        self.size = pipeline.size
        self._order = pipeline.order

    def batches(self, batch_size: int, *, shuffle_seed: int | None = None):
        """The batches the images' pipeline gives, in its order, as
        activations, gathered in host memory (the scope ends before the
        yield: a generator's scope would hold over its caller's steps)."""
        order = self._order(shuffle_seed)
        for start in range(0, self.size, batch_size):
            rows = order[start : start + batch_size]
            with tf.device("CPU:0"):
                batch = tf.gather(self.values, rows), tf.gather(self.labels, rows)
            yield batch


class _Weights:
    """A list of variables with a Keras model's get_weights / set_weights."""

    def __init__(self, variables: list):
        self.variables = variables

    def get_weights(self) -> list:
        return [variable.numpy() for variable in self.variables]

    def set_weights(self, values: list) -> None:
        for variable, value in zip(self.variables, values, strict=True):
            variable.assign(value)


class TopTrainer(Trainable):
    """The trained part and the classifier's head on boundary activations:
    the classifier's trained variables (the top's, by name, and the head),
    its loss, a fresh Adam of the same settings."""

    def __init__(self, classifier: Classifier, split: Split):
        self.classifier, self.split = classifier, split
        # Not a Keras model calling the classifier's head: the head would keep it, and the rebuilt backbone, alive.
        self.model = _Weights(split.top.variables + classifier.head.variables)
        head = list(classifier.head.trainable_variables)
        self.trained_variables = _matching(split.top.trainable_variables, classifier) + head
        if len(self.trained_variables) != len(classifier.trained_variables):
            raise RuntimeError("the trained part misses some of the classifier's trained variables")
        self.optimizer = keras.optimizers.Adam()
        self.optimizer.build(self.trained_variables)
        spec = tf.TensorSpec([None, *split.top.input_shape[1:]], tf.float32)
        label_spec = tf.TensorSpec([None], tf.int32)
        jit = classifier.jit_compile
        self.train_step = tf.function(self._train_step, input_signature=[spec, label_spec], jit_compile=jit)
        self.predict = tf.function(lambda a: classifier.head(self.features(a)), input_signature=[spec], jit_compile=jit)
        self.features = tf.function(lambda a: split.top(a, training=False), input_signature=[spec], jit_compile=jit)

    def _train_step(self, activations, labels):
        """The classifier's step (model.Classifier._train_step) from the boundary up."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.trained_variables)
            logits = self.classifier.head(self.split.top(activations, training=False), training=True)
            loss = self.classifier._loss(labels, logits)
        self._apply(tape.gradient(loss, self.trained_variables), self.trained_variables)
        return loss

    def copy_to_classifier(self) -> None:
        """The top's weights into the classifier's backbone, by name (the head is shared)."""
        by_name = {v.name: v for v in self.classifier.backbone.variables}
        for variable in self.split.top.variables:
            by_name[variable.name].assign(variable)
