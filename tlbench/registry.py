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

MODES = ("transfer", "last_block", "last_stage", "finetune")
"""How deep training reaches, shallowest first (the ladder):
transfer: backbone frozen, only a new Dense head trains.
last_block: the backbone's last block trains too (with the layers after it).
last_stage: the backbone's last stage (its blocks at the lowest resolution) trains too.
finetune: every backbone variable trains.
The backbone's BatchNorm runs in the run's BatchNorm policy (plan.BATCH_NORM_POLICIES)."""

PARTIAL_MODES = ("last_block", "last_stage")


def trains_backbone(mode: str) -> bool:
    return mode != "transfer"


@dataclass(frozen=True)
class Ladder:
    """Where a backbone's last block and last stage are, as regular
    expressions searched in variable names. Each covers both namings a module
    can have: TF-Slim's (TF Hub's TF1 and TF2 modules, e.g.
    `MobilenetV2/expanded_conv_16/...`) and tf_keras.applications' (stand-ins
    and converted modules, e.g. `block_16_expand/kernel`). Both also match the
    layers after the block (the last 1x1 convolution, the final norm)."""

    last_block: str
    last_stage: str

    def pattern(self, mode: str) -> str | None:
        """The variables `mode` trains; None: all of them (finetune) or none (transfer)."""
        return getattr(self, mode) if mode in PARTIAL_MODES else None


# MobileNet V2: 17 inverted-residual blocks (Slim: expanded_conv .. _16; Keras:
# expanded_conv, block_1 .. block_16), then the 1x1 conv to 1280 (Conv_1). The
# last stage is the 7x7 one: blocks 13-16 (Slim 13-16).
MOBILENET_V2_LADDER = Ladder(
    last_block=r"(^|/)(block_16_|expanded_conv_16/)|(^|/)Conv_1(_bn)?/",
    last_stage=r"(^|/)(block_1[3-6]_|expanded_conv_1[3-6]/)|(^|/)Conv_1(_bn)?/",
)
# ResNet V2 50: four stages of bottleneck units (Slim: block1..block4/unit_N;
# Keras: conv2..conv5_blockN), then the final pre-activation norm (Slim:
# postnorm; Keras: post_bn). ResNet 101/152 end the same way.
RESNET_V2_LADDER = Ladder(
    last_block=r"(^|/)(conv5_block3_|block4/unit_3/)|(^|/)(post_bn|postnorm)/",
    last_stage=r"(^|/)(conv5_|block4/)|(^|/)(post_bn|postnorm)/",
)


@dataclass(frozen=True)
class Backbone:
    name: str  # command-line name, also used in trial ids
    handle: str  # TF Hub handle of the TF2 feature-vector module
    image_size: int  # input height = width, pixels
    feature_dim: int  # length of the feature vector
    standin: str  # tf_keras.applications constructor of the same architecture
    standin_kwargs: dict = field(default_factory=dict)
    in_default_grid: bool = False
    ladder: Ladder | None = None  # None: only transfer and finetune


def _hub(path: str) -> str:
    return f"https://tfhub.dev/google/imagenet/{path}/feature_vector/5"


BACKBONES: tuple[Backbone, ...] = (
    Backbone(
        "resnet_v2_50", _hub("resnet_v2_50"), 224, 2048, "ResNet50V2", in_default_grid=True, ladder=RESNET_V2_LADDER
    ),
    Backbone(
        "mobilenet_v2_035_128",
        _hub("mobilenet_v2_035_128"),
        128,
        1280,
        "MobileNetV2",
        {"alpha": 0.35},
        in_default_grid=True,
        ladder=MOBILENET_V2_LADDER,
    ),
    Backbone("resnet_v2_101", _hub("resnet_v2_101"), 224, 2048, "ResNet101V2", ladder=RESNET_V2_LADDER),
    Backbone("resnet_v2_152", _hub("resnet_v2_152"), 224, 2048, "ResNet152V2", ladder=RESNET_V2_LADDER),
    Backbone(
        "mobilenet_v2_050_160",
        _hub("mobilenet_v2_050_160"),
        160,
        1280,
        "MobileNetV2",
        {"alpha": 0.5},
        ladder=MOBILENET_V2_LADDER,
    ),
    Backbone(
        "mobilenet_v2_100_224",
        _hub("mobilenet_v2_100_224"),
        224,
        1280,
        "MobileNetV2",
        {"alpha": 1.0},
        ladder=MOBILENET_V2_LADDER,
    ),
    Backbone(
        "mobilenet_v2_140_224",
        _hub("mobilenet_v2_140_224"),
        224,
        1792,
        "MobileNetV2",
        {"alpha": 1.4},
        ladder=MOBILENET_V2_LADDER,
    ),
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


def check_ladder(backbone: str, mode: str) -> None:
    """A partial mode needs to know where the backbone's blocks are."""
    if mode in PARTIAL_MODES and get_backbone(backbone).ladder is None:
        with_ladder = ", ".join(b.name for b in BACKBONES if b.ladder is not None)
        raise UsageError(
            f"mode '{mode}' needs the block layout of the backbone, which '{backbone}' does not have "
            f"in the registry (backbones with one: {with_ladder}); use transfer or finetune"
        )


def has_mode(backbone: str, mode: str) -> bool:
    return mode not in PARTIAL_MODES or get_backbone(backbone).ladder is not None


def _unknown(kind: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}': {hint}known: {', '.join(known)}"
