"""TF1 Hub modules as tf_keras models: the module's TF-Slim checkpoint mapped,
variable by variable, onto the matching `tf_keras.applications` architecture.

hub.KerasLayer can't fine-tune a TF1 Hub format module ("Setting
hub.KerasLayer.trainable = True is unsupported when loading from the TF1 Hub
format"). The same network rebuilt in tf_keras, with the module's weights, can
be exported as a TF2 SavedModel and fine-tuned like any other.

Done for the MobileNet V2 family (every depth multiplier and input size) and
the ResNet V2 family (50, 101, 152). The mapping is total in both directions:
every layer with weights gets a checkpoint variable of the same shape, and
every checkpoint variable is used, or the conversion fails with a clear error.

One architectural difference is mended rather than mapped: TF-Slim's ResNet V2
max-pools its stem with SAME padding (nothing before the first row and column,
one after), tf_keras pads one zero on every side and pools VALID. The windows
are shifted by a pixel, so the converted ResNet pools as Slim does.
"""

from __future__ import annotations

import re
from pathlib import Path

from tlbench.errors import ModuleError
from tlbench.registry import Backbone

# Keras BatchNormalization's weights, in order, and their TF-Slim names.
_BATCH_NORM = ("gamma", "beta", "moving_mean", "moving_variance")


def mobilenet_v2_scope(layer: str) -> str | None:
    """The TF-Slim variable scope of a tf_keras MobileNetV2 layer, e.g.
    `block_3_depthwise_BN` -> `MobilenetV2/expanded_conv_3/depthwise/BatchNorm`."""
    fixed = {
        "Conv1": "MobilenetV2/Conv",
        "bn_Conv1": "MobilenetV2/Conv/BatchNorm",
        "Conv_1": "MobilenetV2/Conv_1",
        "Conv_1_bn": "MobilenetV2/Conv_1/BatchNorm",
    }
    if layer in fixed:
        return fixed[layer]
    match = re.fullmatch(r"(?:expanded_conv|block_(\d+))_(expand|depthwise|project)(_BN)?", layer)
    if match is None:
        return None
    block = "expanded_conv" if match.group(1) is None else f"expanded_conv_{match.group(1)}"
    scope = f"MobilenetV2/{block}/{match.group(2)}"
    return f"{scope}/BatchNorm" if match.group(3) else scope


def resnet_v2_scope(layer: str, depth: int) -> str | None:
    """The TF-Slim variable scope of a tf_keras ResNet V2 layer, e.g.
    `conv3_block2_1_bn` -> `resnet_v2_50/block2/unit_2/bottleneck_v2/conv1/BatchNorm`
    (Keras stages conv2..conv5 are Slim's block1..block4)."""
    root = f"resnet_v2_{depth}"
    fixed = {"conv1_conv": f"{root}/conv1", "post_bn": f"{root}/postnorm"}
    if layer in fixed:
        return fixed[layer]
    match = re.fullmatch(r"conv(\d)_block(\d+)_(preact_bn|0_conv|[123]_conv|[12]_bn)", layer)
    if match is None:
        return None
    unit = f"{root}/block{int(match.group(1)) - 1}/unit_{match.group(2)}/bottleneck_v2"
    part = match.group(3)
    if part == "preact_bn":
        return f"{unit}/preact"
    if part == "0_conv":
        return f"{unit}/shortcut"
    conv = f"{unit}/conv{part[0]}"
    return f"{conv}/BatchNorm" if part.endswith("_bn") else conv


SCOPES = {
    "MobileNetV2": mobilenet_v2_scope,
    "ResNet50V2": lambda layer: resnet_v2_scope(layer, 50),
    "ResNet101V2": lambda layer: resnet_v2_scope(layer, 101),
    "ResNet152V2": lambda layer: resnet_v2_scope(layer, 152),
}


def slim_stem_pooling(architecture):
    """`architecture` (a tf_keras ResNet V2) with its stem max-pooled as
    TF-Slim does: SAME padding in place of one zero on every side."""
    import tf_keras as keras

    def clone(layer):
        if layer.name == "pool1_pad":
            return keras.layers.Identity(name=layer.name)
        if layer.name == "pool1_pool":
            return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(architecture, clone_function=clone)


def converted_architecture(backbone: Backbone):
    """The tf_keras Model a converted module is exported from: images in
    [0, 1] -> x * 2 - 1 -> `backbone`'s stand-in architecture, its stem
    pooled as TF-Slim's -> features; random weights."""
    from tlbench.worker.weights import standin_model

    return standin_model(backbone, adapt=slim_stem_pooling if backbone.standin.startswith("ResNet") else None)


