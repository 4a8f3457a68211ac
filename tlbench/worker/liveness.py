"""Which buffers a step holds at once: the liveness simulation over a frozen,
inlined TensorFlow graph (`graphcost` builds the graph), and what it needs
to know of TensorFlow's buffers (aliases, in-place kernels).

Step peak — the liveness simulation. What the allocator holds at the worst
moment of a step, over what was resident before it: the working set of the
forward pass (large at a large batch even when nothing is kept), the kept
activations, the backward pass's incoming gradients. The same frozen, inlined
graph (the same traced training step, only trained variables watched; for
inference `model(images, training=False)`) is walked op by op, in the
executor-like order: the GraphDef's node order when it is topological, else
Kahn's algorithm preferring earlier nodes. Only the ops the step's outputs
depend on run (the dropped variable updates leave dead branches behind).

- an op's output buffers are allocated when it runs (every numeric dtype, its
  real bytes) and freed once its last data consumer ran; reads by shape-only
  ops do not count, and their outputs are constant-folded (0 bytes);
- aliasing ops (`ALIAS_OPS`) share their input's buffer; ops whose kernels
  may forward an input's buffer (`_IN_PLACE_OPS`: element-wise ops, BiasAdd,
  activations), and an inference-mode BatchNorm fused into the Conv2D before
  it, reuse an input of the same shape that nothing reads later;
- resident before the step, so 0: constants (frozen weights: `weight_bytes`;
  a Const's buffer is built once with its kernel) and the input images (the
  caller's batch);
- the step's outputs (the loss and the gradients; the logits) stay live to its
  end; tensors without a static shape count 0.

Traced at batch 1 and 2 like the kept activations, each moment (the bytes live
while one op runs) is split into per_image × b + per_batch. The peak at batch
b is the largest moment there, and which moment that is can change with the
batch: late in a partial fine-tuning step the trained block's gradients (per
batch) are live, early the frozen forward's large feature maps (per image), so
batch 1 and 2 alone would miss the latter. `StepPeak.lines` keeps the moments
that are the peak at some batch size (the upper envelope). Left out: the
allocator's rounding and fragmentation (TensorFlow's BFC allocator may hand a
buffer a whole free chunk of up to twice its size), kernels' scratch buffers
other than those `kernel_scratch` knows (passed in as `scratch`), other
fusions that drop intermediate tensors, ops the executor runs in parallel
(which can hold more at once), and the real step's cross-entropy loss and
Adam update (this step's loss is a plain sum).
"""

from __future__ import annotations

import dataclasses
import heapq

import tensorflow as tf

# Ops whose output shares its input's buffer (TensorFlow forwards it).
ALIAS_OPS = frozenset(
    {
        "Identity",
        "IdentityN",
        "Snapshot",
        "StopGradient",
        "PreventGradient",
        "Reshape",
        "Squeeze",
        "ExpandDims",
        "EnsureShape",
    }
)
# Ops whose kernels hand an input's buffer to their output when no one else
# holds it (`forward_input_or_allocate_output` in TensorFlow's unary and binary
# cwise kernels, BiasAdd, the activations and their gradients).
_IN_PLACE_OPS = frozenset(
    {
        "Relu",
        "Relu6",
        "Elu",
        "Sigmoid",
        "Tanh",
        "BiasAdd",
        "AddV2",
        "Add",
        "Sub",
        "Mul",
        "RealDiv",
        "Maximum",
        "Minimum",
        "Neg",
        "Square",
        "Sqrt",
        "Rsqrt",
        "ReluGrad",
        "Relu6Grad",
    }
)
# FusedBatchNorm allocates its output (measured on CPU, oneDNN on), but in
# inference mode right after a Conv2D, Grappler's remapper fuses the two into
# one op: the normalised output is the convolution's buffer.
_BATCH_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
# Ops that read only their input's shape, not its data.
SHAPE_ONLY_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike"})


@dataclasses.dataclass(frozen=True)
class StepPeak:
    """The most bytes a step holds at once, over what is resident before it
    (weights, optimizer slots, its input batch), at any batch size. Each
    moment of the step holds per_image × batch + per_batch bytes; `lines` are
    the (per_image, per_batch) of the moments that are the peak at some batch
    size, least per image first (see the module docstring)."""

    lines: tuple[tuple[int, int], ...]

    def line_at(self, batch_size: int) -> tuple[int, int]:
        """(per_image, per_batch) of the peak moment at `batch_size`."""
        return max(self.lines, key=lambda line: (line[0] * batch_size + line[1], line[0]))

    def at(self, batch_size: int) -> int:
        per_image, per_batch = self.line_at(batch_size)
        return per_image * batch_size + per_batch


def step_peak(one: list[tuple[str, int]], two: list[tuple[str, int]]) -> StepPeak:
    """The step's peak from its moments at batch 1 and 2 (op types and live
    bytes; names of inlined functions differ from trace to trace): each
    moment's bytes per image and per batch, and of those lines the upper
    envelope over batch sizes from 1 up."""
    pairs = [(live_one, live_two) for (_, live_one), (_, live_two) in zip(one, two)]
    if [op_type for op_type, _ in one] != [op_type for op_type, _ in two]:
        # The two traces' ops don't line up (never seen so far): the line
        # through the two peaks, as the kept activations are split.
        pairs = [(max((live for _, live in one), default=0), max((live for _, live in two), default=0))]
    lines = {}  # per image -> the most per batch with it
    for live_one, live_two in pairs:
        per_image, per_batch = live_two - live_one, 2 * live_one - live_two
        lines[per_image] = max(per_batch, lines.get(per_image, per_batch))
    if not lines:
        return StepPeak(((0, 0),))
    current = max(lines.items(), key=lambda line: (line[0] + line[1], line[0]))  # the peak at batch 1
    envelope = [current]
    while steeper := [line for line in lines.items() if line[0] > current[0]]:
        # The next piece: the steeper line that overtakes the current one first.
        current = min(steeper, key=lambda line: ((current[1] - line[1]) / (line[0] - current[0]), -line[0]))
        envelope.append(current)
    return StepPeak(tuple(envelope))


