"""What a backbone costs, counted from its TensorFlow graph (never typed in).

- `forward_flops_per_image(fn, image_size)`: floating-point operations of one
  inference pass on one image; `trained_forward_flops_per_image` the part of
  them from the first trained layer on.
- `training_memory_per_image(model, trainable_variables)`: the activation bytes
  one training step keeps per image for the backward pass, plus the bytes of
  weights, gradients and Adam slots (`TrainingMemory`), and the step's peak of
  live bytes (`TrainingMemory.step_peak`).
- `inference_step_peak(model)`: the peak of live bytes of an inference step;
  `step_peak_bytes(fn, image_size, batch_size)` the same for any traced
  callable (`liveness.StepPeak`).
- `kept_activations(...)`: the tensors behind that activation figure, for
  inspection and tests.

How the graph is obtained. A `tf.function` is traced with fixed shapes (batch
1, `image_size`² × 3, float32); variables are frozen to constants and every
nested function call is inlined by Grappler (the machinery of
`convert_variables_to_constants_v2`). Inlining matters: a `hub.KerasLayer`
runs its restored SavedModel as a function call, and the profiler only sees the
outer graph, so without it a whole backbone counts as zero. Freezing matters
too: it gives every weight a static shape, which the FLOP formulas need.
`convert_variables_to_constants_v2` itself cannot be used for the training
step: BatchNorm's moving-average updates (`AssignVariableOp` and friends) are
rewired to the frozen constants and the import fails. So `_frozen_graph` runs
the same two private steps (`_FunctionConverterDataInEager`,
`_replace_variables_by_constants`) and drops the variable updates before
importing — they are state updates, neither forward nor backward work. The
frozen weights are stored as one-value fill constants of the right shape (only
shapes matter here), which keeps ResNet50-sized graphs cheap to import and
profile.

FLOPs. `tf.compat.v1.profiler` with `float_operation()` over the frozen graph,
i.e. the sum of each op's registered "flops" statistic. Conventions that come
with it: a multiply-add is 2 FLOPs (Conv2D, DepthwiseConv2dNative, MatMul count
2 × output elements × reduction length, padding included); BiasAdd, Add, Mul,
Sub count 1 per element; Mean counts 1 per input element; AvgPool/MaxPool count
kernel area per output element. Ops with no registered statistic count 0, and
that includes Relu, Relu6 and FusedBatchNorm(V3) — so a BatchNorm'd network's
figure is its convolutions, matmuls, bias adds, residual adds and pooling.
Ops whose FLOP formula cannot be evaluated (incomplete shapes) make the count
fail here rather than being silently skipped as the profiler would.

Kept activations — the gradient-graph method. The traced step is
`loss = sum(reduce_sum(output)); grads = tape.gradient(loss, variables)`, with
the model called with `training=True`. In the frozen, inlined graph:

- forward ops: ops computed from the input image that the loss depends on (the
  image placeholder included);
- backward ops: ops the gradients depend on that the loss does not depend on.
  This is structural, not by name: after inlining, backward ops of a restored
  hub function are named `PartitionedCall/gradients/...`, those recorded by the
  outer tape `gradient_tape/...`;
- kept: every float tensor produced by a forward op that a backward op reads.
  Reads by ops that only need a shape (Shape, ShapeN, Size, Rank, ZerosLike,
  OnesLike) do not count: with static shapes they are constant-folded.
- aliases: a tensor read through Identity / IdentityN / Snapshot / Reshape /
  Squeeze / ExpandDims / StopGradient / EnsureShape is traced back to the
  tensor that owns the buffer (those ops forward their input buffer in
  TensorFlow), and each buffer counts once.
- only floating-point tensors count (int/bool buffers such as masks would not);
  FusedBatchNormV3's reserve_space_3 has no static shape and counts 0 (it is
  empty on CPU; on GPU it is a cuDNN buffer this module does not model).

The image itself is kept when the first layer trains (dW of a convolution
needs its input). BatchNorm in training mode keeps the batch mean and variance
(per channel, not per image). To separate per-image bytes from such per-batch
bytes the step is traced at batch 1 and batch 2: per image = kept(2) − kept(1),
per batch = kept(1) − per image. This is an estimate of what must be kept, not
of peak memory: it leaves out transient buffers of the backward pass (incoming
gradients, workspace) and whatever the runtime allocator rounds up or frees
late; Grappler's layout or remapping passes at run time may change it a little.

Step peak: the liveness simulation of `liveness`, over the same frozen graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.framework import convert_to_constants as _c2c
from tensorflow.python.framework import ops as _ops
from tensorflow.python.profiler.internal import flops_registry as _flops_registry  # noqa: F401 - registers FLOP stats
from tensorflow.python.util import deprecation as _deprecation

from tlbench.worker import liveness

METHOD = "gradient-graph"

# State updates (BatchNorm moving averages, optimizer steps): they would read a
# frozen constant where a resource is expected, and are neither forward nor
# backward computation.
_VARIABLE_UPDATES = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})
# Function calls and loops: if one survives inlining, the ops inside are
# invisible to both counts, so the graph is refused.
_OPAQUE_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If", "StatelessIf"})
# Outputs with no static shape that are known to be empty on CPU:
# FusedBatchNormV3's reserve_space_3 (shape [0] on CPU; a cuDNN workspace on
# GPU, not modelled here).
_EMPTY_ON_CPU = frozenset({("FusedBatchNormV3", 5)})


class GraphCostError(RuntimeError):
    """The graph cannot be counted (a call not inlined, an incomplete shape)."""


@dataclasses.dataclass(frozen=True)
class KeptTensor:
    """One forward buffer the backward pass reads."""

    name: str
    op_type: str
    shape: tuple
    dtype: str
    bytes: int


@dataclasses.dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training step (forward, backward, Adam update) needs.

    `activation_bytes_per_image` scales with the batch;
    `activation_bytes_per_batch` does not (BatchNorm batch statistics). The
    parameter figures assume gradients in the variables' dtype and Adam's two
    slots (m, v) per trainable variable. `step_peak`: the training step's peak
    of live bytes.
    """

    activation_bytes_per_image: int
    activation_bytes_per_batch: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_slot_bytes: int
    step_peak: liveness.StepPeak
    method: str = METHOD

    @property
    def parameter_bytes(self) -> int:
        return self.weight_bytes + self.gradient_bytes + self.optimizer_slot_bytes

    def total_bytes(self, batch_size: int) -> int:
        """Kept activations for `batch_size` images plus parameters and slots."""
        return self.activation_bytes_per_image * batch_size + self.activation_bytes_per_batch + self.parameter_bytes


