"""Figures across trials, from records alone (no TensorFlow): configurations over seeds, memory against batch size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tlbench import formats, stability
from tlbench.reports.rules import Guessing, ended_ok, finite, guessing, has_result, no_result_status, ranks_on_accuracy
from tlbench.reports.rules import seeds_within_noise, whole


@dataclass(frozen=True)
class MemorySlope:
    """Memory against batch size for one backbone and mode on one device: least-squares lines through the trials'
    figures (MEMORY_FIT_NOTE); the intercept only from 3+ batch sizes and non-negative (`intercept_note`)."""

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


MEMORY_FIT_NOTE = (  # what the report says of the fit (columns.MEMORY_COLUMNS)
    "Lines fitted through each backbone and mode's memory over its batch sizes. The slope of `step mem` (what a "
    "training step adds to the memory in use before it) is what one more image costs a step: the activation memory per "
    "image, fine-tuning's cost. Fine-tuning keeps every layer's activations for the gradient; transfer keeps only the "
    "feature vector, and what its step adds is the frozen forward pass's passing buffers. The prediction is the "
    "graph's count of kept activations. The slope of `peak mem` also holds the timed batches resident in memory; "
    "beside it the slope of the predicted peak (weights, Adam slots, timed batches and the graph's simulated peak of a "
    "step's live tensors) and the median of measured peak / predicted peak over the trials. The fixed part of `peak "
    "mem` (the intercept: weights, slots, caches) is given only from three or more batch sizes and when it comes out "
    "non-negative: two points fit any line, and a negative one means the points are not on a line."
)
MIN_SIZES_FOR_INTERCEPT = 3


def _every(group: list[dict], field: str, positive: bool = False) -> list[float] | None:
    """`field` of every trial (each above 0 when `positive`), else None: a line goes through all the points."""
    values = [v for r in group if (v := finite(r.get(field))) is not None and (v > 0 or not positive)]
    return values if len(values) == len(group) else None


def _slope(sizes: list[float], values: list[float] | None) -> float | None:
    return None if values is None else float(np.polyfit(sizes, values, 1)[0])


def memory_slopes(records) -> list[MemorySlope]:
    """One line per backbone x mode x device with ok trials at two or more batch sizes."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in records:
        if ended_ok(r) and finite(r.get("peak_memory_bytes")) is not None and r.get("batch_size"):
            groups.setdefault((str(r.get("backbone")), str(r.get("mode")), str(r.get("device"))), []).append(r)
    return [slope for key, group in sorted(groups.items()) if (slope := _memory_slope(key, group)) is not None]


def _memory_slope(key: tuple[str, str, str], group: list[dict]) -> MemorySlope | None:
    sizes = [float(r["batch_size"]) for r in group]
    if len(set(sizes)) < 2:  # no line through one batch size
        return None
    slope, intercept = (float(x) for x in np.polyfit(sizes, [float(r["peak_memory_bytes"]) for r in group], 1))
    few = len(set(sizes)) < MIN_SIZES_FOR_INTERCEPT
    note = f"needs {MIN_SIZES_FOR_INTERCEPT}+ batch sizes" if few else "fit < 0: not a line" if intercept < 0 else None
    predicted = [v for r in group if (v := finite(r.get("predicted_activation_bytes_per_image"))) is not None]
    predicted_peak = _every(group, "predicted_peak_memory_bytes", positive=True)
    ratios = predicted_peak and [r["peak_memory_bytes"] / p for r, p in zip(group, predicted_peak)]
    return MemorySlope(
        *key,
        batch_sizes=tuple(sorted({int(s) for s in sizes})),
        bytes_per_image=slope,
        intercept_bytes=None if note else intercept,
        intercept_note=note,
        step_bytes_per_image=_slope(sizes, _every(group, "activation_memory_bytes")),
        predicted_bytes_per_image=float(np.median(predicted)) if predicted else None,
        predicted_peak_bytes_per_image=_slope(sizes, predicted_peak),
        peak_over_predicted=float(np.median(ratios)) if ratios else None,
    )


