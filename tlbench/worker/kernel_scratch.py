"""The working buffers a step's kernels take from the allocator beside the
graph's tensors, where they are known: TensorFlow's own CPU convolution
gradients (its Eigen kernels, which run unless oneDNN's do).

`Conv2DBackpropFilter` and `Conv2DBackpropInput` on a CPU
(`Conv2DCustomBackprop*Op`, tensorflow/core/kernels/conv_grad_*_ops) unfold
image patches (im2col) into a temporary buffer sized to fill a 30 MiB "L3
cache" working set: `shard` images of `output pixels × filter_h·filter_w·in_depth`
values each, `shard` being how many images' matrices (patches, output
gradient, filter gradient) fit in 30 MiB, at least one, whatever the batch.
The input gradient's kernel takes one image's patches only when its matrices
outgrow 256 KiB per thread (it then runs one parallel contraction per image).
Measured here (`TF_CPU_ALLOCATOR_USE_BFC`, one op at a time): 1-32 MiB a
gradient, as this predicts up to the allocator's rounding. Up to about 28 MiB
a step is on the order of MobileNet V2 0.35/128's whole step at batch 8.

Left out: oneDNN's kernels (their scratch is outside TensorFlow's allocator),
a GPU's cuDNN workspaces, depthwise gradients (measured: under 0.1 MiB), and
the allocator's rounding (a free chunk of up to twice the request). A batch of
one takes the single-image path of the input gradient; these are the sizes
from two images on.
"""

from __future__ import annotations

import os

EIGEN_TARGET_WORKING_SET_BYTES = 30 << 20  # "L3 cache size" in the kernels
EIGEN_MIN_THREAD_WORK_BYTES = 256 << 10  # "L2 cache size": the input gradient's per-thread threshold

# Which kernels a step's convolutions run, as `conv_kernels` names them.
EIGEN, ONEDNN, GPU = "eigen", "onednn", "gpu"


def conv_kernels(device: str, onednn: bool) -> str:
    """The convolution kernels a step on `device` runs: a GPU's, oneDNN's or Eigen's."""
    if not device.upper().startswith("CPU"):
        return GPU
    return ONEDNN if onednn else EIGEN


def intra_op_threads() -> int:
    """The threads one CPU kernel shards its work over (TensorFlow's default:
    every core)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1


def scratch_bytes(op, kernels: str, threads: int) -> int:
    """The bytes `op`'s kernel takes beside its inputs and outputs while it runs."""
    if kernels != EIGEN or op.type not in ("Conv2DBackpropFilter", "Conv2DBackpropInput"):
        return 0
    out_backprop = op.inputs[2]
    gradient = op.outputs[0]  # the filter's shape, or the input's
    filter_shape = gradient.shape if op.type == "Conv2DBackpropFilter" else op.inputs[1].shape
    if not all(t.is_fully_defined() for t in (out_backprop.shape, gradient.shape, filter_shape)):
        return 0  # as the liveness simulation counts a tensor without a static shape
    value_bytes = out_backprop.dtype.size
    _, out_rows, out_cols, out_depth = out_backprop.shape.as_list()
    filter_rows, filter_cols, in_depth, _ = filter_shape.as_list()
    output_pixels, patch = out_rows * out_cols, filter_rows * filter_cols * in_depth
    patches, out_grad, filter_grad = output_pixels * patch, output_pixels * out_depth, patch * out_depth
    work_unit = patches + out_grad + filter_grad  # values of one image's three matrices
    if op.type == "Conv2DBackpropInput" and work_unit * value_bytes // threads >= EIGEN_MIN_THREAD_WORK_BYTES:
        return patches * value_bytes  # one image at a time, each contraction on every thread
    target = EIGEN_TARGET_WORKING_SET_BYTES // value_bytes
    shard = -(-target // work_unit)  # images whose matrices fill the working set, at least one
    return shard * patches * value_bytes


class ScratchModel:
    """`scratch_bytes` of one kind of kernels, as liveness.live_bytes takes
    it; remembers the largest buffer it gave."""

    def __init__(self, kernels: str, threads: int):
        self.kernels, self.threads, self.largest = kernels, threads, 0

    def __call__(self, op) -> int:
        size = scratch_bytes(op, self.kernels, self.threads)
        self.largest = max(self.largest, size)
        return size