def forward_flops_per_image(fn, image_size: int) -> int:
    """FLOPs of `fn` (images -> outputs) on one float32 image of
    `image_size`² × 3, as tf.compat.v1.profiler counts them (multiply-add = 2).
    Keras layers and models (hub.KerasLayer included) run with training=False."""

    graph = _frozen_graph(_trace(_inference(fn), image_size, batch_size=1))
    _flops_by_op_type(graph)  # raises if a FLOP-carrying op has an incomplete shape
    return _profiler_flops(graph)


def trained_forward_flops_per_image(fn, variables, image_size: int) -> int:
    """Forward FLOPs per image of the ops of `fn` that depend on any of
    `variables`: the part of the forward pass from the first trained layer
    on, whose backward a partial fine-tuning step runs."""
    concrete = _trace(_inference(fn), image_size, batch_size=1)
    handles = {id(v.handle) for v in variables}
    names = {inner.op.name for outer, inner in concrete.graph.captures if id(outer) in handles}
    graph = _frozen_graph(concrete)
    starts = [op for op in graph.get_operations() if op.name in names]
    downstream = set()
    for op in starts:
        downstream |= _descendants(op)
    with _deprecation.silence():
        return sum(int(_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0) for op in downstream)


def forward_flops_by_op_type(fn, image_size: int) -> dict[str, int]:
    """The same count split by op type (what the profiler counts, and where);
    the values add up to `forward_flops_per_image(fn, image_size)`."""
    return _flops_by_op_type(_frozen_graph(_trace(_inference(fn), image_size, batch_size=1)))