def live_bytes(graph: tf.Graph, outputs: list, scratch=None) -> list[tuple[str, int]]:
    """(op type, bytes live while it runs) for each op `graph` runs to
    compute `outputs`, in order: the liveness simulation of the module
    docstring. `scratch(op)`: the working buffer its kernel takes beside
    its inputs and outputs while it runs (kernel_scratch.py), if any."""
    ops = execution_order(graph, ancestors([t.op for t in outputs], control=True))
    reads = {}  # tensor -> data reads by the ops that run; an output is read once more, at the end
    for op in ops:
        if op.type not in SHAPE_ONLY_OPS:
            for tensor in op.inputs:
                reads[tensor] = reads.get(tensor, 0) + 1
    for tensor in outputs:
        reads[tensor] = reads.get(tensor, 0) + 1
    owner = {}  # tensor -> the buffer it lives in (None: not counted)
    size, pending = {}, {}  # live buffer -> bytes; buffer -> reads still to come
    live, moments = 0, []
    for op in ops:
        inputs = [] if op.type in SHAPE_ONLY_OPS else list(op.inputs)
        for tensor in op.outputs:
            if op.type in ALIAS_OPS:  # a constant's alias (a frozen weight read) stays uncounted
                buffer = owner[op.inputs[tensor.value_index if op.type == "IdentityN" else 0]]
            else:
                buffer = _forwarded_input(op, tensor, inputs, owner, size, pending)
                if buffer is None and _counted_bytes(tensor):
                    buffer = tensor
                    size[buffer], pending[buffer] = _counted_bytes(tensor), 0
                    live += size[buffer]
            owner[tensor] = buffer
            if buffer is not None:
                pending[buffer] += reads.get(tensor, 0)
        moments.append((op.type, live + (scratch(op) if scratch else 0)))
        touched = [owner[t] for t in inputs + list(op.outputs) if owner[t] is not None]
        for tensor in inputs:
            if owner[tensor] is not None:
                pending[owner[tensor]] -= 1
        for buffer in touched:
            if pending[buffer] == 0 and buffer in size:  # the last read is done (or none was to come)
                live -= size.pop(buffer)
    return moments


def _forwarded_input(op, tensor, inputs: list, owner: dict, size: dict, pending: dict):
    """The input buffer an in-place op (or a BatchNorm fused into its
    convolution) hands to `tensor`, if any: an input of the same shape and
    dtype whose buffer no one reads after this op (a buffer read twice by the
    op itself is not handed over)."""
    if tensor.value_index != 0:
        return None
    if op.type in _BATCH_NORM_OPS and not op.get_attr("is_training") and op.inputs[0].op.type == "Conv2D":
        inputs = inputs[:1]
    elif op.type not in _IN_PLACE_OPS:
        return None
    for candidate in inputs:
        buffer = owner.get(candidate)
        if (
            buffer in size
            and pending[buffer] == 1
            and candidate.dtype == tensor.dtype
            and candidate.shape.is_fully_defined()
            and candidate.shape == tensor.shape
        ):
            return buffer
    return None


def _counted_bytes(tensor) -> int:
    """Bytes of a buffer the step allocates: 0 for constants and the input
    images (resident before the step), shape-only ops' outputs (folded),
    tensors with no static shape, and non-numeric dtypes."""
    if tensor.op.type in {"Const", "Placeholder"} | SHAPE_ONLY_OPS:
        return 0
    dtype = tensor.dtype
    if not (dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex):
        return 0
    if not tensor.shape.is_fully_defined():
        return 0
    return tensor.shape.num_elements() * dtype.size


def execution_order(graph: tf.Graph, ops: set) -> list:
    """`ops` in the order the step runs them: the graph's order when it is
    topological, else Kahn's algorithm taking the earliest ready op first."""
    order = [op for op in graph.get_operations() if op in ops]
    index = {op: i for i, op in enumerate(order)}

    def predecessors(op):
        return {t.op for t in op.inputs if t.op in index} | {c for c in op.control_inputs if c in index}

    if all(index[p] < index[op] for op in order for p in predecessors(op)):
        return order
    waiting = {op: len(predecessors(op)) for op in order}
    successors = {op: [] for op in order}
    for op in order:
        for p in predecessors(op):
            successors[p].append(op)
    ready = [index[op] for op in order if waiting[op] == 0]
    heapq.heapify(ready)
    result = []
    while ready:
        op = order[heapq.heappop(ready)]
        result.append(op)
        for s in successors[op]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, index[s])
    return result


def ancestors(starts, *, control: bool = False) -> set:
    """Ops the `starts` depend on through data edges, and control edges when
    `control` (themselves included)."""
    seen, stack = set(starts), list(starts)
    while stack:
        op = stack.pop()
        for before in [t.op for t in op.inputs] + (list(op.control_inputs) if control else []):
            if before not in seen:
                seen.add(before)
                stack.append(before)
    return seen


def buffer_owner(tensor):
    """Follows aliasing ops back to the tensor that owns the buffer."""
    while tensor.op.type in ALIAS_OPS:
        tensor = tensor.op.inputs[tensor.value_index if tensor.op.type == "IdentityN" else 0]
    return tensor
