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


@dataclass(frozen=True)
class AccuracySpread:
    """Test accuracy of one configuration (backbone x mode x batch size x
    weights) over the seeds it ran with, and how it compares with the best."""

    backbone: str
    mode: str
    batch_size: int
    weights: str
    seeds: tuple[int, ...]
    test_mean: float
    test_std: float | None  # sample standard deviation; None with one seed
    val_mean: float
    val_std: float | None
    verdict: str  # see NOISE_RULE

    @property
    def row(self) -> dict:
        """The fields as a record-like dict, for the column renderers."""
        return {**self.__dict__, "n_seeds": len(self.seeds)}


NOISE_RULE = (
    "a configuration is `within noise` of the best when their mean test accuracies differ by less than "
    "two standard errors of the difference, sqrt(s1²/n1 + s2²/n2) × 2 (about 95 % for normal noise); "
    "with a single seed the spread is unknown and no configuration is called better"
)


def accuracy_spreads(records) -> list[AccuracySpread]:
    """Mean and standard deviation of test (and validation) accuracy over the
    seeds of each configuration, ok trials only, best mean first."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("status") == "ok" and _number(record.get("test_accuracy")):
            key = (
                str(record.get("backbone")),
                str(record.get("mode")),
                int(record.get("batch_size") or 0),
                str(record.get("weights")),
            )
            groups.setdefault(key, []).append(record)
    summaries = []
    for (backbone, mode, batch_size, weights), group in groups.items():
        test = np.array([float(r["test_accuracy"]) for r in group])
        val = np.array([float(r.get("val_accuracy") or 0.0) for r in group])
        summaries.append(
            {
                "backbone": backbone,
                "mode": mode,
                "batch_size": batch_size,
                "weights": weights,
                "seeds": tuple(sorted(int(r.get("seed") or 0) for r in group)),
                "test_mean": float(test.mean()),
                "test_std": float(test.std(ddof=1)) if len(test) > 1 else None,
                "val_mean": float(val.mean()),
                "val_std": float(val.std(ddof=1)) if len(val) > 1 else None,
            }
        )
    summaries.sort(key=lambda s: (-s["test_mean"], s["backbone"], s["mode"], s["batch_size"]))
    return [AccuracySpread(**s, verdict=_verdict(s, summaries[0])) for s in summaries]


def _verdict(summary: dict, best: dict) -> str:
    if summary["test_mean"] == best["test_mean"]:
        return "best"  # ties share it
    if summary["test_std"] is None or best["test_std"] is None:
        return "spread unknown (one seed)"
    standard_error = np.sqrt(
        summary["test_std"] ** 2 / len(summary["seeds"]) + best["test_std"] ** 2 / len(best["seeds"])
    )
    difference = best["test_mean"] - summary["test_mean"]
    return "within noise of best" if difference <= 2 * standard_error else "below best"