def training_memory_per_image(
    model, trainable_variables=None, *, image_size: int | None = None, forward=None, scratch=None
) -> TrainingMemory:
    """Activation bytes kept per image by a training step of `model` (called
    with training=True, or `forward(images)` when given, as a partial
    fine-tuning step runs; gradients w.r.t. `trainable_variables`, by default
    the model's own), the step's peak of live bytes, and the parameter bytes.
    `image_size` defaults to the model's input shape; `scratch(op)`, the
    working buffer of an op's kernel (liveness.live_bytes)."""
    if trainable_variables is None:
        trainable_variables = model.trainable_variables
    trainable_variables = list(trainable_variables)
    image_size = image_size or _input_size(model)
    kept, moments = [], []
    for batch in (1, 2):
        step = _training_step_graph(model, trainable_variables, image_size, batch, forward)
        kept.append(sum(t.bytes for t in _kept_in(step)) if step else 0)
        # Nothing trained: no backward pass, the step is the forward alone.
        moments.append(
            liveness.live_bytes(*step[:2], scratch=scratch)
            if step
            else _traced_live_bytes(forward or model, image_size, batch)
        )
    weights = _variable_bytes(model.variables)
    gradients = _variable_bytes(trainable_variables)
    return TrainingMemory(
        activation_bytes_per_image=kept[1] - kept[0],
        activation_bytes_per_batch=2 * kept[0] - kept[1],
        weight_bytes=weights,
        gradient_bytes=gradients,
        optimizer_slot_bytes=2 * gradients,
        step_peak=liveness.step_peak(*moments),
    )


def inference_step_peak(model, *, image_size: int | None = None) -> liveness.StepPeak:
    """The peak of live bytes of `model(images, training=False)`, per image
    and per batch. `image_size` defaults to the model's input shape."""
    image_size = image_size or _input_size(model)
    return liveness.step_peak(*(_traced_live_bytes(model, image_size, batch) for batch in (1, 2)))


def step_peak_bytes(fn, image_size: int, batch_size: int = 1) -> int:
    """The most bytes `fn` (images -> outputs; Keras layers and models in
    inference mode) holds at once on a float32 batch of `batch_size` images of
    `image_size`² × 3, by the liveness simulation of the module docstring."""
    return max((live for _, live in _traced_live_bytes(fn, image_size, batch_size)), default=0)


def _traced_live_bytes(fn, image_size: int, batch_size: int) -> list[tuple[str, int]]:
    concrete = _trace(_inference(fn), image_size, batch_size)
    graph = _frozen_graph(concrete)
    return liveness.live_bytes(graph, [graph.get_tensor_by_name(t.name) for t in concrete.outputs])


def kept_activations(
    model, trainable_variables, image_size: int, batch_size: int = 1, *, forward=None
) -> list[KeptTensor]:
    """The forward buffers a training step of `model` (or of `forward`)
    keeps for its backward pass at `batch_size`, in graph order (see the
    module docstring). As in the training step, the tape watches
    `trainable_variables` only: a partial fine-tuning step keeps nothing
    below its first trained layer."""
    step = _training_step_graph(model, list(trainable_variables), image_size, batch_size, forward)
    return _kept_in(step) if step else []


def _training_step_graph(model, trainable_variables: list, image_size: int, batch_size: int, forward):
    """(frozen graph, its outputs [loss, *gradients], the image tensor) of a
    training step: `loss = sum(reduce_sum(outputs))` and its gradients with
    respect to `trainable_variables`, the tape watching only them. None when
    nothing trains."""
    if not trainable_variables:
        return None
    forward = forward or (lambda images: model(images, training=True))

    def step(images):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(trainable_variables)
            outputs = forward(images)
            loss = tf.add_n([tf.reduce_sum(t) for t in tf.nest.flatten(outputs)])
        return loss, tape.gradient(loss, trainable_variables)

    concrete = _trace(step, image_size, batch_size)
    graph = _frozen_graph(concrete)
    outputs = [graph.get_tensor_by_name(t.name) for t in concrete.outputs]
    return graph, outputs, graph.get_tensor_by_name(concrete.inputs[0].name)


def _kept_in(step) -> list[KeptTensor]:
    graph, (loss, *gradients), image = step
    from_image = _descendants(image.op)
    before_loss = liveness.ancestors([loss.op])
    forward = from_image & before_loss
    backward = liveness.ancestors([g.op for g in gradients]) - before_loss

    kept = {}
    for op in backward:
        if op.type in liveness.SHAPE_ONLY_OPS:
            continue
        for tensor in op.inputs:
            root = liveness.buffer_owner(tensor)
            if root.op in forward and root.dtype.is_floating:
                kept[root.name] = root
    order = {op.name: i for i, op in enumerate(graph.get_operations())}
    return [_kept_tensor(t) for t in sorted(kept.values(), key=lambda t: (order[t.op.name], t.value_index))]


