"""`compare RUN_A RUN_B`: each configuration's change from run A to run B, regressions beyond thresholds marked, and
the gate `compare_runs`, which refuses runs with nothing to compare and warns where their setups differ. A differing
device is only a note: before / after on two machines is what compare is for."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from tlbench import stability
from tlbench.errors import UsageError
from tlbench.formats import format_bytes, fraction, rate, signed_percent
from tlbench.reports.analysis import RunAnalysis
from tlbench.reports.columns import INFER, TRAIN, Column
from tlbench.reports.configs import Configuration, config_key
from tlbench.reports.rules import no_result_status, seeds_within_noise
from tlbench.run_env import ENV_KEY


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
    setup: str = ""  # "weights on device" where a run has several configurations of this backbone, mode, batch size

    @property
    def name(self) -> str:
        return f"{self.backbone} {self.mode} batch {self.batch_size}" + (f" ({self.setup})" if self.setup else "")

    @property
    def row(self) -> dict:
        def both(attribute):
            return (getattr(self.a, attribute, None), getattr(self.b, attribute, None))

        return {
            "backbone": f"{self.backbone} ({self.setup})" if self.setup else self.backbone,
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


def compare(configs_a: list[Configuration], configs_b: list[Configuration], thresholds: Thresholds) -> list[Change]:
    sides = [[(config_key(c.row), c) for c in configs] for configs in (configs_a, configs_b)]
    several = {short for side in sides for short, n in Counter(key[:3] for key, _ in side).items() if n > 1}
    before, after = ({key if key[:3] in several else key[:3]: c for key, c in side} for side in sides)
    changes = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        backbone, mode, batch_size, *setup = key  # setup: weights and device where keyed by them
        changes.append(Change(backbone, mode, batch_size, a, b, *_judge(a, b, thresholds), " on ".join(setup)))
    return changes


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]  # the configurations in both runs, judged
    only_a: list[str]  # names of the configurations in run A only: not compared
    only_b: list[str]
    warnings: list[str]  # setups that differ: the figures do not measure the same thing
    notes: list[str]  # devices that differ


# What a configuration's figures measure: (record field, a warning's word for it, its path in env.json's plan, or None).
SETUP = (
    ("dataset", "datasets", ("dataset",)),  # a folder's absolute path: differs between machines for the same images
    ("budget", "budgets", ("budget",)),
    ("weights", "weights", None),  # the plan's is the policy asked for
    ("train_size", "--train-size caps", ("protocol", "train_size")),
    ("split_seed", "split seeds", ("protocol", "split_seed")),
    ("batch_norm", "BatchNorm policies", None),  # the plan's is the policy; transfer's is always frozen
    ("xla", "XLA", ("xla",)),
    ("mixed_precision", "mixed precision", None),  # the record's says where it was applied
)


def compare_runs(a: RunAnalysis, b: RunAnalysis, thresholds: Thresholds = Thresholds()) -> Comparison:
    for label, run, configs in (("A", a.run, a.configurations), ("B", b.run, b.configurations)):
        if not run.records:
            raise UsageError(f"run {label} '{run.run_dir}' has no trial record: nothing to compare")
        if not any(c.has_result for c in configs):
            ended = Counter(no_result_status(r).replace("incomplete", "ok without its figures") for r in run.records)
            counts = ", ".join(f"{n} {status}" for status, n in sorted(ended.items()))
            raise UsageError(f"run {label} '{run.run_dir}' has no trial that ended ok ({counts}): nothing to compare")
    changes = compare(a.configurations, b.configurations, thresholds)
    both = [(c, c.a, c.b) for c in changes if c.a is not None and c.b is not None]  # with a and b narrowed
    only_a, only_b = [c.name for c in changes if c.b is None], [c.name for c in changes if c.a is None]
    if not both:
        raise UsageError(
            f"no configuration in common: run A '{a.run.run_dir}' has {_names(only_a)}; "
            f"run B '{b.run.run_dir}' has {_names(only_b)}"
        )
    if not any(x.has_result or y.has_result for _, x, y in both):
        names = _names([c.name for c, _, _ in both])
        raise UsageError(f"no configuration measured in both runs: {names} ended without a result in both")
    setups = [(_setups(a, x), _setups(b, y)) for _, x, y in both]
    warnings = []
    for name, label, _ in SETUP:
        if differing := [(o[name], n[name]) for o, n in setups if name in o and name in n and o[name] != n[name]]:
            warnings.append(f"{_differ(label, differing, len(both))}: the figures do not measure the same thing")
    devices = [(x.device, y.device) for _, x, y in both if x.device != y.device]
    notes = [f"{_differ('devices', devices, len(both))}: speed and memory changes are the machines' too"]
    return Comparison([c for c, _, _ in both], only_a, only_b, warnings, notes if devices else [])


def _names(names: list[str], most: int = 6) -> str:  # `most`: the names an error line shows before "and N more"
    shown = ", ".join(names[:most]) or "none"
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


def _setups(analysis: RunAnalysis, c: Configuration) -> dict[str, str]:
    """Each SETUP field of a configuration: its records' values as one text; else the run's plan's, where it says."""
    records = [r for r in analysis.records if config_key(r) == config_key(c.row)]
    setup = {}
    for name, _, in_plan in SETUP:
        values = {_shown(r[name]) for r in records if name in r}
        if values or (in_plan and (values := _planned(analysis.run.env, in_plan))):
            setup[name] = ", ".join(sorted(values))
    return setup


