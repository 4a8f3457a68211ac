"""When a test accuracy is at chance level: no better than guessing, within
the noise of the test split. Records only, no TensorFlow.

Rule: guessing scores p, the larger of 1 / classes (answering at random) and
the test split's majority-class share (always answering its most frequent
class). An accuracy measured on n test images is at chance level when it is
at most p + 2 * sqrt(p * (1 - p) / n): within two binomial standard errors of
what guessing scores on n images (a guesser stays below that about 97 % of
the time). Such an accuracy says the model learned nothing measurable here;
it ranks nothing.

The figures come from a trial record's `num_classes`, `class_counts["test"]`
and `split_sizes["test"]`; a record without them (an earlier version's) has
no chance level, and none of its accuracies is marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MARK = " (chance)"
RULE = (
    "at most what guessing scores (the larger of 1 / classes and the test split's largest class share) plus two "
    "binomial standard errors of that rate over the test images"
)
LEGEND = (
    f"{MARK.strip()}: the test accuracy is at chance level, {RULE}: the model learned nothing measurable, "
    "and the figure ranks nothing."
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
        return _count(accuracy, float) is not None and accuracy <= self.ceiling

    def describe(self) -> str:
        return (
            f"guessing scores {self.rate:.3f} on these {self.images} test images, up to {self.ceiling:.3f} within noise"
        )


def guessing(row: dict) -> Guessing | None:
    """A record's guessing rate, or the one a summary row carries (its
    `guessing` field); None when the record doesn't say."""
    carried = row.get("guessing")
    if isinstance(carried, Guessing):
        return carried
    counts = row.get("class_counts")
    counts = counts.get("test") if isinstance(counts, dict) else None
    counts = counts if isinstance(counts, list) and all(_count(c) is not None for c in counts) else []
    sizes = row.get("split_sizes")
    images = _count(sizes.get("test")) if isinstance(sizes, dict) else None
    images = images or sum(counts)
    classes = _count(row.get("num_classes")) or len(counts)
    if not images or not classes:
        return None
    majority = max(counts) / sum(counts) if sum(counts) else 0.0
    return Guessing(min(1.0, max(1 / classes, majority)), images)


def at_chance(row: dict, accuracy) -> bool:
    """Whether `accuracy`, measured on `row`'s test split, is at chance level."""
    found = guessing(row)
    return found is not None and found.holds(accuracy)


def _count(value, kind=int):
    """`value` when it is a finite non-negative number of `kind` (int or
    float; never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return None
    try:
        return value if math.isfinite(value) and value >= 0 else None
    except OverflowError:  # an int too large for a float
        return None
