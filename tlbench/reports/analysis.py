"""Figures derived across trials, from records alone (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tlbench import stability
from tlbench.reports.chance import Guessing, guessing


@dataclass(frozen=True)
class MemorySlope:
    """Memory against batch size for one backbone and mode on one device: the
    least-squares line through the trials' peaks. Its slope is what each extra
    image costs, i.e. the activation memory per image (fine-tuning's cost);
    its intercept what the batch size doesn't change (weights, slots, caches).

    The intercept is reported only where a line can say it: three or more
    batch sizes (two points always fit a line exactly, whatever the noise)
    and a non-negative value (a negative fixed part means the points are not
    on a line: noise, or memory that grows faster than the batch size);
    `intercept_note` says why not otherwise."""

    backbone: str
    mode: str
    device: str
    batch_sizes: tuple[int, ...]
    bytes_per_image: float  # slope of peak_memory_bytes
    intercept_bytes: float | None
    intercept_note: str | None  # why there is no intercept
    step_bytes_per_image: float | None  # slope of activation_memory_bytes, where recorded
    predicted_bytes_per_image: float | None  # from the graph (predicted_activation_bytes_per_image)
    predicted_peak_bytes_per_image: float | None  # slope of predicted_peak_memory_bytes, where recorded
    peak_over_predicted: float | None  # median over the trials of peak_memory_bytes / predicted_peak_memory_bytes


# What the report says of the fit (columns.MEMORY_COLUMNS).
MEMORY_FIT_NOTE = (
    "Lines fitted through each backbone and mode's memory over its batch sizes. The slope of "
    "`step mem` (what a training step adds to the memory in use before it) is what one more image "
    "costs a step: the activation memory per image, fine-tuning's cost. Fine-tuning keeps every "
    "layer's activations for the gradient; transfer keeps only the feature vector, and what its "
    "step adds is the frozen forward pass's passing buffers. The prediction is the graph's count "
    "of kept activations. The slope of `peak mem` also holds the timed batches resident in memory; "
    "beside it the slope of the predicted peak (weights, Adam slots, timed batches and the graph's "
    "simulated peak of a step's live tensors) and the median of measured peak / predicted peak over "
    "the trials. The fixed part of `peak mem` (the intercept: weights, slots, caches) is given only "
    "from three or more batch sizes and when it comes out non-negative: two points fit any line, and a negative one means the "
    "points are not on a line."
)


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
        intercept_note = _intercept_note(len(set(sizes)), float(intercept))
        step = [r.get("activation_memory_bytes") for r in group]
        step_slope = np.polyfit(sizes, step, 1)[0] if all(_number(v) for v in step) else None
        predicted = [
            r.get("predicted_activation_bytes_per_image")
            for r in group
            if _number(r.get("predicted_activation_bytes_per_image"))
        ]
        predicted_peak = [r.get("predicted_peak_memory_bytes") for r in group]
        has_peak = all(_number(v) and v > 0 for v in predicted_peak)
        slopes.append(
            MemorySlope(
                backbone=backbone,
                mode=mode,
                device=device,
                batch_sizes=tuple(sorted({int(s) for s in sizes})),
                bytes_per_image=float(slope),
                intercept_bytes=None if intercept_note else float(intercept),
                intercept_note=intercept_note,
                step_bytes_per_image=None if step_slope is None else float(step_slope),
                predicted_bytes_per_image=float(np.median(predicted)) if predicted else None,
                predicted_peak_bytes_per_image=float(np.polyfit(sizes, predicted_peak, 1)[0]) if has_peak else None,
                peak_over_predicted=(
                    float(np.median([r["peak_memory_bytes"] / r["predicted_peak_memory_bytes"] for r in group]))
                    if has_peak
                    else None
                ),
            )
        )
    return slopes


MIN_SIZES_FOR_INTERCEPT = 3


def _intercept_note(batch_sizes: int, intercept: float) -> str | None:
    if batch_sizes < MIN_SIZES_FOR_INTERCEPT:
        return f"needs {MIN_SIZES_FOR_INTERCEPT}+ batch sizes"
    if intercept < 0:
        return "fit < 0: not a line"
    return None


def _number(value) -> bool:
    """A finite int or float (not a bool)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _whole(value) -> int:
    """An int field, 0 when it is anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _no_result(group: list[dict]) -> str:
    status = str(group[0].get("status"))
    return "incomplete" if status == "ok" else status


@dataclass(frozen=True)
class Configuration:
    """One choice a practitioner can make, backbone x mode x batch size (with
    its weights, on one device), summed up over the seeds it ran with: test
    accuracy's mean and spread, speed, memory, and how its accuracy compares
    with the best."""

    backbone: str
    mode: str
    batch_size: int
    weights: str
    device: str
    seeds: tuple[int, ...]
    status: str  # "ok" when any seed finished ok, else the first seed's status
    test_mean: float | None
    test_std: float | None  # sample standard deviation; None with fewer than two seeds
    val_mean: float | None
    val_std: float | None
    train_images_per_sec: float | None  # median over the ok seeds
    infer_images_per_sec: float | None
    peak_memory_bytes: float | None  # the largest over the ok seeds
    activation_memory_bytes: float | None
    # Any ok seed's unstable figures ("seed N: why"), and "smoke" when any
    # seed's timing was (stability.py): a median over seeds is no better.
    unstable: dict[str, str]
    timing_quality: str | None
    guessing: Guessing | None  # what guessing scores on the test split (chance.py); None when unrecorded
    verdict: str  # against the most accurate; see NOISE_RULE

    @property
    def name(self) -> str:
        return f"{self.backbone} {self.mode} batch {self.batch_size}"

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def standin(self) -> bool:
        return self.weights.startswith("standin")

    @property
    def at_chance(self) -> bool:
        """Mean test accuracy at chance level (chance.py): every seed read the same test split."""
        return self.guessing is not None and self.guessing.holds(self.test_mean)

    @property
    def row(self) -> dict:
        """The fields as a record-like dict, for the column renderers."""
        return {**self.__dict__, "n_seeds": self.n_seeds}


NOISE_RULE = (
    "two configurations are within noise of each other when their mean test accuracies differ by at most "
    "two standard errors of the difference, 2 × sqrt(s1²/n1 + s2²/n2) (about 95 % for normal noise); "
    "with a single seed the spread is unknown and no configuration is called more accurate"
)


def configurations(records) -> list[Configuration]:
    """Every configuration of a run, most accurate first (then faster);
    configurations with no ok trial (oom, error) last."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        key = (
            str(record.get("backbone")),
            str(record.get("mode")),
            _whole(record.get("batch_size")),
            str(record.get("weights")),
            str(record.get("device")),
        )
        groups.setdefault(key, []).append(record)
    summaries = [_summary(key, group) for key, group in groups.items()]
    summaries.sort(
        key=lambda s: (s["test_mean"] is None, -(s["test_mean"] or 0.0), -(s["train_images_per_sec"] or 0.0))
    )
    unjudged = [Configuration(**s, verdict="") for s in summaries]
    # The best is the most accurate whose accuracy may rank: pretrained, above chance.
    best = next((c for c in unjudged if c.test_mean is not None and not c.standin and not c.at_chance), None)
    return [replace(c, verdict=_verdict(c, best)) for c in unjudged]


