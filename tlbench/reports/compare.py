"""`compare RUN_A RUN_B`: each configuration's change in accuracy, speed and
memory from run A to run B, with the regressions beyond thresholds marked.

Configurations (backbone x mode x batch size) are matched across the runs and
summed over their seeds first (analysis.configurations). A drop in accuracy is
a regression only when it is beyond the threshold and, where both runs have
several seeds, beyond their noise too. A change of images/s is not judged
when the figure is unstable in either run (stability.py): the verdict is
"unstable", listed with the reasons, and no regression; nor when either is a
smoke figure (the quick budget's), which is no measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tlbench import stability
from tlbench.reports.analysis import Configuration, configurations, within_noise
from tlbench.reports.columns import INFER, TRAIN, Column, format_bytes


@dataclass(frozen=True)
class Thresholds:
    accuracy_drop: float = 0.02  # absolute test accuracy
    slowdown: float = 0.10  # fraction of images/s lost, training or inference
    memory_growth: float = 0.10  # fraction of peak memory gained


@dataclass(frozen=True)
class Change:
    backbone: str
    mode: str
    batch_size: int
    a: Configuration | None  # None: only in run B
    b: Configuration | None  # None: only in run A
    regressions: tuple[str, ...]
    notes: tuple[str, ...]
    unstable: tuple[str, ...] = ()  # changes of figures unstable in either run: not judged
    why_unstable: dict[str, str] = field(default_factory=dict)  # figure -> "run A: why; run B: why"

    @property
    def row(self) -> dict:
        def both(attribute):
            return (getattr(self.a, attribute, None), getattr(self.b, attribute, None))

        return {
            "backbone": self.backbone,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "status": "regression" if self.regressions else "unstable" if self.unstable else "ok",
            "accuracy": both("test_mean"),
            "train": both("train_images_per_sec"),
            "infer": both("infer_images_per_sec"),
            "memory": both("peak_memory_bytes"),
            "verdict": "; ".join(self.regressions + self.unstable + self.notes) or "no change beyond thresholds",
            "unstable": self.why_unstable,
            "timing_quality": stability.SMOKE if stability.SMOKE in both("timing_quality") else None,
        }


def compare(records_a, records_b, thresholds: Thresholds = Thresholds()) -> list[Change]:
    def by_key(records):
        return {(c.backbone, c.mode, c.batch_size): c for c in configurations(stability.judged(records))}

    before, after = by_key(records_a), by_key(records_b)
    changes = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        regressions, notes, unstable, why = _judge(a, b, thresholds)
        changes.append(Change(*key, a, b, tuple(regressions), tuple(notes), tuple(unstable), why))
    return changes


def _judge(a: Configuration | None, b: Configuration | None, t: Thresholds) -> tuple[list, list, list, dict]:
    """(regressions, notes, changes of unstable figures, figure -> why unstable)."""
    if a is None:
        return [], ["only in run B"], [], {}
    if b is None:
        return [], ["only in run A"], [], {}
    if a.status == "ok" and b.status != "ok":
        return [f"was ok, now {b.status}"], [], [], {}
    if b.status != "ok":
        return [], [f"{b.status} in both runs" if a.status != "ok" else f"now {b.status}"], [], {}
    if a.status != "ok":
        return [], [f"was {a.status}, now ok"], [], {}
    regressions, notes = [], []
    drop = a.test_mean - b.test_mean
    if drop > t.accuracy_drop:
        if within_noise(a, b):
            notes.append(f"accuracy -{drop:.3f}, within the seeds' noise")
        else:
            regressions.append(f"accuracy -{drop:.3f} (> {t.accuracy_drop:g})")
    slower, unstable, not_judged, why = _speed(a, b, t)
    regressions += slower
    notes += not_judged
    if a.peak_memory_bytes and b.peak_memory_bytes is not None:
        growth = b.peak_memory_bytes / a.peak_memory_bytes - 1
        if growth > t.memory_growth:
            regressions.append(f"peak memory {_percent(growth)} (> {t.memory_growth:.0%} more)")
    if a.weights != b.weights:
        notes.append(f"weights differ: {a.weights} vs {b.weights}")
    if a.device != b.device:
        notes.append(f"devices differ: {a.device} vs {b.device}")
    return regressions, notes, unstable, why


def _speed(a: Configuration, b: Configuration, t: Thresholds) -> tuple[list, list, list, dict]:
    """The changes of images/s: (regressions, changes of figures unstable in
    either run, changes of smoke figures, figure -> why unstable per run);
    the last three are not judged."""
    why = {
        figure: "; ".join(f"run {run}: {c.unstable[figure]}" for run, c in (("A", a), ("B", b)) if figure in c.unstable)
        for figure in (*TRAIN, *INFER)
        if figure in a.unstable or figure in b.unstable
    }
    smoke = stability.SMOKE in (a.timing_quality, b.timing_quality)
    regressions, unstable, not_judged = [], [], []
    for label, figure in (("training", *TRAIN), ("inference", *INFER)):
        old, new = getattr(a, figure), getattr(b, figure)
        if not old or new is None:
            continue
        change = f"{label} {_percent(new / old - 1)} images/s"
        if figure in why:
            runs = " and ".join(f"run {run}" for run, c in (("A", a), ("B", b)) if figure in c.unstable)
            unstable.append(f"{change}, unstable in {runs}: not judged")
        elif smoke:
            not_judged.append(f"{change}, smoke figures: not judged")
        elif new < old * (1 - t.slowdown):
            regressions.append(f"{change} (> {t.slowdown:.0%} slower)")
    return regressions, unstable, not_judged, why


def _percent(fraction: float) -> str:
    return f"{fraction:+.1%}"


def _pair(format_value, relative: bool):
    """A cell `A -> B (change)` from a (before, after) pair."""

    def cell(pair):
        old, new = pair
        if old is None and new is None:
            return None
        shown = f"{'-' if old is None else format_value(old)} -> {'-' if new is None else format_value(new)}"
        if old is None or new is None:
            return shown
        change = _percent(new / old - 1) if relative and old else f"{new - old:+.3f}"
        return f"{shown} ({change})"

    return cell


COMPARE_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("test acc A -> B", "accuracy", _pair(lambda v: f"{v:.3f}", relative=False)),
    Column("train img/s A -> B", "train", _pair(lambda v: f"{v:,.1f}", relative=True), figures=TRAIN),
    Column("infer img/s A -> B", "infer", _pair(lambda v: f"{v:,.1f}", relative=True), figures=INFER),
    Column("peak mem A -> B", "memory", _pair(format_bytes, relative=True)),
    Column("verdict", "verdict", numeric=False),
)