def tf1_module_as_keras(module_path: str, backbone: Backbone):
    """A tf_keras Model, images in [0, 1] -> feature vector, holding the TF1
    module's weights in `backbone`'s stand-in architecture."""
    import tensorflow as tf
    import tf_keras as keras

    scope_of = SCOPES.get(backbone.standin)
    if scope_of is None:
        raise ModuleError(
            f"converting TF1 Hub modules is done for the MobileNet V2 and ResNet V2 families only, not "
            f"{backbone.standin} ({backbone.name}); run it with --mode transfer, or give a TF2 SavedModel with --module"
        )
    reader = tf.train.load_checkpoint(str(Path(module_path, "variables", "variables")))
    available = reader.get_variable_to_shape_map()
    model = converted_architecture(backbone)
    architecture = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    used = set()
    for layer in architecture.layers:
        if not layer.weights:
            continue
        scope = scope_of(layer.name)
        if scope is None:
            raise ModuleError(f"{backbone.standin} layer {layer.name} has no TF-Slim counterpart")
        if isinstance(layer, keras.layers.BatchNormalization):
            names = [f"{scope}/{name}" for name in _BATCH_NORM]
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            names = [f"{scope}/depthwise_weights"]
        else:
            names = [f"{scope}/weights"] + ([f"{scope}/biases"] if len(layer.weights) == 2 else [])
        for weight, name in zip(layer.weights, names):
            if name not in available:
                raise ModuleError(
                    f"{module_path} has no variable {name} for {backbone.name}'s layer {layer.name}: "
                    f"not a {backbone.name} module"
                )
            if tuple(available[name]) != tuple(weight.shape):
                raise ModuleError(
                    f"{module_path}: {name} has shape {available[name]}, {backbone.name}'s layer "
                    f"{layer.name} needs {list(weight.shape)}: not a {backbone.name} module"
                )
        layer.set_weights([reader.get_tensor(name) for name in names])
        used.update(names)
    unused = sorted(set(available) - used - {"global_step"})
    if unused:
        raise ModuleError(f"{module_path} has {len(unused)} variable(s) {backbone.name} doesn't use, e.g. {unused[0]}")
    return model


MAX_ABS_DIFFERENCE = 1e-4  # converted features against the original module's, on real images


def export_converted(module_path: str, backbone: Backbone, batch_norm_momentum: float) -> tuple[Path, float]:
    """(the converted TF2 SavedModel in tlbench's cache, the max abs feature
    difference it was checked at). Converted once per module folder and
    BatchNorm momentum (fixed when the SavedModel is traced); the export is
    checked against the original on real images (the embedded digits) and
    renamed into place only when it matches."""
    import json

    from tlbench.files import cache_root, computed_once
    from tlbench.worker.costs import module_identity_key
    from tlbench.worker.savedmodel import EXPORT_FORMAT
    from tlbench.worker.weights import CONVERTED_STAMP

    key = f"{backbone.name}-{module_identity_key(module_path)}-bnm{batch_norm_momentum:g}-{EXPORT_FORMAT}"
    target = cache_root() / "converted" / key
    stamp = target / CONVERTED_STAMP
    with computed_once(target):  # converted once for the trials that share the cache
        if not stamp.exists():
            _convert(module_path, backbone, batch_norm_momentum, target)
    return target, json.loads(stamp.read_text())["max_abs_difference"]


def _convert(module_path: str, backbone: Backbone, batch_norm_momentum: float, target: Path) -> None:
    import numpy as np

    from tlbench import data
    from tlbench.worker.model import hub_layer
    from tlbench.worker.pipeline import SplitPipeline
    from tlbench.worker.savedmodel import save_module_atomically
    from tlbench.worker.weights import CONVERTED_STAMP, set_batch_norm_momentum

    model = tf1_module_as_keras(module_path, backbone)
    set_batch_norm_momentum(model, batch_norm_momentum)
    images = data.open_dataset(data.EMBEDDED)
    batch, _ = next(iter(SplitPipeline(images, np.arange(64), backbone.image_size).batches(64)))
    original = hub_layer(module_path)(batch).numpy()

    def checked(staging: Path) -> dict:
        exported = hub_layer(str(staging))(batch).numpy()  # what trials will load
        difference = float(np.abs(exported - original).max())
        if difference > MAX_ABS_DIFFERENCE:
            raise ModuleError(
                f"converting {module_path} to {backbone.standin} gives features {difference:.2g} away from the "
                f"original (at most {MAX_ABS_DIFFERENCE:g} allowed)"
            )
        return {
            "original": str(module_path),
            "backbone": backbone.name,
            "max_abs_difference": difference,
            "batch_norm_momentum": batch_norm_momentum,
        }

    save_module_atomically(model, target, CONVERTED_STAMP, checked)