def _inference(fn):
    """Keras layers and models run in inference mode; other callables as is."""
    if isinstance(fn, keras.layers.Layer):
        return lambda images: fn(images, training=False)
    return fn


def _trace(fn, image_size: int, batch_size: int):
    spec = tf.TensorSpec([batch_size, image_size, image_size, 3], tf.float32, name="images")
    return tf.function(fn).get_concrete_function(spec)


def _frozen_graph(concrete) -> tf.Graph:
    """`concrete`'s graph with variables as constants and every function call
    inlined, minus variable updates, imported into a fresh tf.Graph (so each
    tensor has its inferred static shape)."""
    data = _c2c._FunctionConverterDataInEager(func=concrete, lower_control_flow=True, aggressive_inlining=True)
    graph_def, _ = _c2c._replace_variables_by_constants(data)
    # Weight values never matter here, only their shapes: each frozen variable
    # becomes a one-value (fill) constant of its shape. That keeps the graph
    # small (ResNet50's 94 MB of weights would otherwise be copied into the
    # GraphDef twice more, by import and by the profiler: about 1 s).
    handles = {id(v.handle) for v in concrete.graph.variables}
    from_variables = {inner.op.name for outer, inner in concrete.graph.captures if id(outer) in handles}
    for node in graph_def.node:
        if node.op == "Const" and node.name in from_variables:
            value = node.attr["value"].tensor
            dtype = tf.dtypes.as_dtype(value.dtype)
            shape = [d.size for d in value.tensor_shape.dim]
            value.CopyFrom(tf.make_tensor_proto(np.zeros((), dtype.as_numpy_dtype), dtype=dtype, shape=shape))
    dropped = {node.name for node in graph_def.node if node.op in _VARIABLE_UPDATES}
    nodes = [node for node in graph_def.node if node.name not in dropped]
    for node in nodes:
        inputs = [i for i in node.input if i.lstrip("^").split(":")[0] not in dropped]
        del node.input[:]
        node.input.extend(inputs)
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    opaque = sorted({op.type for op in graph.get_operations() if op.type in _OPAQUE_OPS})
    if opaque:
        raise GraphCostError(
            f"function calls or loops were not inlined ({', '.join(opaque)}); cannot count inside them"
        )
    return graph


def _profiler_flops(graph: tf.Graph) -> int:
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
        .with_empty_output()
        .build()
    )
    with _deprecation.silence():  # the FLOP formulas call a deprecated TF1 shape helper
        return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


def _flops_by_op_type(graph: tf.Graph) -> dict[str, int]:
    """The profiler's sum, by op type, from the same registered statistics;
    raises where the profiler would skip an op for want of a shape."""
    totals: dict[str, int] = {}
    with _deprecation.silence():
        for op in graph.get_operations():
            try:
                stats = _ops.get_stats_for_node_def(graph, op.node_def, "flops")
            except ValueError as error:
                raise GraphCostError(f"{op.type} {op.name}: shape not fully known ({error})") from error
            if stats.value:
                totals[op.type] = totals.get(op.type, 0) + int(stats.value)
    return totals


def _descendants(start) -> set:
    seen, stack = {start}, [start]
    while stack:
        for tensor in stack.pop().outputs:
            for consumer in tensor.consumers():
                if consumer not in seen:
                    seen.add(consumer)
                    stack.append(consumer)
    return seen


def _kept_tensor(tensor) -> KeptTensor:
    if (tensor.op.type, tensor.value_index) in _EMPTY_ON_CPU:
        return KeptTensor(tensor.name, tensor.op.type, (0,), tensor.dtype.name, 0)
    if not tensor.shape.is_fully_defined():
        raise GraphCostError(f"kept tensor {tensor.name} has no static shape: {tensor.shape}")
    return KeptTensor(
        name=tensor.name,
        op_type=tensor.op.type,
        shape=tuple(tensor.shape.as_list()),
        dtype=tensor.dtype.name,
        bytes=tensor.shape.num_elements() * tensor.dtype.size,
    )


def _variable_bytes(variables) -> int:
    unique = {v.ref(): v for v in variables}.values()  # a variable shared by two layers counts once
    return sum(v.shape.num_elements() * v.dtype.size for v in unique)


def _input_size(model) -> int:
    shape = tf.TensorShape(model.inputs[0].shape)
    if shape.rank != 4 or shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"cannot tell the image size from input shape {shape}; pass image_size")
    return int(shape[1])