@dataclass(frozen=True)
class Configuration:
    """One choice a practitioner can make, backbone x mode x batch size (weights, device), summed up over its seeds."""

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
    unstable: dict[str, str]  # any ok seed's unstable figures ("seed N: why"): a median over seeds is no better
    timing_quality: str | None  # "smoke" when any seed's timing was (stability.py), for the same reason
    guessing: Guessing | None  # what guessing scores on the test split (chance.py); None when unrecorded
    verdict: str = ""  # against the most accurate, once judged (configurations); see rules.SEEDS_NOISE_RULE

    @property
    def name(self) -> str:
        return f"{self.backbone} {self.mode} batch {self.batch_size}"

    @property
    def has_result(self) -> bool:
        return self.test_mean is not None  # any seed ended ok with its test accuracy (rules.has_result)

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

    def summary_line(self) -> str:
        accuracy = "-" if self.test_mean is None else formats.mean_and_std(self.test_mean, self.test_std)
        speed = "-" if self.train_images_per_sec is None else formats.rate(self.train_images_per_sec)
        unstable = "train_images_per_sec" in self.unstable
        speed += " (unstable)" if unstable else " (smoke)" if self.timing_quality == stability.SMOKE else ""
        memory = "-" if self.peak_memory_bytes is None else formats.format_bytes(self.peak_memory_bytes)
        return (
            f"{self.name}: test accuracy {accuracy} ({self.n_seeds} seed(s)), "
            f"{speed} training images/s, {memory} peak memory"
        )

    @property
    def row(self) -> dict:
        return {**self.__dict__, "n_seeds": self.n_seeds}  # a record-like dict, for the column renderers


def config_key(row: Mapping[str, Any]) -> tuple[str, str, int, str, str]:
    """The configuration a record (or a Configuration's row) is of: backbone, mode, batch size, weights, device."""
    backbone, mode, weights, device = (str(row.get(name)) for name in ("backbone", "mode", "weights", "device"))
    return (backbone, mode, whole(row.get("batch_size")), weights, device)


def configurations(records) -> list[Configuration]:
    """Every configuration of a run, most accurate first (then faster), those with no ok trial (oom, error) last."""
    groups: dict[tuple[str, str, int, str, str], list[dict]] = {}
    for r in records:
        groups.setdefault(config_key(r), []).append(r)
    unjudged = sorted(
        (_summary(key, group) for key, group in groups.items()),
        key=lambda c: (c.test_mean is None, -(c.test_mean or 0.0), -(c.train_images_per_sec or 0.0)),
    )
    best = next(filter(ranks_on_accuracy, unjudged), None)  # the most accurate that ranks: pretrained, above chance
    return [replace(c, verdict=_verdict(c, best)) for c in unjudged]


def _summary(key: tuple[str, str, int, str, str], group: list[dict]) -> Configuration:
    """A configuration's figures over its seeds, not yet judged against the best."""
    ok = [r for r in group if has_result(r)]

    def over(field: str, how, least: int = 1) -> float | None:  # `how` of the ok seeds' figures, if at least `least`
        values = [float(r[field]) for r in ok if finite(r.get(field)) is not None]
        return float(how(values)) if len(values) >= least else None

    whys = [(figure, f"seed {r.get('seed')}: {why}") for r in ok for figure, why in stability.unstable(r).items()]
    qualities = {stability.record_quality(r) for r in ok}
    return Configuration(
        *key,
        seeds=tuple(sorted(whole(r.get("seed")) for r in (ok or group))),
        status="ok" if ok else no_result_status(group[0]),
        test_mean=over("test_accuracy", np.mean),
        test_std=over("test_accuracy", lambda v: np.std(v, ddof=1), 2),
        val_mean=over("val_accuracy", np.mean),
        val_std=over("val_accuracy", lambda v: np.std(v, ddof=1), 2),
        train_images_per_sec=over("train_images_per_sec", np.median),
        infer_images_per_sec=over("infer_images_per_sec", np.median),
        peak_memory_bytes=over("peak_memory_bytes", max),
        activation_memory_bytes=over("activation_memory_bytes", max),
        unstable={figure: "; ".join(w for f, w in whys if f == figure) for figure, _ in whys},
        timing_quality=next((q for q in (stability.SMOKE, stability.MEASURED) if q in qualities), None),
        guessing=next(filter(None, map(guessing, ok or group)), None),
    )


def _verdict(config: Configuration, best: Configuration | None) -> str:
    if config.test_mean is None:
        return f"no result ({config.status})"
    if config.at_chance:  # no better than guessing: nothing to rank
        return "at chance level"
    if config.standin or best is None:  # random weights: their accuracy says nothing of transfer
        return "not ranked (stand-in)"
    if config.test_mean == best.test_mean:
        return "best"  # ties share it
    if (close := seeds_within_noise(config, best)) is None:
        return "spread unknown (one seed)"
    return "within noise of best" if close else "below best"
