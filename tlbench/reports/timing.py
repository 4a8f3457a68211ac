"""A decision in minutes: each backbone's early answer (a ridge probe and LogME on its features, worker/frozen.py)
comes as its frozen computation ends, long before the trials' full answer. From env.json's `started_at` and the
records' times: when each answer came, whether the early ranking held against the trials' (each backbone's most
accurate configuration on validation), where the wall time went; None for runs that recorded no start."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from tlbench import formats
from tlbench.figures import Column
from tlbench.record import finite, timestamp
from tlbench.reports.configs import Configuration
from tlbench.results import RunContents

REST = "scheduling, start-up"
PHASES = ("load", "graph costs", "features", "searches", "timed passes", REST)
PHASES_NOTE = (
    "The run's wall time, from its start to its last trial's end, per backbone: **load** (a trial's backbone, weights "
    "and data: `phase_seconds` `load`), **graph costs** (FLOPs and memory from the graph: `costs`), **features** (each "
    "backbone's frozen computation once, `frozen_inputs`, and the trials' own `feature_seconds`), **searches** (the "
    "learning-rate searches and evaluations: `accuracy` less `feature_seconds`), **timed passes** (`timed_passes` and "
    f"the peak-FLOP/s probe, `peak_probe`) and **{REST}**: the rest, checking the data, choosing the weights, Ray's "
    "start, workers importing TensorFlow, trials outside their phases, the driver; after `--resume`, the pause."
)


def _span(run: RunContents, records) -> tuple[float, float] | None:
    """(the run's start, its last trial's end), seconds since the epoch; None without both."""
    ends = [end for r in records if (end := timestamp(r.get("finished_at"))) is not None]
    start = timestamp(run.env.get("started_at"))
    return None if start is None or not ends else (start, max(start, *ends))


def _computations(records) -> dict[str, tuple[str, dict]]:
    """Each frozen computation the records name, once: its id -> (backbone, a record's `frozen_inputs`)."""
    named = [(str(r.get("backbone")), r.get("frozen_inputs") or {}) for r in records]
    return {frozen["computation"]: (b, frozen) for b, frozen in named if isinstance(frozen.get("computation"), str)}


def _ranks(keys: dict[str, tuple]) -> dict[str, int]:
    """Competition ranks, the highest key first (1, 2, 2, 4)."""
    return {name: 1 + sum(other > key for other in keys.values()) for name, key in keys.items()}


@dataclass(frozen=True)
class Answer:
    """A backbone's early answer (its first frozen computation's) beside its final one (its best configuration)."""

    backbone: str
    ridge_val_accuracy: float | None  # None: no early answer (`missing` says why)
    logme: float | None
    answered_after: float | None  # seconds after the run's start
    best: Configuration | None  # of the highest mean validation accuracy; None: no trial recorded one
    early_rank: int | None  # by ridge_val_accuracy, ties broken by the higher LogME
    final_rank: int | None  # by best.val_mean
    missing: str | None  # why an answer is missing


@dataclass(frozen=True)
class Decision:
    wall_seconds: float  # from the run's start to its last trial's end: the full answer
    answers: list[Answer]  # by early rank, then those without one
    swapped: list[tuple[str, str]]  # (above early, above in the trials) among the backbones with both answers
    unknown: str | None  # why it can't be told for every backbone whether the early ranking held
    standins: list[str]  # backbones on random stand-in weights


def decision(run: RunContents, records, configs: list[Configuration]) -> Decision | None:
    if (span := _span(run, records)) is None:
        return None
    latest_first = sorted(_computations(records).values(), key=lambda c: c[1].get("finished_at") or "", reverse=True)
    early = {b: frozen for b, frozen in latest_first if finite(frozen.get("ridge_val_accuracy")) is not None}  # first
    valued = [c for c in reversed(configs) if c.val_mean is not None]  # of equal means, the more accurate on test
    best = {c.backbone: c for c in sorted(valued, key=lambda c: c.val_mean or 0.0)}  # the last is the best
    early_ranks = _ranks({b: (f["ridge_val_accuracy"], finite(f.get("logme")) or -1e300) for b, f in early.items()})
    final_ranks = _ranks({b: (c.val_mean,) for b, c in best.items()})
    answers = []
    for backbone in sorted({str(r.get("backbone")) for r in records}):
        frozen, trials = early.get(backbone, {}), [r for r in records if r.get("backbone") == backbone]
        after = None if (answered := timestamp(frozen.get("finished_at"))) is None else answered - span[0]
        figures = finite(frozen.get("ridge_val_accuracy")), finite(frozen.get("logme")), after, best.get(backbone)
        missing = _missing(frozen, trials, backbone in best)
        answers.append(Answer(backbone, *figures, early_ranks.get(backbone), final_ranks.get(backbone), missing))
    last = len(answers) + 1  # no rank: after the ranked
    answers.sort(key=lambda a: (a.early_rank or last, a.final_rank or last, a.backbone))
    pairs = combinations([a.backbone for a in answers if a.backbone in early_ranks and a.backbone in best], 2)
    swapped = [(a, b) for a, b in pairs if early_ranks[a] < early_ranks[b] and final_ranks[a] > final_ranks[b]]
    lacking = "; ".join(f"{a.backbone} has {a.missing}" for a in answers if a.missing) or None
    one = "the run has one backbone, nothing to rank" if len(answers) < 2 else None
    unknown = one or (lacking if best else "no trial recorded a validation accuracy")
    standins = sorted({str(r.get("backbone")) for r in records if str(r.get("weights", "")).startswith("standin")})
    return Decision(span[1] - span[0], answers, swapped, unknown, standins)


def _missing(frozen: dict, trials: list, final: bool) -> str | None:
    if frozen:
        return None if final else "no validation accuracy"
    own = "a single trial computes its own features" if len(trials) == 1 else "no shared frozen computation"
    failed = any((r.get("frozen_inputs") or {}).get("computation") for r in trials)
    return f"no early answer ({'its frozen computation failed' if failed else own})"


def _held(d: Decision) -> str:
    pairs = "; ".join(f"{a} and {b} swapped ({a} above early, {b} above in the trials)" for a, b in d.swapped)
    return f"did not hold: {pairs}" if pairs else "held"


def verdict(d: Decision) -> str:
    """When the answers came; whether the early ranking held; with stand-in weights, what the rankings are of."""
    first = min((a.answered_after for a in d.answers if a.answered_after is not None), default=None)
    text = "No early answer came" if first is None else f"The first early answer came at +{formats.clock(first)}"
    text += f", the full answer as the last trial ended, at +{formats.clock(d.wall_seconds)}: the run's wall time. "
    if d.unknown is None:
        text += f"The early ranking {_held(d)}."
    else:
        compared = [a.backbone for a in d.answers if a.early_rank is not None and a.final_rank is not None]
        others = f"; among {', '.join(compared)} it {_held(d)}" if len(compared) >= 2 else ""
        text += f"Can't tell whether the early ranking held: {d.unknown}{others}."
    if d.standins:
        them = "it" if len(d.standins) == 1 else "them"
        text += f" {', '.join(d.standins)} ran on random stand-in weights: both rankings of {them} are of random"
        text += " networks and say nothing about which backbone transfers better."
    return text


DECISION_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("ridge val acc", "ridge_val_accuracy", formats.fraction),
    Column("LogME", "logme", lambda value: f"{value:.3f}"),
    Column("early rank", "early_rank"),
    Column("answered at", "answered_after", lambda value: f"+{formats.clock(value)}"),
    Column("best configuration", "best", lambda c: f"{c.mode}, batch {c.batch_size}", numeric=False),
    Column("its val acc", "best", lambda c: formats.mean_and_std(c.val_mean, c.val_std)),
    Column("final rank", "final_rank"),
)


