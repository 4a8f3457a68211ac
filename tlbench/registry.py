"""The backbones tlbench knows. Adding one is one `Backbone(...)` entry below.

Every entry is a TF Hub image feature-vector module (images in as floats in
[0, 1], one feature vector out) together with the `tf_keras.applications`
architecture that stands in for it when the real weights can't be had. All
stand-ins listed here expect inputs in [-1, 1] (Keras' "tf" preprocessing).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from tlbench.errors import UsageError

MODES = ("transfer", "finetune")
"""transfer: backbone frozen, only a new Dense head trains.
finetune: backbone trainable too (BatchNorm in training mode)."""


@dataclass(frozen=True)
class Backbone:
    name: str  # command-line name, also used in trial ids
    handle: str  # TF Hub handle of the TF2 feature-vector module
    image_size: int  # input height = width, pixels
    feature_dim: int  # length of the feature vector
    standin: str  # tf_keras.applications constructor of the same architecture
    standin_kwargs: dict = field(default_factory=dict)
    in_default_grid: bool = False


def _hub(path: str) -> str:
    return f"https://tfhub.dev/google/imagenet/{path}/feature_vector/5"


BACKBONES: tuple[Backbone, ...] = (
    Backbone("resnet_v2_50", _hub("resnet_v2_50"), 224, 2048, "ResNet50V2", in_default_grid=True),
    Backbone(
        "mobilenet_v2_035_128",
        _hub("mobilenet_v2_035_128"),
        128,
        1280,
        "MobileNetV2",
        {"alpha": 0.35},
        in_default_grid=True,
    ),
    Backbone("resnet_v2_101", _hub("resnet_v2_101"), 224, 2048, "ResNet101V2"),
    Backbone("resnet_v2_152", _hub("resnet_v2_152"), 224, 2048, "ResNet152V2"),
    Backbone("mobilenet_v2_050_160", _hub("mobilenet_v2_050_160"), 160, 1280, "MobileNetV2", {"alpha": 0.5}),
    Backbone("mobilenet_v2_100_224", _hub("mobilenet_v2_100_224"), 224, 1280, "MobileNetV2", {"alpha": 1.0}),
    Backbone("mobilenet_v2_140_224", _hub("mobilenet_v2_140_224"), 224, 1792, "MobileNetV2", {"alpha": 1.4}),
    Backbone("inception_v3", _hub("inception_v3"), 299, 2048, "InceptionV3"),
)

DEFAULT_BACKBONES = tuple(b.name for b in BACKBONES if b.in_default_grid)


def get_backbone(name: str) -> Backbone:
    for backbone in BACKBONES:
        if backbone.name == name:
            return backbone
    raise UsageError(_unknown("backbone", name, [b.name for b in BACKBONES]))


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(_unknown("mode", mode, MODES))
    return mode


def _unknown(kind: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}': {hint}known: {', '.join(known)}"
