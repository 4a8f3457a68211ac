"""Figures derived across trials, from records alone (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MemorySlope:
    """Memory against batch size for one backbone and mode on one device: the
    least-squares line through the trials' peaks. Its slope is what each extra
    image costs, i.e. the activation memory per image (fine-tuning's cost);
    its intercept what the batch size doesn't change (weights, slots, caches)."""

    backbone: str
    mode: str
    device: str
    batch_sizes: tuple[int, ...]
    bytes_per_image: float  # slope of peak_memory_bytes
    intercept_bytes: float
    step_bytes_per_image: float | None  # slope of activation_memory_bytes, where recorded
    predicted_bytes_per_image: float | None  # from the graph (predicted_activation_bytes_per_image)


def memory_slopes(records) -> list[MemorySlope]:
    """One line per backbone x mode x device with ok trials at two or more
    batch sizes."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("status") == "ok" and _number(record.get("peak_memory_bytes")) and record.get("batch_size"):
            key = (str(record.get("backbone")), str(record.get("mode")), str(record.get("device")))
            groups.setdefault(key, []).append(record)
    slopes = []
    for (backbone, mode, device), group in sorted(groups.items()):
        sizes = np.array([r["batch_size"] for r in group], dtype=float)
        if len(set(sizes)) < 2:
            continue
        slope, intercept = np.polyfit(sizes, [float(r["peak_memory_bytes"]) for r in group], 1)
        step = [r.get("activation_memory_bytes") for r in group]
        step_slope = np.polyfit(sizes, step, 1)[0] if all(_number(v) for v in step) else None
        predicted = [
            r.get("predicted_activation_bytes_per_image")
            for r in group
            if _number(r.get("predicted_activation_bytes_per_image"))
        ]
        slopes.append(
            MemorySlope(
                backbone=backbone,
                mode=mode,
                device=device,
                batch_sizes=tuple(sorted({int(s) for s in sizes})),
                bytes_per_image=float(slope),
                intercept_bytes=float(intercept),
                step_bytes_per_image=None if step_slope is None else float(step_slope),
                predicted_bytes_per_image=float(np.median(predicted)) if predicted else None,
            )
        )
    return slopes


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