def within_noise(a, b) -> bool | None:
    """Whether two configurations' mean test accuracies are within noise of
    each other (NOISE_RULE); None when either ran with one seed."""
    if a.test_std is None or b.test_std is None:
        return None
    standard_error = np.sqrt(a.test_std**2 / a.n_seeds + b.test_std**2 / b.n_seeds)
    return bool(abs(a.test_mean - b.test_mean) <= 2 * standard_error)


def _summary(key: tuple, group: list[dict]) -> dict:
    backbone, mode, batch_size, weights, device = key
    ok = [r for r in group if r.get("status") == "ok" and _number(r.get("test_accuracy"))]

    def figures(field: str) -> list[float]:
        return [float(r[field]) for r in ok if _number(r.get(field))]

    def mean(field):
        values = figures(field)
        return float(np.mean(values)) if values else None

    def std(field):
        values = figures(field)
        return float(np.std(values, ddof=1)) if len(values) > 1 else None

    def median(field):
        values = figures(field)
        return float(np.median(values)) if values else None

    def largest(field):
        values = figures(field)
        return max(values) if values else None

    return {
        "backbone": backbone,
        "mode": mode,
        "batch_size": batch_size,
        "weights": weights,
        "device": device,
        "seeds": tuple(sorted(_whole(r.get("seed")) for r in (ok or group))),
        # An "ok" record without a test accuracy (another version's, a damaged
        # one) is no result either.
        "status": "ok" if ok else _no_result(group),
        "test_mean": mean("test_accuracy"),
        "test_std": std("test_accuracy"),
        "val_mean": mean("val_accuracy"),
        "val_std": std("val_accuracy"),
        "train_images_per_sec": median("train_images_per_sec"),
        "infer_images_per_sec": median("infer_images_per_sec"),
        "peak_memory_bytes": largest("peak_memory_bytes"),
        "activation_memory_bytes": largest("activation_memory_bytes"),
        "unstable": _unstable_over_seeds(ok),
        "timing_quality": _quality_over_seeds(ok),
        "guessing": next(filter(None, map(guessing, ok or group)), None),
    }


def _unstable_over_seeds(ok: list[dict]) -> dict[str, str]:
    reasons: dict[str, list[str]] = {}
    for record in ok:
        for figure, why in stability.unstable(record).items():
            reasons.setdefault(figure, []).append(f"seed {record.get('seed')}: {why}")
    return {figure: "; ".join(whys) for figure, whys in reasons.items()}


def _quality_over_seeds(ok: list[dict]) -> str | None:
    qualities = {stability.record_quality(r) for r in ok}
    for quality in (stability.SMOKE, stability.MEASURED):
        if quality in qualities:
            return quality
    return None


def _verdict(config: Configuration, best: Configuration | None) -> str:
    if config.test_mean is None:
        return f"no result ({config.status})"
    if config.at_chance:  # no better than guessing: nothing to rank
        return "at chance level"
    if config.standin or best is None:  # random weights: their accuracy says nothing of transfer
        return "not ranked (stand-in)"
    if config.test_mean == best.test_mean:
        return "best"  # ties share it
    close = within_noise(config, best)
    if close is None:
        return "spread unknown (one seed)"
    return "within noise of best" if close else "below best"