def _planned(env: object, path: tuple[str, ...]) -> set[str]:
    for part in (ENV_KEY, *path):
        if not isinstance(env, dict) or part not in env:
            return set()
        env = env[part]
    return {_shown(env)}


def _shown(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else "none" if value is None else str(value)


def _differ(label: str, pairs: list[tuple[str, str]], compared: int) -> str:
    where = "" if len(pairs) == compared else f" in {len(pairs)} of {compared} configuration(s)"
    distinct = list(dict.fromkeys(pairs))
    shown = "; ".join(f"{old} in run A, {new} in run B" for old, new in distinct[:3])
    return f"{label} differ{where}: {shown}" + (f"; and {len(distinct) - 3} more" if len(distinct) > 3 else "")


def _judge(a: Configuration | None, b: Configuration | None, t: Thresholds) -> tuple[tuple, tuple, tuple, dict]:
    """(regressions, notes, changes of figures unstable in either run, figure -> why unstable per run)."""
    if a is None or b is None:
        return (), (f"only in run {'A' if b is None else 'B'}",), (), {}
    if a.has_result and not b.has_result:
        return (f"was ok, now {b.status}",), (), (), {}
    if a.test_mean is None or b.test_mean is None:  # not both has_result
        return (), (f"was {a.status}, now ok" if b.has_result else f"{b.status} in both runs",), (), {}
    regressions, notes, unstable, why = [], [], [], {}
    if (drop := a.test_mean - b.test_mean) > t.accuracy_drop and seeds_within_noise(a, b):
        notes.append(f"accuracy -{drop:.3f}, within the seeds' noise")
    elif drop > t.accuracy_drop:
        regressions.append(f"accuracy -{drop:.3f} (> {t.accuracy_drop:g})")
    for label, figure in (("training", *TRAIN), ("inference", *INFER)):
        if runs := [(run, c.unstable[figure]) for run, c in (("A", a), ("B", b)) if figure in c.unstable]:
            why[figure] = "; ".join(f"run {run}: {reason}" for run, reason in runs)
        if not (old := getattr(a, figure)) or (new := getattr(b, figure)) is None:
            continue
        change = f"{label} {signed_percent(new / old - 1)} images/s"
        if runs:
            unstable.append(f"{change}, unstable in {' and '.join(f'run {run}' for run, _ in runs)}: not judged")
        elif stability.SMOKE in (a.timing_quality, b.timing_quality):
            notes.append(f"{change}, smoke figures: not judged")
        elif new < old * (1 - t.slowdown):
            regressions.append(f"{change} (> {t.slowdown:.0%} slower)")
    if (old := a.peak_memory_bytes) and (new := b.peak_memory_bytes) and (growth := new / old - 1) > t.memory_growth:
        regressions.append(f"peak memory {signed_percent(growth)} (> {t.memory_growth:.0%} more)")
    for what, x, y in (("weights", a.weights, b.weights), ("devices", a.device, b.device)):
        if x != y:
            notes.append(f"{what} differ: {x} vs {y}")
    return tuple(regressions), tuple(notes), tuple(unstable), why


def _pair(format_value, pair, relative: bool):
    """A cell `A -> B (change)` from a (before, after) pair."""
    old, new = pair
    shown = " -> ".join("-" if value is None else format_value(value) for value in pair)
    if old is None or new is None:
        return None if old is None and new is None else shown
    change = signed_percent(new / old - 1) if relative and old else f"{new - old:+.3f}"
    return f"{shown} ({change})"


COMPARE_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("test acc A -> B", "accuracy", partial(_pair, fraction, relative=False)),
    Column("train img/s A -> B", "train", partial(_pair, rate, relative=True), figures=TRAIN),
    Column("infer img/s A -> B", "infer", partial(_pair, rate, relative=True), figures=INFER),
    Column("peak mem A -> B", "memory", partial(_pair, format_bytes, relative=True)),
    Column("verdict", "verdict", numeric=False),
)
