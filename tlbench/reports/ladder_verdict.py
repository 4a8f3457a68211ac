"""The ladder's verdict: for each backbone, what each step up the ladder of
trainable depth (ladder.py) buys in validation accuracy and costs in step
memory and training speed, and the rung to take. Records only, no TensorFlow."""

from __future__ import annotations

from itertools import pairwise

from tlbench.registry import MODES
from tlbench.reports.ladder import NOISE_POINTS, Ladder, Rung, mode_order


def points(delta: float) -> str:
    """A change of accuracy (a fraction) in percentage points, with its sign."""
    return f"{100 * delta:+.1f} points"


def times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×"


def _ratio(new, old) -> float | None:
    if new is None or old is None or not new > 0 or not old > 0:
        return None
    return new / old


def _memory_cost(lower: Rung, upper: Rung) -> str:
    ratio = _ratio(upper.step_bytes_per_image, lower.step_bytes_per_image)
    if ratio is not None:
        return f"{times(ratio)} the step memory per image"
    ratio = _ratio(upper.predicted_bytes_per_image, lower.predicted_bytes_per_image)
    if ratio is not None:
        return f"{times(ratio)} the step memory per image (predicted; not measured)"
    return "step memory not measured"


def _speed_cost(lower: Rung, upper: Rung) -> str:
    ratio = _ratio(upper.images_per_sec, lower.images_per_sec)
    return "training speed not measured" if ratio is None else f"{times(ratio)} the training images/s"


def _kept_note(rung: Rung) -> str:
    if not rung.kept_probe:
        return ""
    return f"; fine-tuning kept the probe's start in {rung.kept_probe}/{rung.kept_known} seeds"


def within_noise(rung: Rung, best: Rung) -> bool:
    """LADDER_NOISE_RULE."""
    tolerance = max(NOISE_POINTS, rung.val_std or 0.0, best.val_std or 0.0)
    return best.val_mean - rung.val_mean <= tolerance + 1e-12


def take(ladder: Ladder) -> tuple[Rung, Rung] | None:
    """(the rung to take, the most accurate) on validation accuracy; None for
    stand-in weights or fewer than two rungs with a validation accuracy."""
    judged = [r for r in ladder.measured if r.val_mean is not None]
    if ladder.standin or len(judged) < 2:
        return None
    best = max(judged, key=lambda r: r.val_mean)  # ties: the shallowest
    return next(r for r in judged if within_noise(r, best)), best


def verdict(ladder: Ladder) -> str:
    """One paragraph: what each step up the ladder buys and costs, and the rung to take."""
    head = f"**{ladder.label}** (batch {ladder.batch_size}"
    head += (
        f"; the run also has batch {', '.join(map(str, ladder.other_batch_sizes))})"
        if ladder.other_batch_sizes
        else ")"
    )
    measured = ladder.measured
    failures = [
        f"No result for {r.mode} at batch {ladder.batch_size}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(r.failed.items()))
        + f" of {r.seeds} trials."
        for r in ladder.rungs
        if not r.measured
    ]
    if len(measured) < 2:
        only = measured[0].mode if measured else "none"
        text = f"{head}: only one rung of the ladder has results ({only}), so there is nothing to compare."
        return " ".join([text, *failures])
    steps = []
    for lower, upper in pairwise(measured):
        costs = f"{_memory_cost(lower, upper)} and {_speed_cost(lower, upper)}"
        if ladder.standin or lower.val_mean is None or upper.val_mean is None:
            steps.append(f"{lower.mode} → {upper.mode}: {costs}")
        else:
            steps.append(
                f"{lower.mode} → {upper.mode}: {points(upper.val_mean - lower.val_mean)} of validation accuracy "
                f"({lower.val_mean:.3f} → {upper.val_mean:.3f}{_kept_note(upper)}) for {costs}"
            )
    sentences = [f"{head}: " + "; ".join(steps) + "."]
    sentences += failures
    if ladder.standin:
        sentences.append(
            "Its weights are a stand-in (random initialisation), so the accuracy comparison needs pretrained "
            "weights; only the costs above hold."
        )
        return " ".join(sentences)
    chosen = take(ladder)
    if chosen is None:
        sentences.append("Fewer than two rungs recorded a validation accuracy: no rung is recommended.")
        return " ".join(sentences)
    rung, best = chosen
    shallower = [r for r in measured[: measured.index(rung)] if r.val_mean is not None]
    if rung is best and not shallower:
        sentences.append(
            f"Take **{rung.mode}**: it is the most accurate rung ({best.val_mean:.3f} validation accuracy); "
            "training deeper does not pay here."
        )
    elif rung is best:
        sentences.append(
            f"Take **{rung.mode}**: the most accurate rung ({best.val_mean:.3f} validation accuracy), beyond noise "
            "of every shallower one."
        )
    else:
        sentences.append(
            f"Take **{rung.mode}**: the shallowest rung within noise of the most accurate ({rung.val_mean:.3f} "
            f"against {best.mode}'s {best.val_mean:.3f} validation accuracy); training deeper costs memory and "
            "speed for no clear gain."
        )
    if any(r.val_std is None for r in measured if r.val_mean is not None):
        sentences.append("One seed on some rung: its spread is unknown, so within noise means within 0.5 points.")
    return " ".join(sentences)


def summary(found: list[Ladder]) -> str | None:
    """A line for the backbones whose ladder has a single rung with results;
    None when every ladder has more. When no backbone has two, the line names
    the rungs, not the backbones (the trials table lists those)."""
    single = [ladder for ladder in found if not ladder.comparable]
    if not single:
        return None
    more = f"Run more modes (`--mode {' '.join(MODES)}`) to see what training deeper buys."
    if len(single) == len(found):
        rungs = sorted({ladder.measured[0].mode for ladder in single}, key=mode_order)
        return f"Only one rung of the ladder ran per backbone ({', '.join(rungs)}): there is nothing to compare. {more}"
    names = ", ".join(f"{ladder.label} ({ladder.measured[0].mode})" for ladder in single)
    return f"Only one rung of the ladder ran for {names}: nothing to compare there. {more}"
