"""Partial fine-tuning, the ladder between transfer and finetune: which
variables each rung trains, by the registry's block layout, for TF-Slim names
(TF Hub modules) and tf_keras names (stand-ins, converted modules) alike;
that a training step changes exactly those; the BatchNorm policy; and that
what a step keeps for its backward pass, and its FLOPs, fall with the depth
trained, by the graph."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tlbench.registry import BACKBONES, PARTIAL_MODES, get_backbone

MOBILENET = get_backbone("mobilenet_v2_035_128")
RESNET = get_backbone("resnet_v2_50")


def _layers(names, pattern) -> set[str]:
    return {name.split(":")[0].rpartition("/")[0] for name in names if re.search(pattern, name)}


def test_the_mobilenet_ladder_on_the_real_tf_hub_module_names(shared_module):
    import tensorflow as tf

    names = [name for name, _ in tf.train.list_variables(f"{shared_module}/variables/variables")]
    block = _layers(names, MOBILENET.ladder.last_block)
    stage = _layers(names, MOBILENET.ladder.last_stage)
    assert block == {
        *(f"MobilenetV2/expanded_conv_16/{part}" for part in ("expand", "depthwise", "project")),
        *(f"MobilenetV2/expanded_conv_16/{part}/BatchNorm" for part in ("expand", "depthwise", "project")),
        "MobilenetV2/Conv_1",
        "MobilenetV2/Conv_1/BatchNorm",
    }
    blocks_of_stage = {re.search(r"expanded_conv_(\d+)", layer).group(1) for layer in stage if "expanded" in layer}
    assert blocks_of_stage == {"13", "14", "15", "16"} and block < stage


def test_the_ladders_on_tf_keras_names():
    import tf_keras as keras

    mobilenet = keras.applications.MobileNetV2(input_shape=(128, 128, 3), alpha=0.35, include_top=False, weights=None)
    names = [v.name for v in mobilenet.variables]
    assert _layers(names, MOBILENET.ladder.last_block) == {
        "block_16_expand", "block_16_expand_BN", "block_16_depthwise", "block_16_depthwise_BN",
        "block_16_project", "block_16_project_BN", "Conv_1", "Conv_1_bn",
    }  # fmt: skip
    assert {int(m) for m in re.findall(r"block_(\d+)_", " ".join(_layers(names, MOBILENET.ladder.last_stage)))} == {
        13,
        14,
        15,
        16,
    }
    resnet = keras.applications.ResNet50V2(input_shape=(224, 224, 3), include_top=False, weights=None)
    names = [v.name for v in resnet.variables]
    block = _layers(names, RESNET.ladder.last_block)
    stage = _layers(names, RESNET.ladder.last_stage)
    assert block and all(layer.startswith("conv5_block3_") for layer in block - {"post_bn"}) and "post_bn" in block
    assert {re.match(r"conv5_block(\d)", layer).group(1) for layer in stage - {"post_bn"}} == {"1", "2", "3"}


def test_the_resnet_ladder_on_tf_slim_names():
    # TF Hub's ResNet V2 modules name variables as TF-Slim's resnet_v2 does.
    names = [
        "resnet_v2_50/block3/unit_6/bottleneck_v2/conv3/weights",
        "resnet_v2_50/block4/unit_1/bottleneck_v2/shortcut/weights",
        "resnet_v2_50/block4/unit_2/bottleneck_v2/conv1/weights",
        "resnet_v2_50/block4/unit_3/bottleneck_v2/preact/gamma",
        "resnet_v2_50/block4/unit_3/bottleneck_v2/conv3/biases",
        "resnet_v2_50/postnorm/gamma",
    ]
    assert [n for n in names if re.search(RESNET.ladder.last_block, n)] == names[3:]
    assert [n for n in names if re.search(RESNET.ladder.last_stage, n)] == names[1:]


def test_backbones_without_a_block_layout_run_the_two_ends_only():
    from tlbench.errors import UsageError
    from tlbench.plan import BUDGETS, ModuleSource, build_grid
    from tlbench.registry import check_ladder

    assert get_backbone("inception_v3").ladder is None
    with pytest.raises(UsageError, match="'inception_v3' does not have"):
        check_ladder("inception_v3", "last_block")
    source = ModuleSource("standin", "/nowhere")
    grid = build_grid(
        ["inception_v3", "mobilenet_v2_035_128"], ["transfer", "last_block"], [8], "digits", [0], BUDGETS["quick"],
        {"inception_v3": source, "mobilenet_v2_035_128": source},
    )  # fmt: skip
    assert [(s.backbone, s.mode) for s in grid] == [
        ("inception_v3", "transfer"), ("mobilenet_v2_035_128", "transfer"), ("mobilenet_v2_035_128", "last_block")
    ]  # fmt: skip
    assert all(b.ladder is not None for b in BACKBONES if b.in_default_grid)


@pytest.fixture(scope="module")
def mobilenet_standin() -> str:
    from tlbench.worker.weights import export_standin

    return str(export_standin(MOBILENET))


def _classifier(module: str, mode: str, **kwargs):
    from tlbench.worker.model import Classifier

    return Classifier(module, MOBILENET.image_size, 10, mode, ladder=MOBILENET.ladder, **kwargs)


def _batch():
    rng = np.random.default_rng(0)
    return rng.random((4, 128, 128, 3), dtype=np.float32), rng.integers(0, 10, 4).astype(np.int32)


def _changed_by_a_step(classifier) -> set[str]:
    before = [v.numpy() for v in classifier.model.variables]
    classifier.restart(1e-2, classifier.model.get_weights())
    classifier.train_step(*_batch())
    return {v.name for v, old in zip(classifier.model.variables, before, strict=True) if not np.array_equal(old, v)}


@pytest.mark.parametrize("mode", PARTIAL_MODES)
def test_a_partial_step_changes_only_the_variables_of_its_rung(mobilenet_standin, mode):
    classifier = _classifier(mobilenet_standin, mode)
    trained = {v.name for v in classifier.trained_variables}
    head = {v.name for v in classifier.head.trainable_variables}
    changed = _changed_by_a_step(classifier)
    # BatchNorm frozen: no moving statistic moves; nothing outside the rung moves.
    assert head <= changed <= trained, sorted(changed - trained)
    first_block = {"last_block": "block_16_", "last_stage": "block_13_"}[mode]
    assert any(name.startswith(first_block) for name in changed)  # the gradient reaches the rung's first block
    layers = classifier.trained_layers()
    assert layers["trained_first_layer"].startswith(first_block) and layers["trained_last_layer"] == "Conv_1_bn"
    assert layers["trained_backbone_variables"] == len(trained - head) < layers["backbone_variables"]
    assert classifier.batch_norm == "frozen"
    counts = classifier.parameter_counts()
    assert counts["trainable_params"] == sum(int(np.prod(v.shape)) for v in classifier.trained_variables)


def test_batch_norm_in_training_mode_moves_the_moving_statistics(mobilenet_standin):
    classifier = _classifier(mobilenet_standin, "last_block", batch_norm="train")
    changed = _changed_by_a_step(classifier)
    moved = {name for name in changed if "moving_" in name}
    assert moved and classifier.batch_norm == "train"
    # Transfer keeps the backbone frozen whatever the policy.
    assert _classifier(mobilenet_standin, "transfer", batch_norm="train").batch_norm == "frozen"


def test_what_a_step_keeps_and_computes_falls_with_the_depth_trained(mobilenet_standin):
    from tlbench.worker import costs, graphcost

    kept, trained_flops = {}, {}
    for mode in ("transfer", "last_block", "last_stage", "finetune"):
        classifier = _classifier(mobilenet_standin, mode)
        # As a trial counts it (graphcost.training_memory_per_image), through
        # the cache the trials of these modes share.
        kept[mode] = costs.trial_costs(classifier, mode, mobilenet_standin, "eigen")["predicted_activation_bytes_per_image"]
        trained_flops[mode] = graphcost.trained_forward_flops_per_image(
            classifier.backbone, classifier.trained_backbone_variables, MOBILENET.image_size
        )
    assert 0 < kept["transfer"] < kept["last_block"] < kept["last_stage"] < kept["finetune"], kept
    assert kept["finetune"] > 3 * kept["last_block"], kept
    backbone_flops = graphcost.forward_flops_per_image(classifier.backbone, MOBILENET.image_size)
    assert trained_flops["transfer"] == 0
    assert 0 < trained_flops["last_block"] < trained_flops["last_stage"] < trained_flops["finetune"]
    assert 0.98 * backbone_flops <= trained_flops["finetune"] <= backbone_flops


def test_no_variable_in_the_rung_is_a_clear_error(tiny_module):
    from tlbench.errors import ModuleError
    from tlbench.worker.model import Classifier

    with pytest.raises(ModuleError, match="no variable of module .* is in its last_block"):
        Classifier(tiny_module, 32, 2, "last_block", ladder=MOBILENET.ladder)
