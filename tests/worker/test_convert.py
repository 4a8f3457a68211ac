"""TF1 Hub modules mapped onto tf_keras architectures, checked against the
original module on real images."""

import numpy as np
import pytest

from tlbench import data
from tlbench.errors import ModuleError
from tlbench.registry import get_backbone


@pytest.fixture(scope="module")
def digit_images():
    from tlbench.worker.pipeline import SplitPipeline

    images = data.open_dataset(data.EMBEDDED)
    batch, _ = next(iter(SplitPipeline(images, np.arange(64), 128).batches(64)))
    return batch


def test_the_converted_mobilenet_matches_the_real_module(shared_module, digit_images):
    import tensorflow_hub as hub

    from tlbench.worker.convert import tf1_module_as_keras

    converted = tf1_module_as_keras(shared_module, get_backbone("mobilenet_v2_035_128"))
    original = hub.KerasLayer(shared_module)(digit_images).numpy()
    features = converted(digit_images, training=False).numpy()
    assert features.shape == original.shape == (64, 1280)
    assert np.abs(features - original).max() <= 1e-4
    assert np.abs(original).max() > 1.0  # real activations, not a trivially small output


def test_a_module_of_another_family_member_or_family_is_a_clear_error(shared_module):
    from tlbench.worker.convert import tf1_module_as_keras

    with pytest.raises(ModuleError, match="has shape .* not a mobilenet_v2_050_160 module"):
        tf1_module_as_keras(shared_module, get_backbone("mobilenet_v2_050_160"))
    with pytest.raises(ModuleError, match="has no variable resnet_v2_50/conv1/weights"):
        tf1_module_as_keras(shared_module, get_backbone("resnet_v2_50"))


def test_slim_scopes_of_keras_layer_names():
    from tlbench.worker.convert import mobilenet_v2_scope

    assert mobilenet_v2_scope("Conv1") == "MobilenetV2/Conv"
    assert mobilenet_v2_scope("expanded_conv_project_BN") == "MobilenetV2/expanded_conv/project/BatchNorm"
    assert mobilenet_v2_scope("block_16_expand") == "MobilenetV2/expanded_conv_16/expand"
    assert mobilenet_v2_scope("Conv_1_bn") == "MobilenetV2/Conv_1/BatchNorm"
    assert mobilenet_v2_scope("out_relu") is None


RESNET_BLOCKS = {"resnet_v2_50": (3, 4, 6, 3), "resnet_v2_101": (3, 4, 23, 3), "resnet_v2_152": (3, 8, 36, 3)}


@pytest.mark.parametrize("name", sorted(RESNET_BLOCKS))
def test_a_slim_resnet_v2_module_converts_to_matching_features(tmp_path, name):
    """A TF1 Hub module written with TF-Slim's ResNet V2 graph and variable
    names (tests/slim_resnet.py), mapped onto tf_keras ResNet*V2."""
    import tensorflow_hub as hub
    from slim_resnet import write_slim_resnet_v2_module

    from tlbench.worker.convert import tf1_module_as_keras
    from tlbench.worker.pipeline import SplitPipeline

    module = tmp_path / name
    write_slim_resnet_v2_module(module, scope=name, blocks=RESNET_BLOCKS[name])
    images = data.open_dataset(data.EMBEDDED)
    batch, _ = next(iter(SplitPipeline(images, np.arange(4), 224).batches(4)))
    original = hub.KerasLayer(str(module))(batch).numpy()
    features = tf1_module_as_keras(str(module), get_backbone(name))(batch, training=False).numpy()
    assert features.shape == original.shape == (4, 2048)
    assert np.abs(features - original).max() <= 1e-4
    assert np.abs(original).max() > 0.1 and np.ptp(original, axis=0).max() > 0.01  # features differ by image


def test_resnet_stem_pools_as_tf_slim_does():
    """TF-Slim max-pools conv1's output with SAME padding; tf_keras pads a zero
    on every side. The converted model pools as Slim does."""
    import tensorflow as tf
    import tf_keras as keras

    from tlbench.worker.convert import slim_stem_pooling

    stem = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.ZeroPadding2D(1, name="pool1_pad"),
            keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool"),
        ]
    )
    x = -tf.reshape(tf.range(36, dtype=tf.float32), (1, 6, 6, 1))  # all below the zero padding
    slim = tf.nn.max_pool2d(x, 3, 2, "SAME")
    assert not np.allclose(stem(x), slim)  # the stock padding differs ...
    assert np.array_equal(slim_stem_pooling(stem)(x), slim)  # ... the mended one is Slim's


def test_resnet_scopes_of_keras_layer_names():
    from tlbench.worker.convert import resnet_v2_scope

    unit = "resnet_v2_101/block3/unit_23/bottleneck_v2"
    assert resnet_v2_scope("conv1_conv", 101) == "resnet_v2_101/conv1"
    assert resnet_v2_scope("conv4_block23_preact_bn", 101) == f"{unit}/preact"
    assert resnet_v2_scope("conv4_block23_1_conv", 101) == f"{unit}/conv1"
    assert resnet_v2_scope("conv4_block23_2_bn", 101) == f"{unit}/conv2/BatchNorm"
    assert resnet_v2_scope("conv4_block23_3_conv", 101) == f"{unit}/conv3"
    assert resnet_v2_scope("conv4_block1_0_conv", 101) == "resnet_v2_101/block3/unit_1/bottleneck_v2/shortcut"
    assert resnet_v2_scope("post_bn", 101) == "resnet_v2_101/postnorm"
    assert resnet_v2_scope("conv4_block23_out", 101) is None


def test_other_architectures_are_a_clear_error(shared_module):
    from tlbench.worker.convert import tf1_module_as_keras

    with pytest.raises(ModuleError, match="MobileNet V2 and ResNet V2 families only, not InceptionV3"):
        tf1_module_as_keras(shared_module, get_backbone("inception_v3"))
