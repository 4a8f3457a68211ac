"""How much memory a trial's device has, a smaller device emulated, and the
largest batch that fits a device by the graph's prediction.

A trial's device is its GPU, or on a CPU machine TensorFlow's CPU allocator,
which tlbench sets to BFC with the machine's memory as its limit
(tlbench/__init__.py). `--device-memory SIZE` makes the device SIZE: a GPU
gets a logical device of that size, and on a CPU the allocator's limit is
set to SIZE, so that a step past SIZE fails with TensorFlow's own
out-of-memory error, as on a GPU of that size. What a GPU trial keeps in
host memory (the decoded images and the timed batches) a CPU trial then
keeps outside the allocator, copying each batch in as a GPU does
(pipeline.py): held in the allocator, with the limit raised by their size,
they would leave the step larger regions than a device of SIZE has, and
batches fit there that don't fit the device.

No TensorFlow here: the worker calls `limit_cpu_allocator` before
TensorFlow's first op, and the reports call `largest_batch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tlbench.batch_search import TOLERANCE

GIB = 2**30
# The device sizes of the report's table, as GPUs are sold (GiB).
COMMON_SIZES = tuple(size * GIB for size in (8, 16, 24, 40, 80))
FIT_NOTE = (
    "The largest batch whose training step fits a device of each size, predicted from the graph: the weights, the "
    "Adam slots and the input batch, plus the most a step holds at once over them (its per-image and per-batch "
    "bytes, `predicted_train_step_peak_lines`). Fine-tuning keeps every layer's activations for the gradient, so it "
    "fits far smaller batches than transfer on the same device. TensorFlow's own runtime, and on a GPU machine the "
    "decoded images in host memory, come on top; the last column is the device this run's trials ran on "
    "(`device_memory_bytes`: the GPU's memory, the CPU allocator's limit, or --device-memory's size)."
)
FOUND_NOTE = (
    "Found by trying (--batch-size max): from the prediction, each batch tried as a short trial (one epoch per "
    "stage, the shortest timed passes) in a fresh worker on the trial's device, until the largest that fits and "
    f"the smallest that doesn't are within {TOLERANCE:.0%}; "
    "the trial then ran at the largest."
)
CPU_LIMIT_VARIABLE = "TF_CPU_BFC_MEM_LIMIT_IN_MB"  # read when the CPU allocator is made: at the first op
# A device emulated on a CPU runs TensorFlow's own CPU kernels: oneDNN's end an allocation that fails under
# the allocator's limit with a crash (SIGSEGV, seen with TensorFlow 2.21 on a CPU where oneDNN is on by
# default), not the ResourceExhaustedError a GPU raises. Set in the worker before TensorFlow is imported.
EMULATION_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}
TIMED_BATCHES = 8  # distinct batches a timed stream cycles through (pipeline.timed_batches)


def image_bytes(image_size: int) -> int:
    """One float32 RGB image at the backbone's size and its int32 label."""
    return image_size * image_size * 3 * 4 + 4


def timed_batches_bytes(batch_size: int, image_size: int, count: int = TIMED_BATCHES) -> int:
    """Bytes of `count` timed batches held in memory (pipeline.timed_batches)."""
    return count * batch_size * image_bytes(image_size)


def cpu_allocator_limit() -> int | None:
    """The CPU allocator's limit in this process, in bytes, as TensorFlow
    reads it at the first op; None where it is not set (TensorFlow's 64 GB
    default then)."""
    value = os.environ.get(CPU_LIMIT_VARIABLE, "")
    return int(value) * 2**20 if value.isdigit() else None