@dataclass(frozen=True)
class TimeSplit:
    wall_seconds: float
    slots: int  # trials at once (env.json's cluster): the total is wall_seconds x slots
    total: float
    phases: dict[str, float]  # part of PHASES -> seconds, every backbone's; REST: the total less the others
    rows: list[dict]  # per backbone its parts' seconds, "all" and "share" of the total; then REST's; the total's


def time_split(run: RunContents, records) -> TimeSplit | None:
    if (span := _span(run, records)) is None:
        return None
    parts = PHASES[:-1]  # REST: what is left
    busy = {backbone: dict.fromkeys(parts, 0.0) for backbone in sorted({str(r.get("backbone")) for r in records})}
    for r in records:
        phase = {name: finite(value) or 0.0 for name, value in (r.get("phase_seconds") or {}).items()}
        features = finite(r.get("feature_seconds")) or 0.0
        searches = max(0.0, phase.get("accuracy", 0.0) - features)
        timed = phase.get("timed_passes", 0.0) + phase.get("peak_probe", 0.0)
        for part, seconds in zip(parts, (phase.get("load", 0.0), phase.get("costs", 0.0), features, searches, timed)):
            busy[str(r.get("backbone"))][part] += seconds
    for backbone, frozen in _computations(records).values():  # each computation once, however many trials shared it
        busy[backbone]["features"] += finite(frozen.get("seconds")) or 0.0
    phases = {part: sum(mine[part] for mine in busy.values()) for part in parts}
    cluster = run.env.get("cluster", {})  # trials at once: as many as the resources a trial takes allow
    have = {"num_gpus": cluster.get("gpus", 0), "num_cpus": cluster.get("cpus", 0)}
    each = cluster.get("trial_resources") or {}
    slots = max(1, min((int(have[name] // n) for name, n in each.items() if n and name in have), default=1))
    total = max((span[1] - span[0]) * slots, sum(phases.values()))
    phases[REST] = total - sum(phases.values())
    rows: list[dict] = [{"name": backbone, **mine, "all": sum(mine.values())} for backbone, mine in busy.items()]
    rows += [{"name": REST, "all": phases[REST]}, {"name": "total", **phases, "all": total}]
    rows = [{**row, "share": row["all"] / total if total else 0.0} for row in rows]
    return TimeSplit(span[1] - span[0], slots, total, phases, rows)


def split_text(split: TimeSplit) -> tuple[str, str]:
    """What the table shows and how its total is counted; the largest part."""
    parallel = f" Up to {split.slots} trials ran at once (env.json's `cluster`): the total is the wall time times "
    parallel += f"{split.slots} trial slots, and {REST} what the slots did not spend in a part, idle slots included."
    intro = PHASES_NOTE + (parallel if split.slots > 1 else "")
    (largest, seconds), *others = sorted(split.phases.items(), key=lambda part: -part[1])
    share = {part: formats.percent(seconds / (split.total or 1.0)) for part, seconds in split.phases.items()}
    then = ", ".join(f"{part} {share[part]}" for part, _ in others)
    total = f"{formats.seconds(seconds)} s of {formats.seconds(split.total)} s ({share[largest]})"
    return intro, f"The largest part is **{largest}**: {total}; then {then}."


SPLIT_COLUMNS = (
    Column("backbone", "name", numeric=False),
    *(Column(f"{part} s", part, formats.seconds) for part in PHASES[:-1]),
    Column("all s", "all", formats.seconds),
    Column("share", "share", formats.percent),
)
