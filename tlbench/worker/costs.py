"""What a model costs, counted from its graph by `graphcost` and cached.

Counting traces and freezes the model (up to about 10 s for a training step
through a restored TF Hub function), and the answer depends only on the
module, the head and the mode, so it is kept in tlbench's cache beside the
stand-ins, keyed by the module folder's identity. Trials of the same backbone
and mode at other batch sizes, and later runs, read it back.

`backbone_flops` counts an architecture's forward FLOPs per image; the
driver asks for it through `entry.backbone_flops` and
`entry.prepare_backbones`, in a fresh process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tlbench.files import cache_root, computed_once, write_json_atomic
from tlbench.registry import get_backbone

COST_VERSION = 4  # bump when what is counted, or how, changes


def cache_dir() -> Path:
    return cache_root() / "costs"


TRIAL_COST_FIELDS = frozenset(
    {
        "forward_flops_per_image",
        "train_flops_per_image",
        "predicted_activation_bytes_per_image",
        "predicted_activation_bytes_per_batch",
        "weight_bytes",
        "gradient_bytes",
        "optimizer_slot_bytes",
        "predicted_train_step_peak_lines",
        "predicted_infer_step_peak_lines",
        "predicted_kernel_scratch_bytes",
        "prediction_method",
    }
)


def trial_costs(classifier, mode: str, module_path: str, kernels: str) -> dict:
    """FLOPs per image (forward, and a training step's), and the bytes a
    training step needs by the graph: kept activations per image and per batch,
    weights, gradients, Adam slots; and the peak of live bytes of a training
    step and of an inference step, as lines [per image, per batch] whose
    largest value at a batch size is the peak there (graphcost.StepPeak).

    Training FLOPs follow the usual model-FLOPs convention: the backward pass
    costs twice the forward of the layers that train (gradients with respect to
    their inputs and to their weights).

    `kernels`: the convolution kernels the step runs (kernel_scratch.conv_kernels);
    the peak counts the working buffers known of them."""
    from tlbench.worker import kernel_scratch

    threads = kernel_scratch.intra_op_threads() if kernels == kernel_scratch.EIGEN else None
    key = _key(
        version=COST_VERSION,
        module=_module_identity(module_path),
        mode=mode,
        batch_norm=classifier.batch_norm,
        image_size=classifier.image_size,
        head=[v.shape.as_list() for v in classifier.head.variables],
        mixed=classifier.optimizer.__class__.__name__,
        kernels=kernels,
        threads=threads,
    )
    with computed_once(cache_dir() / f"{key}.json"):  # one count for the trials that share the cache
        cached = _read(key)
        if cached is not None and TRIAL_COST_FIELDS <= cached.keys():  # else written by an unfinished version
            return cached
        return _counted(key, classifier, mode, kernel_scratch.ScratchModel(kernels, threads or 1))


def _counted(key: str, classifier, mode: str, scratch) -> dict:
    from tlbench.worker import graphcost

    forward = graphcost.forward_flops_per_image(classifier.model, classifier.image_size)
    backbone = graphcost.forward_flops_per_image(classifier.backbone, classifier.image_size)
    if mode == "finetune":
        trained = forward
    elif mode == "transfer":
        trained = forward - backbone  # the head only
    else:  # the layers from the first trained one on: the whole forward less the frozen part's
        trained = (
            forward
            - backbone
            + graphcost.trained_forward_flops_per_image(
                classifier.backbone, classifier.trained_backbone_variables, classifier.image_size
            )
        )
    memory = graphcost.training_memory_per_image(
        classifier.model, classifier.trained_variables, forward=classifier.training_forward, scratch=scratch
    )
    infer_peak = graphcost.inference_step_peak(classifier.model)
    costs = {
        "forward_flops_per_image": forward,
        "train_flops_per_image": forward + 2 * trained,
        "predicted_activation_bytes_per_image": memory.activation_bytes_per_image,
        "predicted_activation_bytes_per_batch": memory.activation_bytes_per_batch,
        "weight_bytes": memory.weight_bytes,
        "gradient_bytes": memory.gradient_bytes,
        "optimizer_slot_bytes": memory.optimizer_slot_bytes,
        "prediction_method": memory.method,
        "predicted_train_step_peak_lines": [list(line) for line in memory.step_peak.lines],
        "predicted_infer_step_peak_lines": [list(line) for line in infer_peak.lines],
        "predicted_kernel_scratch_bytes": scratch.largest,
    }
    _write(key, costs)
    return costs


def backbone_flops(name: str) -> int:
    """Forward FLOPs per image of a backbone's architecture (its stand-in, built
    in memory; the TF Hub module of the same architecture counts the same up
    to its input scaling)."""
    from tlbench.worker.weights import standin_model

    backbone = get_backbone(name)
    key = _backbone_key(name)
    with computed_once(cache_dir() / f"{key}.json"):
        cached = _read(key)
        if cached is None:
            from tlbench.worker import graphcost

            forward = graphcost.forward_flops_per_image(standin_model(backbone), backbone.image_size)
            cached = {"forward_flops_per_image": forward}
            _write(key, cached)
    return cached["forward_flops_per_image"]


def _backbone_key(name: str) -> str:
    backbone = get_backbone(name)
    return _key(backbone=name, standin=backbone.standin, kwargs=backbone.standin_kwargs, size=backbone.image_size)


def module_identity_key(module_path: str) -> str:
    """A short key for a module folder as it is now."""
    return _key(module=_module_identity(module_path))


def _module_identity(module_path: str) -> dict:
    """A module folder by its content: its graph, and its variables' index
    (which holds every variable shard's checksum). A re-exported or replaced
    module gets a new key; a copy elsewhere (TFHUB_CACHE_DIR, say) is not
    counted or converted again."""
    folder = Path(module_path)
    graph = next((folder / f for f in ("saved_model.pb", "saved_model.pbtxt") if (folder / f).exists()), None)
    if graph is None:  # not a SavedModel folder: the path as it is now
        stat = folder.stat()
        return {"path": str(folder.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    index = folder / "variables" / "variables.index"
    return {
        "graph": hashlib.sha256(graph.read_bytes()).hexdigest(),
        "variables": hashlib.sha256(index.read_bytes()).hexdigest() if index.exists() else None,
    }


def _key(**parts) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tensorflow = version("tensorflow")
    except PackageNotFoundError:
        tensorflow = "unknown"
    text = json.dumps({**parts, "tensorflow": tensorflow, "v": COST_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read(key: str) -> dict | None:
    try:
        return json.loads((cache_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None  # not counted yet, or a damaged entry: count again


def _write(key: str, costs: dict) -> None:
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_dir() / f"{key}.json", costs)
    except OSError:
        pass  # a read-only cache only costs a recount


class PredictedOutOfMemory(MemoryError):
    """A trial refused before training: the graph says it can't fit."""


def predicted_peaks(cost: dict, batch_size: int, timed_batch_bytes: int) -> dict:
    """The peaks the timed passes measure, predicted: what is resident then
    (weights, Adam slots, `timed_batch_bytes` of timed batches) plus the
    step's peak of live bytes at `batch_size`, for training and inference;
    and each step's peak as bytes per image and per batch at that size."""
    from tlbench.worker.liveness import StepPeak

    resident = cost["weight_bytes"] + cost["optimizer_slot_bytes"] + timed_batch_bytes
    figures, peaks = {}, {}
    for kind in ("train", "infer"):
        step = StepPeak(tuple(map(tuple, cost[f"predicted_{kind}_step_peak_lines"])))
        per_image, per_batch = step.line_at(batch_size)
        figures[f"predicted_{kind}_step_peak_bytes_per_image"] = per_image
        figures[f"predicted_{kind}_step_peak_bytes_per_batch"] = per_batch
        peaks[kind] = resident + step.at(batch_size)
    return {
        **figures,
        "predicted_peak_memory_bytes": peaks["train"],
        "predicted_infer_peak_memory_bytes": peaks["infer"],
    }


def refuse_if_too_big(predicted_peak_bytes: int, batch_size: int, cached_bytes: int, runtime_bytes: int | None) -> None:
    """Raise PredictedOutOfMemory when the predicted allocator peak of training
    (`predicted_peaks`), the runtime's overhead beside the allocator (measured
    now: `TensorFlowPeakMemory.runtime_overhead`, 0 where unknown) and the
    decoded images to cache exceed the memory this process can have: what is
    available now plus what it holds already. On a CPU that is the machine's
    RAM: going over would swap it, not fail cleanly."""
    import psutil

    runtime_bytes = runtime_bytes or 0
    needed = predicted_peak_bytes + runtime_bytes + cached_bytes
    room = psutil.virtual_memory().available + psutil.Process().memory_info().rss
    if needed > room:
        raise PredictedOutOfMemory(
            f"predicted {needed / 2**30:.1f} GiB for training at batch {batch_size} (an allocator peak of "
            f"{predicted_peak_bytes / 2**30:.1f} GiB: weights, Adam slots, timed batches and the step's live "
            f"tensors; {runtime_bytes / 2**30:.1f} GiB of runtime beside the allocator; "
            f"{cached_bytes / 2**30:.1f} GiB of images held beside the allocator) > {room / 2**30:.1f} GiB free for this trial: "
            "refused before training"
        )
