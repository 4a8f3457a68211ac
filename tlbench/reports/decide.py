"""From measured configurations to a choice: the most accurate, the fastest,
the lightest, the Pareto front, plain-word advice per backbone, and the best
configuration under constraints. Records only, no TensorFlow.

"Fastest" and the Pareto front use training images/s: the grid's choices
(backbone, mode, batch size) are choices about training. A configuration is
on the Pareto front when no other is at least as accurate and at least as
fast, and better in one of the two.

Accuracy ranks only configurations whose accuracy means something
(`ranks_on_accuracy`): pretrained weights, not a stand-in's random ones, and
above chance level (chance.py). The others are compared on speed and memory
alone, and the advice says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tlbench import stability
from tlbench.reports.analysis import Configuration, configurations, within_noise
from tlbench.reports.chance import Guessing
from tlbench.reports.columns import format_bytes


@dataclass(frozen=True)
class Recommendation:
    most_accurate: Configuration | None  # None when no accuracy ranks (ranks_on_accuracy)
    fastest: Configuration
    least_memory: Configuration
    pareto: list  # of Configuration, most accurate first; only those whose accuracy ranks
    advice: list  # one plain sentence per backbone: when to choose it (first, why accuracy can't decide)
    warnings: list  # why the figures may not carry the decision

    def headlines(self, describe) -> list[str]:
        """The best on each criterion, as the report's bullets; `describe`
        words a configuration."""
        if self.most_accurate is None:
            accurate = "not ranked: every accuracy here comes from stand-in weights or is at chance level (see below)"
        else:
            accurate = describe(self.most_accurate)
        lines = [
            f"**Most accurate**: {accurate}",
            f"**Fastest to train**: {describe(self.fastest)}",
            f"**Least memory**: {describe(self.least_memory)}",
        ]
        if self.most_accurate is not None:
            front = ", ".join(f"{c.name} ({c.test_mean:.3f}, {c.train_images_per_sec:,.1f} img/s)" for c in self.pareto)
            lines.append(
                f"**Pareto front** (accuracy against training speed, no configuration better on both): {front}"
            )
        return lines


def ranks_on_accuracy(c: Configuration) -> bool:
    """Whether `c`'s test accuracy may rank it: measured, from pretrained
    weights (a stand-in's random weights say nothing of transfer) and above
    chance level (at chance, the model learned nothing measurable)."""
    return c.test_mean is not None and not c.standin and not c.at_chance


def _accuracy(c: Configuration) -> float:
    """For ordering: the test accuracy where it ranks, else below any."""
    return c.test_mean if ranks_on_accuracy(c) else -1.0


def measured(configs) -> list[Configuration]:
    """The configurations with accuracy, speed and memory all measured (a
    speed or a memory of 0 is no measurement)."""
    return [
        c
        for c in configs
        if c.test_mean is not None
        and c.train_images_per_sec is not None
        and c.train_images_per_sec > 0
        and c.peak_memory_bytes is not None
        and c.peak_memory_bytes > 0
    ]


def pareto_front(configs) -> list[Configuration]:
    """Accuracy against training speed: the configurations no other beats on
    both, most accurate first; only those whose accuracy ranks."""
    configs = [c for c in configs if ranks_on_accuracy(c)]
    front = []
    for c in configs:
        dominated = any(
            o.test_mean >= c.test_mean
            and o.train_images_per_sec >= c.train_images_per_sec
            and (o.test_mean > c.test_mean or o.train_images_per_sec > c.train_images_per_sec)
            for o in configs
        )
        if not dominated:
            front.append(c)
    return sorted(front, key=lambda c: (-c.test_mean, -c.train_images_per_sec))


def recommend(records) -> Recommendation | None:
    """None when no configuration has all its figures."""
    configs = measured(configurations(records))
    if not configs:
        return None
    ranked = [c for c in configs if ranks_on_accuracy(c)]
    most_accurate = max(ranked, key=lambda c: (c.test_mean, c.train_images_per_sec)) if ranked else None
    fastest = max(configs, key=lambda c: (c.train_images_per_sec, _accuracy(c)))
    least_memory = min(configs, key=lambda c: (c.peak_memory_bytes, -_accuracy(c)))
    return Recommendation(
        most_accurate=most_accurate,
        fastest=fastest,
        least_memory=least_memory,
        pareto=pareto_front(configs),
        advice=_unranked(configs) + _advice(configs),
        warnings=_warnings(configs, most_accurate),
    )


def _unranked(configs) -> list[str]:
    """When no accuracy may rank: one sentence that says so and why."""
    if any(ranks_on_accuracy(c) for c in configs):
        return []
    reasons = []
    standins = _backbones(c for c in configs if c.standin)
    if standins:
        reasons.append(f"the accuracies of {standins} come from stand-in weights (random initialisation)")
    chance = _backbones(c for c in configs if c.at_chance and not c.standin)
    if chance:
        reasons.append(f"{'those' if standins else 'the accuracies'} of {chance} are at chance level")
    sentence = (
        f"Accuracy decides nothing here: {' and '.join(reasons)}, so no configuration is called more accurate "
        "than another. What follows compares speed and memory only."
    )
    return [sentence]


def _advice(configs) -> list[str]:
    """For each backbone's best configuration (most accurate, then fastest):
    what it wins on against the other backbones, in measured figures."""
    best = {}
    for c in sorted(configs, key=lambda c: (-_accuracy(c), -c.train_images_per_sec)):
        best.setdefault(c.backbone, c)
    if len(best) < 2:
        return []
    sentences = []
    for backbone, mine in best.items():
        others = [o for name, o in best.items() if name != backbone]
        wins, kinds = [], []
        for other in others:
            comparable = ranks_on_accuracy(mine) and ranks_on_accuracy(other)
            close = within_noise(mine, other) if comparable else None
            if comparable and mine.test_mean > other.test_mean and close is not True:
                certainty = "beyond the seeds' noise" if close is False else "one seed: noise unknown"
                kinds.append("accuracy comes first")
                wins.append(
                    f"it is more accurate than {other.backbone} ({mine.test_mean:.3f} vs {other.test_mean:.3f} "
                    f"test accuracy, {certainty})"
                )
            if mine.train_images_per_sec > other.train_images_per_sec:
                kinds.append("training speed counts")
                wins.append(
                    f"it trains {mine.train_images_per_sec / other.train_images_per_sec:.1f}x as fast as "
                    f"{other.backbone} ({mine.train_images_per_sec:,.1f} vs {other.train_images_per_sec:,.1f} images/s)"
                )
            if mine.peak_memory_bytes < other.peak_memory_bytes:
                kinds.append("memory is tight")
                wins.append(
                    f"it needs {format_bytes(mine.peak_memory_bytes)} of peak memory against "
                    f"{format_bytes(other.peak_memory_bytes)} for {other.backbone}"
                )
            if close is True:
                wins.append(f"its accuracy is within the seeds' noise of {other.backbone}'s")
            elif ranks_on_accuracy(mine) and not ranks_on_accuracy(other):
                wins.append(f"its accuracy is not compared with {other.backbone}'s ({_unranked_why(other)})")
            elif ranks_on_accuracy(other) and not ranks_on_accuracy(mine):
                wins.append(f"its accuracy ({_unranked_why(mine)}) is not compared with {other.backbone}'s")
        choice = f"{mine.mode}, batch {mine.batch_size}"
        if kinds:
            when = " or ".join(dict.fromkeys(kinds))
            sentences.append(f"Choose {backbone} ({choice}) when {when}: " + "; ".join(wins) + ".")
        else:
            detail = ": " + "; ".join(wins) if wins else ""
            sentences.append(f"{backbone} ({choice}) wins on nothing measured here against {_names(others)}{detail}.")
    return sentences


def _warnings(configs, most_accurate: Configuration | None) -> list[str]:
    warnings = []
    standins = _backbones(c for c in configs if c.standin)
    if standins:
        warnings.append(
            f"Accuracies of {standins} come from stand-in weights (random initialisation, not "
            "pretrained): they say nothing about which backbone transfers better, and this advice ranks "
            "nothing on them. Speed and memory hold."
        )
    warnings += _chance_warnings(configs)
    if any(c.n_seeds < 2 for c in configs):
        warnings.append(
            "Some configurations ran with one seed, so their accuracy spread is unknown: a difference in "
            "accuracy may be noise. Run with --seeds 3 or more."
        )
    ranked = [c for c in configs if ranks_on_accuracy(c) and c is not most_accurate]
    tied = [c for c in ranked if within_noise(c, most_accurate)]
    if tied:
        warnings.append(
            f"{len(tied)} configuration(s) are within noise of the most accurate: "
            + ", ".join(c.name for c in tied)
            + ". Among them, choose on speed and memory."
        )
    devices = sorted({c.device for c in configs})
    if len(devices) > 1:
        warnings.append(f"Trials ran on {len(devices)} kinds of device; speeds compare within a device only.")
    unsteady = [c for c in configs if "train_images_per_sec" in c.unstable or c.timing_quality == stability.SMOKE]
    if unsteady:
        warnings.append(
            f"The training speed of {len(unsteady)} configuration(s) is unstable or a smoke figure (see the "
            "marks in the tables): what this advice says about speed may not hold."
        )
    return warnings


def _chance_warnings(configs) -> list[str]:
    """Each backbone with configurations at chance level: which, by how much,
    and what it means."""
    warnings = []
    for backbone in dict.fromkeys(c.backbone for c in configs):
        mine = [c for c in configs if c.backbone == backbone]
        low = [c for c in mine if c.at_chance]
        if not low:
            continue
        which = f"every configuration of {backbone}" if len(low) == len(mine) else ", ".join(c.name for c in low)
        accuracies = sorted({f"{c.test_mean:.3f}" for c in low})
        guess: Guessing = low[0].guessing
        cause = (
            "with random stand-in weights that is no surprise"
            if all(c.standin for c in low)
            else "with pretrained weights it points to a problem (the weights, the learning rates, the data), "
            "not to a worse backbone"
        )
        warnings.append(
            f"The test accuracy of {which} is at chance level ({', '.join(accuracies)}; {guess.describe()}): "
            f"no better than guessing, so it ranks nothing; {cause}. Speed and memory hold."
        )
    return warnings


def _unranked_why(c: Configuration) -> str:
    return "at chance level" if c.at_chance else "from stand-in weights"


def _backbones(configs) -> str:
    return ", ".join(sorted({c.backbone for c in configs}))


def _names(configs) -> str:
    return ", ".join(c.backbone for c in configs)


@dataclass(frozen=True)
class Constraints:
    memory_budget: float | None = None  # bytes of peak memory
    min_throughput: float | None = None  # images/s, of `throughput`
    min_accuracy: float | None = None  # mean test accuracy
    throughput: str = "train"  # "train" or "infer"

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.memory_budget, self.min_throughput, self.min_accuracy))

    def describe(self) -> str:
        parts = []
        if self.memory_budget is not None:
            parts.append(f"peak memory at most {format_bytes(self.memory_budget)}")
        if self.min_throughput is not None:
            parts.append(f"{self.throughput} throughput at least {self.min_throughput:g} images/s")
        if self.min_accuracy is not None:
            parts.append(f"test accuracy at least {self.min_accuracy:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Choice:
    constraints: Constraints
    # The most accurate that fits (then the fastest); the fastest when no
    # accuracy of those that fit ranks (ranks_on_accuracy). None if none fits.
    best: Configuration | None
    fitting: list = field(default_factory=list)
    ruled_out: list = field(default_factory=list)  # (Configuration, reasons: list[str])

    @property
    def basis(self) -> str:
        """How `best` was chosen, in words."""
        if self.best is None or ranks_on_accuracy(self.best):
            return "the most accurate that fits"
        return (
            "the fastest to train that fits: the accuracies of those that fit rank nothing "
            "(stand-in weights or chance level)"
        )


def choose(records, constraints: Constraints) -> Choice:
    fitting, ruled_out = [], []
    for c in configurations(records):
        reasons = _reasons(c, constraints)
        if reasons:
            ruled_out.append((c, reasons))
        else:
            fitting.append(c)
    fitting.sort(key=lambda c: (-_accuracy(c), -(c.train_images_per_sec or 0.0)))
    return Choice(constraints, fitting[0] if fitting else None, fitting, ruled_out)


def _reasons(c: Configuration, constraints: Constraints) -> list[str]:
    if c.status != "ok":
        return [f"no result: every seed ended {c.status}" if c.status != "incomplete" else "no test accuracy recorded"]
    reasons = []
    if constraints.memory_budget is not None:
        if c.peak_memory_bytes is None:
            reasons.append("peak memory not measured")
        elif c.peak_memory_bytes > constraints.memory_budget:
            reasons.append(
                f"peak memory {format_bytes(c.peak_memory_bytes)} > {format_bytes(constraints.memory_budget)}"
            )
    if constraints.min_throughput is not None:
        speed = c.train_images_per_sec if constraints.throughput == "train" else c.infer_images_per_sec
        if speed is None:
            reasons.append(f"{constraints.throughput} throughput not measured")
        elif speed < constraints.min_throughput:
            reasons.append(
                f"{constraints.throughput} throughput {speed:,.1f} < {constraints.min_throughput:g} images/s"
            )
    if constraints.min_accuracy is not None and c.test_mean < constraints.min_accuracy:
        reasons.append(f"test accuracy {c.test_mean:.3f} < {constraints.min_accuracy:g}")  # ok: test_mean is set
    return reasons
