"""A TF1 Hub format ResNet V2 feature-vector module, built here for tests.

The tests of `tlbench.worker.convert` need a TF1 Hub module with TF-Slim's ResNet V2
architecture and variable names (like TF Hub's
`google/imagenet/resnet_v2_50/feature_vector`), and no real one is available
offline. `write_slim_resnet_v2_module` writes one with random but sensible
weights. It mirrors TF-Slim's `nets/resnet_v2.py` and `nets/resnet_utils.py`
(tensorflow/models, research/slim) as called by those modules:
`resnet_v2_50(images * 2 - 1, num_classes=None, is_training=False)` under
`resnet_arg_scope()`, i.e.

- root: `conv1` = `conv2d_same` 7x7/2, 64 filters, weights and biases, no
  BatchNorm, no activation; `pool1` = 3x3/2 max-pool with SAME padding (set by
  `resnet_arg_scope`; for an even size that pads nothing before, one after);
- `block1..block4`, base depths 64/128/256/512, output depth 4x that, units
  `unit_1..unit_n` of `bottleneck_v2`; a block's stride (2, 2, 2, 1) is the
  stride of its *last* unit (`resnet_v2_block`);
- `bottleneck_v2`: `preact` = BatchNorm + ReLU of the input; shortcut = 1x1
  conv `shortcut` of `preact` (weights, biases, strided) when the depth
  changes, else the *input* subsampled (1x1 max-pool with the stride, or the
  input itself at stride 1); residual = `conv1` 1x1 (BatchNorm + ReLU) ->
  `conv2` = `conv2d_same` 3x3 with the stride (BatchNorm + ReLU) -> `conv3`
  1x1 (weights, biases, no activation); output = shortcut + residual;
- `postnorm` = BatchNorm + ReLU, then the global average pool `pool5`.

`conv2d_same` at stride 1 is a SAME convolution; at stride s > 1 it zero-pads
explicitly ((k - 1) // 2 before, the rest after) and convolves VALID, which
differs from a strided SAME convolution on even sizes.

BatchNorm is `slim.batch_norm` in inference mode: scale=True, epsilon 1e-5,
`(x - moving_mean) / sqrt(moving_variance + 1e-5) * gamma + beta`.

Variable names, exactly as Slim creates them (SCOPE = `scope`, e.g.
`resnet_v2_50`; B in 1..4, U in 1..blocks[B-1]; `slim.batch_norm(...,
scope='preact')` puts its variables directly in `preact/`, a conv's
normalizer_fn puts them in `<conv>/BatchNorm/`):

    SCOPE/conv1/weights                                        [7, 7, 3, 64]
    SCOPE/conv1/biases                                         [64]
    SCOPE/blockB/unit_U/bottleneck_v2/preact/{gamma,beta,moving_mean,moving_variance}
    SCOPE/blockB/unit_1/bottleneck_v2/shortcut/{weights,biases}   (first unit only)
    SCOPE/blockB/unit_U/bottleneck_v2/conv1/weights
    SCOPE/blockB/unit_U/bottleneck_v2/conv1/BatchNorm/{gamma,beta,moving_mean,moving_variance}
    SCOPE/blockB/unit_U/bottleneck_v2/conv2/weights
    SCOPE/blockB/unit_U/bottleneck_v2/conv2/BatchNorm/{gamma,beta,moving_mean,moving_variance}
    SCOPE/blockB/unit_U/bottleneck_v2/conv3/{weights,biases}
    SCOPE/postnorm/{gamma,beta,moving_mean,moving_variance}

That is 2 + 16 per unit + 2 per block + 4 variables: 270 for ResNet-50
(blocks 3, 4, 6, 3), 542 for ResNet-101, 814 for ResNet-152; there is no
`global_step` and nothing else.

The module follows the layout of Google's TF1 Hub modules (checked against
`mobilenet_v2_035_128/feature_vector/2`): `tfhub_module.pb` (a ModuleDef with
format FORMAT_V3), `saved_model.pb` with a MetaGraph for the empty tag set
(the one `hub.load` / `hub.KerasLayer` pick for TF1 modules), signatures
`default` (input `images`, output `default`: the [batch, depth] feature
vector) and `image_feature_vector` (the same plus Slim's end points), input
`hub_input/images` and output `hub_output/feature_vector/SpatialSqueeze`, and
the variables in `variables/variables.*`. Unlike TF Hub's modules there is no
`train` MetaGraph (hub.KerasLayer never loads it) and the images may be of any
size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import tlbench  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow

BATCH_NORM_EPSILON = 1e-5
BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)

# tensorflow_hub's ModuleDef proto (module_def.proto, not shipped by the pip
# package): `message ModuleDef { enum Format { FORMAT_UNSPECIFIED = 0;
# FORMAT_V3 = 3; } Format format = 1; }`. Field 1 as a varint is tag byte
# 0x08, then the value 3: the same two bytes as Google's own modules.
MODULE_DEF_FORMAT_V3 = b"\x08\x03"

# How far conv3 and the projection shortcut are scaled below He-normal, so the
# residual sum grows gently through the units instead of doubling at each.
_RESIDUAL_SCALE = 0.25
_SHORTCUT_SCALE = 0.5


def write_slim_resnet_v2_module(path, *, scope="resnet_v2_50", blocks=(3, 4, 6, 3), seed=0) -> None:
    """Writes a TF1 Hub format image feature-vector module to `path` (a new or
    empty folder): images [batch, height, width, 3] in [0, 1] -> features
    [batch, 4 * 512] through TF-Slim's ResNet V2 with `blocks` units per block
    (3, 4, 6, 3 is ResNet-50; 3, 4, 23, 3 ResNet-101; 3, 8, 36, 3 ResNet-152),
    its variables under `scope`, weights drawn from
    `numpy.random.default_rng(seed)`."""
    import tensorflow as tf

    if len(blocks) != len(BASE_DEPTHS) or min(blocks) < 1:
        raise ValueError(f"blocks must be 4 positive unit counts, not {blocks!r}")
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty")
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        builder = _SlimGraph(np.random.default_rng(seed))
        with v1.name_scope("hub_input"):
            images = v1.placeholder(tf.float32, [None, None, None, 3], name="images")
            net = images * 2.0 - 1.0
        features, end_points = builder.resnet_v2(net, scope, blocks)
        with v1.name_scope("hub_output/feature_vector"):
            features = tf.squeeze(features, [1, 2], name="SpatialSqueeze")
        end_points["default"] = features

        build_info = v1.saved_model.utils.build_tensor_info
        inputs = {"images": build_info(images)}
        signatures = {
            "default": v1.saved_model.signature_def_utils.build_signature_def(
                inputs, {"default": build_info(features)}
            ),
            "image_feature_vector": v1.saved_model.signature_def_utils.build_signature_def(
                inputs, {key: build_info(tensor) for key, tensor in end_points.items()}
            ),
        }
        with v1.Session(graph=graph) as session:
            # The values go in through the initializers' feeds, so the GraphDef
            # keeps small zero initializers rather than 100 MB of constants.
            session.run(
                [variable.initializer for variable, _ in builder.variables],
                {variable.initial_value: value for variable, value in builder.variables},
            )
            saved = v1.saved_model.Builder(str(path))
            saved.add_meta_graph_and_variables(session, [], signature_def_map=signatures, strip_default_attrs=True)
            saved.save()
    with open(os.path.join(path, "tfhub_module.pb"), "wb") as module_def:
        module_def.write(MODULE_DEF_FORMAT_V3)


class _SlimGraph:
    """The Slim layers ResNet V2 uses, as plain tf.compat.v1 ops in the
    default graph, each variable paired with its random value."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.variables = []  # (tf.Variable, numpy value)

    def variable(self, name, value, trainable=True):
        import tensorflow as tf

        v1 = tf.compat.v1
        value = np.asarray(value, np.float32)
        # Like slim.model_variable: global and model variables, and trainable
        # (added by get_variable) unless a moving statistic.
        variable = v1.get_variable(
            name,
            value.shape,
            tf.float32,
            initializer=v1.zeros_initializer(),
            trainable=trainable,
            collections=[v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES],
            use_resource=True,
        )
        self.variables.append((variable, value))
        return variable

    def batch_norm(self, net, scope, relu=True):
        """slim.batch_norm(net, scale=True, epsilon=1e-5, is_training=False,
        activation_fn=relu or None, scope=scope): variables in `scope/`."""
        import tensorflow as tf

        depth = net.shape[-1]
        rng = self.rng
        with tf.compat.v1.variable_scope(scope):
            beta = self.variable("beta", rng.normal(0.0, 0.05, depth))
            gamma = self.variable("gamma", rng.uniform(0.8, 1.2, depth))
            mean = self.variable("moving_mean", rng.normal(0.0, 0.05, depth), trainable=False)
            variance = self.variable("moving_variance", rng.uniform(0.7, 1.3, depth), trainable=False)
            net, _, _ = tf.compat.v1.nn.fused_batch_norm(
                net, gamma, beta, mean, variance, epsilon=BATCH_NORM_EPSILON, is_training=False
            )
            return tf.nn.relu(net) if relu else net

    def conv2d(self, net, depth, kernel, stride, scope, padding="SAME", batch_norm=True, scale=1.0):
        """slim.conv2d(net, depth, kernel, stride, padding, scope=scope) under
        resnet_arg_scope: BatchNorm (in `scope/BatchNorm/`) + ReLU, no biases;
        with batch_norm=False (normalizer_fn=None, activation_fn=None): biases,
        no activation. Weights He-normal times `scale`."""
        import tensorflow as tf

        fan_in = kernel * kernel * net.shape[-1]
        with tf.compat.v1.variable_scope(scope) as conv_scope:
            weights = self.variable(
                "weights", self.rng.normal(0.0, scale * np.sqrt(2.0 / fan_in), (kernel, kernel, net.shape[-1], depth))
            )
            net = tf.nn.conv2d(net, weights, [1, stride, stride, 1], padding, name="Conv2D")
            if batch_norm:
                net = self.batch_norm(net, "BatchNorm")
            else:
                net = tf.nn.bias_add(net, self.variable("biases", self.rng.normal(0.0, 0.01, depth)), name="BiasAdd")
            return net, conv_scope.name

    def conv2d_same(self, net, depth, kernel, stride, scope, **kwargs):
        """resnet_utils.conv2d_same: SAME at stride 1; else explicit zero
        padding, (kernel - 1) // 2 before and the rest after, then VALID."""
        import tensorflow as tf

        if stride == 1:
            return self.conv2d(net, depth, kernel, 1, scope, "SAME", **kwargs)
        pad_total = kernel - 1
        pad_beg = pad_total // 2
        pad_end = pad_total - pad_beg
        net = tf.pad(net, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end], [0, 0]])
        return self.conv2d(net, depth, kernel, stride, scope, "VALID", **kwargs)

    def bottleneck(self, net, depth, depth_bottleneck, stride, end_points):
        """resnet_v2.bottleneck in variable scope `bottleneck_v2`."""
        import tensorflow as tf

        with tf.compat.v1.variable_scope(None, "bottleneck_v2") as unit_scope:
            preact = self.batch_norm(net, "preact")
            if net.shape[-1] == depth:
                if stride == 1:
                    shortcut = net
                else:  # resnet_utils.subsample
                    with tf.compat.v1.name_scope("shortcut"):
                        shortcut = tf.nn.max_pool2d(net, 1, stride, "SAME", name="MaxPool")
            else:
                shortcut, name = self.conv2d(
                    preact, depth, 1, stride, "shortcut", batch_norm=False, scale=_SHORTCUT_SCALE
                )
                end_points[name] = shortcut
            residual, name = self.conv2d(preact, depth_bottleneck, 1, 1, "conv1")
            end_points[name] = residual
            residual, name = self.conv2d_same(residual, depth_bottleneck, 3, stride, "conv2")
            end_points[name] = residual
            residual, name = self.conv2d(residual, depth, 1, 1, "conv3", batch_norm=False, scale=_RESIDUAL_SCALE)
            end_points[name] = residual
            output = tf.add(shortcut, residual, name="add")
            end_points[unit_scope.name] = output
            return output

    def resnet_v2(self, images, scope, blocks):
        """resnet_v2.resnet_v2(images, blocks, num_classes=None,
        is_training=False, global_pool=True, scope=scope): (the pooled
        [batch, 1, 1, depth] features, Slim's end points by name)."""
        import tensorflow as tf

        end_points = {}
        with tf.compat.v1.variable_scope(scope) as root:
            net, name = self.conv2d_same(images, 64, 7, 2, "conv1", batch_norm=False)
            end_points[name] = net
            with tf.compat.v1.name_scope("pool1"):
                net = tf.nn.max_pool2d(net, 3, 2, "SAME", name="MaxPool")
            for index, (units, base_depth, block_stride) in enumerate(zip(blocks, BASE_DEPTHS, BLOCK_STRIDES)):
                with tf.compat.v1.variable_scope(f"block{index + 1}") as block_scope:
                    for unit in range(units):
                        stride = block_stride if unit == units - 1 else 1
                        with tf.compat.v1.variable_scope(f"unit_{unit + 1}"):
                            net = self.bottleneck(net, 4 * base_depth, base_depth, stride, end_points)
                    end_points[block_scope.name] = net
            net = self.batch_norm(net, "postnorm")
            net = tf.reduce_mean(net, [1, 2], keepdims=True, name="pool5")
            end_points[f"{root.name}/global_pool"] = net
        return net, end_points
