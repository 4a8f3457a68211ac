"""The rules the reports judge by, each defined once with the words the
reports say it in (the *_RULE texts). Records only, no TensorFlow.

An ok trial, a result and a finished trial (which `--resume` doesn't rerun)
are the record's (record.py, shared with the driver). Here: ranking on
accuracy, the chance level, and two noise rules, between configurations over
seeds on TEST accuracy, and between rungs of a ladder on VALIDATION accuracy
(the rung is a choice like the learning rate; the test split is read once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tlbench.record import done, ended_ok, finite, has_result  # noqa: F401 - the record's rules, judged by here too


def whole(value) -> int:
    """An int field, 0 when it is anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def no_result_status(record: Mapping[str, Any]) -> str:
    """What a trial without a result ended as: "incomplete" for an ok record
    that lost its figures, else its status."""
    return "incomplete" if ended_ok(record) else str(record.get("status"))


# ------------------------------------------------------------ chance level

CHANCE_MARK = " (chance)"
CHANCE_RULE = (
    "at most what guessing scores (the larger of 1 / classes and the test split's largest class share) plus two "
    "binomial standard errors of that rate over the test images"
)
CHANCE_LEGEND = (
    f"{CHANCE_MARK.strip()}: the test accuracy is at chance level, {CHANCE_RULE}: the model learned nothing "
    "measurable, and the figure ranks nothing."
)


@dataclass(frozen=True)
class Guessing:
    """What guessing scores on a test split."""

    rate: float  # the larger of 1 / classes and the majority-class share
    images: int  # in the test split

    @property
    def ceiling(self) -> float:
        """The highest accuracy still at chance level."""
        return self.rate + 2 * math.sqrt(self.rate * (1 - self.rate) / self.images)

    def holds(self, accuracy) -> bool:
        """Whether `accuracy` is at chance level (False for no number)."""
        value = finite(accuracy)
        return value is not None and value >= 0 and value <= self.ceiling

    def summary_line(self) -> str:
        rate, ceiling = f"{self.rate:.3f}", f"{self.ceiling:.3f}"
        return f"guessing scores {rate} on these {self.images} test images, up to {ceiling} within noise"


def _count(value) -> int | None:
    number = finite(value)
    return value if isinstance(number, int) and number >= 0 else None


def guessing(record: dict) -> Guessing | None:
    """A record's guessing rate, or the one a configuration's row carries
    (its `guessing` field); None when the record doesn't say."""
    if isinstance(record.get("guessing"), Guessing):
        return record["guessing"]
    counts = record.get("class_counts")
    counts = counts.get("test") if isinstance(counts, dict) else None
    counts = counts if isinstance(counts, list) and all(_count(c) is not None for c in counts) else []
    sizes = record.get("split_sizes")
    images = (_count(sizes.get("test")) if isinstance(sizes, dict) else None) or sum(counts)
    classes = _count(record.get("num_classes")) or len(counts)
    if not images or not classes:
        return None
    majority = max(counts) / sum(counts) if sum(counts) else 0.0
    return Guessing(min(1.0, max(1 / classes, majority)), images)


def at_chance(record: dict, accuracy) -> bool:
    """Whether `accuracy`, measured on `record`'s test split, is at chance level."""
    found = guessing(record)
    return found is not None and found.holds(accuracy)


# ------------------------------------------------------------ ranking and noise


def ranks_on_accuracy(config) -> bool:
    """Whether a configuration's test accuracy may rank it: measured, from
    pretrained weights (a stand-in's random weights say nothing of transfer)
    and above chance level (at chance, the model learned nothing measurable)."""
    return config.test_mean is not None and not config.standin and not config.at_chance


SEEDS_NOISE_RULE = (
    "two configurations are within noise of each other when their mean test accuracies differ by at most "
    "two standard errors of the difference, 2 × sqrt(s1²/n1 + s2²/n2) (about 95 % for normal noise); "
    "with a single seed the spread is unknown and no configuration is called more accurate"
)


def seeds_within_noise(a, b) -> bool | None:
    """Whether two configurations' mean test accuracies are within noise of
    each other (SEEDS_NOISE_RULE); None when either ran with one seed."""
    if a.test_std is None or b.test_std is None:
        return None
    standard_error = math.sqrt(a.test_std**2 / a.n_seeds + b.test_std**2 / b.n_seeds)
    return bool(abs(a.test_mean - b.test_mean) <= 2 * standard_error)


NOISE_POINTS = 0.005  # the least tolerance between rungs, a fraction of accuracy
RUNGS_NOISE_RULE = (
    "a rung is within noise of the most accurate when its mean validation accuracy is below the best mean by "
    f"no more than {100 * NOISE_POINTS:g} points or either rung's standard deviation over seeds, whichever is larger"
)
ONE_SEED_RUNGS = (
    f"One seed on some rung: its spread is unknown, so within noise means within {100 * NOISE_POINTS:g} points."
)


def rungs_within_noise(rung, best) -> bool:
    """RUNGS_NOISE_RULE, on the rungs' validation accuracy."""
    tolerance = max(NOISE_POINTS, rung.val_std or 0.0, best.val_std or 0.0)
    return best.val_mean - rung.val_mean <= tolerance + 1e-12
