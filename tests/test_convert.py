"""TF1 Hub modules mapped onto tf_keras architectures, checked against the
original module on real images."""

import numpy as np
import pytest

from tlbench import data
from tlbench.errors import ModuleError
from tlbench.registry import get_backbone


@pytest.fixture(scope="module")
def digit_images():
    from tlbench.pipeline import SplitPipeline

    images = data.open_dataset(data.EMBEDDED)
    batch, _ = next(iter(SplitPipeline(images, np.arange(64), 128).batches(64)))
    return batch


def test_the_converted_mobilenet_matches_the_real_module(shared_module, digit_images):
    import tensorflow_hub as hub

    from tlbench.convert import tf1_module_as_keras

    converted = tf1_module_as_keras(shared_module, get_backbone("mobilenet_v2_035_128"))
    original = hub.KerasLayer(shared_module)(digit_images).numpy()
    features = converted(digit_images, training=False).numpy()
    assert features.shape == original.shape == (64, 1280)
    assert np.abs(features - original).max() <= 1e-4
    assert np.abs(original).max() > 1.0  # real activations, not a trivially small output


def test_a_module_of_another_architecture_is_a_clear_error(shared_module):
    from tlbench.convert import tf1_module_as_keras

    with pytest.raises(ModuleError, match="has shape .* not a mobilenet_v2_050_160 module"):
        tf1_module_as_keras(shared_module, get_backbone("mobilenet_v2_050_160"))
    with pytest.raises(ModuleError, match="MobileNet V2 family only, not ResNet50V2"):
        tf1_module_as_keras(shared_module, get_backbone("resnet_v2_50"))


def test_slim_scopes_of_keras_layer_names():
    from tlbench.convert import mobilenet_v2_scope

    assert mobilenet_v2_scope("Conv1") == "MobilenetV2/Conv"
    assert mobilenet_v2_scope("expanded_conv_project_BN") == "MobilenetV2/expanded_conv/project/BatchNorm"
    assert mobilenet_v2_scope("block_16_expand") == "MobilenetV2/expanded_conv_16/expand"
    assert mobilenet_v2_scope("Conv_1_bn") == "MobilenetV2/Conv_1/BatchNorm"
    assert mobilenet_v2_scope("out_relu") is None