def limit_cpu_allocator(device_bytes: int) -> int:
    """Sets the CPU allocator's limit to a device of `device_bytes`; returns
    the limit, in bytes (whole MiB). Takes effect only before TensorFlow's
    first op in this process."""
    megabytes = -(-device_bytes // 2**20)
    os.environ[CPU_LIMIT_VARIABLE] = str(megabytes)
    return megabytes * 2**20


def _lines(record: dict) -> list[tuple[int, int]]:
    return [(int(per_image), int(per_batch)) for per_image, per_batch in record["predicted_train_step_peak_lines"]]


def predicted_device_peak(record: dict, batch_size: int) -> int:
    """A training step's predicted peak on its device at `batch_size`: the
    weights, the Adam slots and the step's input batch, which stay, plus the
    most the step holds at once over them (costs.trial_costs's fields)."""
    resident = record["weight_bytes"] + record["optimizer_slot_bytes"]
    resident += batch_size * image_bytes(record["image_size"])
    return resident + max(per_image * batch_size + per_batch for per_image, per_batch in _lines(record))


def largest_batch(record: dict, device_bytes: int) -> int:
    """The largest batch whose training step fits `device_bytes` by the
    graph's prediction (`predicted_device_peak`), 0 if none does. The peak is
    the largest of straight lines in the batch size, so each line bounds it."""
    fixed = record["weight_bytes"] + record["optimizer_slot_bytes"]
    per_input = image_bytes(record["image_size"])
    bounds = [(device_bytes - fixed - per_batch) // (per_image + per_input) for per_image, per_batch in _lines(record)]
    return max(min(bounds), 0)


def has_prediction(record: dict) -> bool:
    """Whether a record holds what `largest_batch` reads."""
    fields = ("predicted_train_step_peak_lines", "weight_bytes", "optimizer_slot_bytes", "image_size")
    return all(record.get(field) is not None for field in fields) and bool(record["predicted_train_step_peak_lines"])


@dataclass(frozen=True)
class DeviceFit:
    """The largest batch whose training step fits each device size, by the
    graph, for one backbone and mode (from any of its trials: the prediction
    does not depend on the batch a trial ran)."""

    backbone: str
    mode: str
    largest: tuple[int, ...]  # at each of COMMON_SIZES
    device_bytes: int | None  # this run's device, as its trials recorded it
    device_largest: int | None
    emulated: bool  # the device was --device-memory's

    def row(self) -> dict:
        """The report's row: a cell per column of `FIT_HEADERS`."""
        from tlbench.formats import format_bytes

        own = self.device_bytes and f"{self.device_largest} ({format_bytes(self.device_bytes)}"
        own = own and own + (", --device-memory)" if self.emulated else ")")
        return {"backbone": self.backbone, "mode": self.mode, **dict(zip(FIT_HEADERS, (*self.largest, own)))}


FIT_HEADERS = (*(f"{size // GIB} GiB" for size in COMMON_SIZES), "this run's device")


def device_fits(records) -> list[DeviceFit]:
    """A `DeviceFit` per backbone x mode with a prediction: the backbones in
    the records' order, each one's modes shallowest first."""
    from tlbench.registry import MODES

    fits: dict[tuple[str, str], DeviceFit] = {}
    for record in records:
        key = (str(record.get("backbone")), str(record.get("mode")))
        if key in fits or not has_prediction(record):
            continue
        own = record.get("device_memory_bytes") or None
        largest = tuple(largest_batch(record, size) for size in COMMON_SIZES)
        emulated = bool(record.get("device_memory_emulated"))
        fits[key] = DeviceFit(*key, largest, own, own and largest_batch(record, own), emulated)
    backbones = list(dict.fromkeys(backbone for backbone, _ in fits))
    order = {mode: i for i, mode in enumerate(MODES)}
    return [fits[key] for key in sorted(fits, key=lambda k: (backbones.index(k[0]), order.get(k[1], len(MODES))))]


def found_batches(records) -> list[str]:
    """--batch-size max: per backbone x mode searched (its first record), the
    batch found against the prediction, and every probe in the order tried."""
    from tlbench.formats import format_bytes

    lines: dict[tuple, str] = {}
    for record in records:
        search, key = record.get("batch_size_search"), (record.get("backbone"), record.get("mode"))
        if not search or key in lines:
            continue
        found, predicted, device = search.get("found"), search.get("predicted"), search.get("device_memory_bytes")
        ratio = f", {found / predicted:.2f}x the prediction" if found and predicted else ""
        probes = ", ".join(
            f"{p.get('batch_size')} {_PROBE_WORDS.get(p.get('status'), 'failed')}" for p in search.get("probes", [])
        )
        lines[key] = (
            f"`{key[0]}` {key[1]} on {format_bytes(device) if device else 'its device'}: found {found or 'none'}, "
            f"predicted {predicted or '-'}{ratio}; probes: {probes or 'none'} ({search.get('stopped', '?')})"
        )
    return list(lines.values())


_PROBE_WORDS = {"ok": "fits", "oom": "out of memory"}
