"""From measured configurations to a choice: the best on each criterion, the Pareto front, advice per backbone, the
best under constraints. Records only, no TensorFlow. Speed is training images/s: the grid's choices are about training.
Accuracy ranks only where it means something (rules.ranks_on_accuracy); elsewhere speed and memory decide alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from tlbench import stability
from tlbench.formats import format_bytes, fraction, rate
from tlbench.reports.configs import Configuration
from tlbench.reports.rules import ranks_on_accuracy, seeds_within_noise

NOT_RANKED = "not ranked: every accuracy here comes from stand-in weights or is at chance level (see below)"
INCOMPLETE_REASON = "incomplete: its test accuracy missing, or a figure left out where it was read (the warnings)"
PARETO = "**Pareto front** (accuracy against training speed, no configuration better on both): "


@dataclass(frozen=True)
class Recommendation:
    most_accurate: Configuration | None  # None when no accuracy ranks (ranks_on_accuracy)
    fastest: Configuration
    least_memory: Configuration
    pareto: list  # of Configuration, most accurate first; only those whose accuracy ranks
    advice: list  # one plain sentence per backbone: when to choose it (first, why accuracy can't decide)
    warnings: list  # why the figures may not carry the decision

    def headlines(self) -> list[str]:
        front = [f"{c.name} ({fraction(c.test_mean)}, {rate(c.train_images_per_sec)} img/s)" for c in self.pareto]
        return [
            f"**Most accurate**: {self.most_accurate.summary_line() if self.most_accurate else NOT_RANKED}",
            f"**Fastest to train**: {self.fastest.summary_line()}",
            f"**Least memory**: {self.least_memory.summary_line()}",
            *([PARETO + ", ".join(front)] if front else []),  # no front exactly when no accuracy ranks
        ]


def _accuracy(c: Configuration) -> float:
    return c.test_mean if c.test_mean is not None and ranks_on_accuracy(c) else -1.0  # else below any, for ordering


def with_all_figures(configs) -> list[Configuration]:
    """The configurations with accuracy, speed and memory all measured (a speed or a memory of 0 is no measurement)."""
    return [c for c in configs if c.has_result and min(c.train_images_per_sec or 0, c.peak_memory_bytes or 0) > 0]


def pareto_front(configs) -> list[Configuration]:
    """Accuracy against training speed: the undominated configurations that rank, most accurate first."""
    points = [(c.test_mean, c.train_images_per_sec, c) for c in configs if ranks_on_accuracy(c)]
    front = [c for a, s, c in points if not any(oa >= a and os >= s and (oa, os) != (a, s) for oa, os, _ in points)]
    return sorted(front, key=lambda c: (-c.test_mean, -c.train_images_per_sec))


def recommend(configs: list[Configuration]) -> Recommendation | None:
    configs = with_all_figures(configs)
    if not configs:
        return None
    ranked = [c for c in configs if ranks_on_accuracy(c)]
    most_accurate = max(ranked, key=lambda c: (c.test_mean, c.train_images_per_sec)) if ranked else None
    fastest = max(configs, key=lambda c: (c.train_images_per_sec, _accuracy(c)))
    least_memory = min(configs, key=lambda c: (c.peak_memory_bytes, -_accuracy(c)))
    warnings = []
    if standins := _backbones(c for c in configs if c.standin):
        warnings.append(
            f"Accuracies of {standins} come from stand-in weights (random initialisation, not pretrained): they say "
            "nothing about which backbone transfers better, and this advice ranks nothing on them. "
            "Speed and memory hold."
        )
    for backbone in dict.fromkeys(c.backbone for c in configs):
        mine = [c for c in configs if c.backbone == backbone]
        if not (low := [c for c in mine if c.at_chance]) or (guess := low[0].guessing) is None:  # never None at chance
            continue
        which = f"every configuration of {backbone}" if len(low) == len(mine) else ", ".join(c.name for c in low)
        accuracies = ", ".join(sorted({fraction(c.test_mean) for c in low}))
        problem = "it points to a problem (the weights, the learning rates, the data), not to a worse backbone"
        standin = all(c.standin for c in low)
        cause = "with random stand-in weights that is no surprise" if standin else f"with pretrained weights {problem}"
        warnings.append(
            f"The test accuracy of {which} is at chance level ({accuracies}; {guess.summary_line()}): "
            f"no better than guessing, so it ranks nothing; {cause}. Speed and memory hold."
        )
    if any(c.n_seeds < 2 for c in configs):
        warnings.append(
            "Some configurations ran with one seed, so their accuracy spread is unknown: a difference in "
            "accuracy may be noise. Run with --seeds 3 or more."
        )
    if tied := [c for c in ranked if c is not most_accurate and seeds_within_noise(c, most_accurate)]:
        warnings.append(
            f"{len(tied)} configuration(s) are within noise of the most accurate: "
            f"{', '.join(c.name for c in tied)}. Among them, choose on speed and memory."
        )
    if (devices := len({c.device for c in configs})) > 1:
        warnings.append(f"Trials ran on {devices} kinds of device; speeds compare within a device only.")
    if unsteady := [c for c in configs if "train_images_per_sec" in c.unstable or c.timing_quality == stability.SMOKE]:
        warnings.append(
            f"The training speed of {len(unsteady)} configuration(s) is unstable or a smoke figure (see the "
            "marks in the tables): what this advice says about speed may not hold."
        )
    return Recommendation(most_accurate, fastest, least_memory, pareto_front(configs), _advice(configs), warnings)


def _advice(configs) -> list[str]:
    """First, when no accuracy ranks, why; then for each backbone's best configuration (most accurate, then fastest):
    what it wins on against the other backbones, in measured figures."""
    sentences = []
    if not any(ranks_on_accuracy(c) for c in configs):
        reasons = []
        if standins := _backbones(c for c in configs if c.standin):
            reasons.append(f"the accuracies of {standins} come from stand-in weights (random initialisation)")
        if chance := _backbones(c for c in configs if c.at_chance and not c.standin):
            reasons.append(f"{'those' if standins else 'the accuracies'} of {chance} are at chance level")
        sentences.append(
            f"Accuracy decides nothing here: {' and '.join(reasons)}, so no configuration is called more accurate "
            "than another. What follows compares speed and memory only."
        )
    best: dict = {}  # backbone -> Configuration, every figure measured (recommend passes with_all_figures')
    for c in sorted(configs, key=lambda c: (-_accuracy(c), -c.train_images_per_sec)):
        best.setdefault(c.backbone, c)
    if len(best) < 2:
        return sentences
    for backbone, mine in best.items():
        others, ranks = [o for o in best.values() if o is not mine], ranks_on_accuracy(mine)
        wins = []  # (what it is chosen for, "" for a remark; why, in figures)
        for other in others:
            speed, its_speed, name = mine.train_images_per_sec, other.train_images_per_sec, other.backbone
            memory, its_memory, its_ranks = mine.peak_memory_bytes, other.peak_memory_bytes, ranks_on_accuracy(other)
            close = seeds_within_noise(mine, other) if ranks and its_ranks else None
            if ranks and its_ranks and mine.test_mean > other.test_mean and close is not True:
                certainty = "beyond the seeds' noise" if close is False else "one seed: noise unknown"
                figures = f"{fraction(mine.test_mean)} vs {fraction(other.test_mean)} test accuracy, {certainty}"
                wins.append(("accuracy comes first", f"it is more accurate than {name} ({figures})"))
            if speed > its_speed:
                figures = f"{speed / its_speed:.1f}x as fast as {name} ({rate(speed)} vs {rate(its_speed)} images/s)"
                wins.append(("training speed counts", f"it trains {figures}"))
            if memory < its_memory:
                figures = f"{format_bytes(memory)} of peak memory against {format_bytes(its_memory)} for {name}"
                wins.append(("memory is tight", f"it needs {figures}"))
            if close is True:
                wins.append(("", f"its accuracy is within the seeds' noise of {name}'s"))
            elif ranks != its_ranks:  # say why the one that ranks nothing doesn't
                why = "at chance level" if (other if ranks else mine).at_chance else "from stand-in weights"
                remark = f"is not compared with {name}'s ({why})" if ranks else f"({why}) is not compared with {name}'s"
                wins.append(("", f"its accuracy {remark}"))
        choice, said = f"{backbone} ({mine.mode}, batch {mine.batch_size})", "; ".join(why for _, why in wins)
        if kinds := [kind for kind, _ in wins if kind]:
            sentences.append(f"Choose {choice} when {' or '.join(dict.fromkeys(kinds))}: {said}.")
        else:
            against = ", ".join(o.backbone for o in others) + (f": {said}" if said else "")
            sentences.append(f"{choice} wins on nothing measured here against {against}.")
    return sentences


def _backbones(configs) -> str:
    return ", ".join(sorted({c.backbone for c in configs}))


@dataclass(frozen=True)
class Constraints:
    memory_budget: float | None = None  # bytes of peak memory
    min_throughput: float | None = None  # images/s, of `throughput`
    min_accuracy: float | None = None  # mean test accuracy
    throughput: str = "train"  # "train" or "infer"

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.memory_budget, self.min_throughput, self.min_accuracy))

    def summary_line(self) -> str:
        budget, least, accuracy = self.memory_budget, self.min_throughput, self.min_accuracy
        parts = [f"peak memory at most {format_bytes(budget)}"] if budget is not None else []
        parts += [f"{self.throughput} throughput at least {least:g} images/s"] if least is not None else []
        parts += [f"test accuracy at least {accuracy:g}"] if accuracy is not None else []
        return ", ".join(parts)


@dataclass(frozen=True)
class Choice:
    constraints: Constraints
    best: Configuration | None  # the most accurate that fits, then the fastest (see basis); None if none fits
    fitting: list = field(default_factory=list)
    ruled_out: list = field(default_factory=list)  # (Configuration, reasons: list[str])

    @property
    def basis(self) -> str:
        if self.best is None or ranks_on_accuracy(self.best):
            return "the most accurate that fits"
        return (
            "the fastest to train that fits: the accuracies of those that fit rank nothing "
            "(stand-in weights or chance level)"
        )


def choose(configs: list[Configuration], constraints: Constraints) -> Choice:
    judged = [(c, _reasons(c, constraints)) for c in configs]
    fitting = sorted((c for c, r in judged if not r), key=lambda c: (-_accuracy(c), -(c.train_images_per_sec or 0.0)))
    return Choice(constraints, fitting[0] if fitting else None, fitting, [(c, r) for c, r in judged if r])


def _reasons(c: Configuration, constraints: Constraints) -> list[str]:
    if c.test_mean is None:  # no result (Configuration.has_result)
        return [f"no result: every seed ended {c.status}" if c.status != "incomplete" else INCOMPLETE_REASON]
    reasons = []
    if (budget := constraints.memory_budget) is not None:
        if c.peak_memory_bytes is None:
            reasons.append("peak memory not measured")
        elif c.peak_memory_bytes > budget:
            reasons.append(f"peak memory {format_bytes(c.peak_memory_bytes)} > {format_bytes(budget)}")
    if (least := constraints.min_throughput) is not None:
        speed = c.train_images_per_sec if (kind := constraints.throughput) == "train" else c.infer_images_per_sec
        if speed is None:
            reasons.append(f"{kind} throughput not measured")
        elif speed < least:
            reasons.append(f"{kind} throughput {rate(speed)} < {least:g} images/s")
    if constraints.min_accuracy is not None and c.test_mean < constraints.min_accuracy:
        reasons.append(f"test accuracy {fraction(c.test_mean)} < {constraints.min_accuracy:g}")
    return reasons
