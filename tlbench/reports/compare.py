"""`compare RUN_A RUN_B`: each configuration's change in accuracy, speed and memory from run A to run B, with the
regressions beyond thresholds marked.

Configurations (summed over their seeds, configs.configurations) are matched across the runs by backbone, mode and
batch size, and by weights and device too where a run has several of one, which would otherwise collapse into one. A
drop in accuracy is a regression only beyond the threshold and, where both runs have several seeds, beyond their noise
too. A change of images/s is not judged when the figure is unstable in either run (stability.py: the verdict is
"unstable", listed with the reasons, and no regression), nor when either is a smoke figure, which is no measurement.

`compare_runs` makes a gate of it: two runs with no configuration measured in both are a UsageError (nothing was
compared, so nothing can pass); configurations in one run only are set apart, not judged; where the common ones ran on
other data, budgets, weights or protocol, warnings say so before any figure (a folder dataset is recorded by its
absolute path, which differs between machines for the same images). A differing device is a note: before / after on
two machines is what compare is for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tlbench import stability
from tlbench.errors import UsageError
from tlbench.reports.analysis import RunAnalysis
from tlbench.reports.columns import INFER, TRAIN, Column
from tlbench.reports.configs import Configuration, config_key
from tlbench.reports.formats import format_bytes, fraction, rate, signed_percent
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


# Record fields that say what a configuration's figures measure: (field, what the warning calls it, where env.json's
# plan keeps it for records that lack the field, or None where the plan's value means something else).
SETUP = (
    ("dataset", "datasets", ("dataset",)),
    ("budget", "budgets", ("budget",)),
    ("weights", "weights", None),  # the plan's is the policy asked for
    ("train_size", "--train-size caps", ("protocol", "train_size")),
    ("split_seed", "split seeds", ("protocol", "split_seed")),
    ("batch_norm", "BatchNorm policies", None),  # the plan's is the policy; transfer's is always frozen
    ("xla", "XLA", ("xla",)),
    ("mixed_precision", "mixed precision", None),  # the record's says where it was applied
)
SHOWN_NAMES = 6  # configurations named in an error line before "and N more"


def compare_runs(a: RunAnalysis, b: RunAnalysis, thresholds: Thresholds = Thresholds()) -> Comparison:
    """The gate of the module docstring; a UsageError when nothing can be compared."""
    for label, run, configs in (("A", a.run, a.configurations), ("B", b.run, b.configurations)):
        if not run.records:
            raise UsageError(f"run {label} '{run.run_dir}' has no trial record: nothing to compare")
        if not any(c.has_result for c in configs):
            ended = Counter(no_result_status(r).replace("incomplete", "ok without its figures") for r in run.records)
            counts = ", ".join(f"{n} {status}" for status, n in sorted(ended.items()))
            raise UsageError(f"run {label} '{run.run_dir}' has no trial that ended ok ({counts}): nothing to compare")
    changes = compare(a.configurations, b.configurations, thresholds)
    both = [(c, c.a, c.b) for c in changes if c.a is not None and c.b is not None]  # with a and b narrowed
    common = [c for c, _, _ in both]
    only_a, only_b = [c.name for c in changes if c.b is None], [c.name for c in changes if c.a is None]
    if not common:
        raise UsageError(
            f"no configuration in common: run A '{a.run.run_dir}' has {_names(only_a)}; "
            f"run B '{b.run.run_dir}' has {_names(only_b)}"
        )
    if not any(x.has_result or y.has_result for _, x, y in both):
        names = _names([c.name for c in common])
        raise UsageError(f"no configuration measured in both runs: {names} ended without a result in both")
    setups = [(_setups(a, x), _setups(b, y)) for _, x, y in both]
    warnings = []
    for name, label, _ in SETUP:
        pairs = [(old.get(name), new.get(name)) for old, new in setups]
        if differing := [(old, new) for old, new in pairs if old is not None and new is not None and old != new]:
            warnings.append(f"{_differ(label, differing, len(common))}: the figures do not measure the same thing")
    devices = [(x.device, y.device) for _, x, y in both if x.device != y.device]
    notes = [f"{_differ('devices', devices, len(common))}: speed and memory changes are the machines' too"]
    return Comparison(common, only_a, only_b, warnings, notes if devices else [])


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES]) or "none"
    return f"{shown} and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else shown


def _setups(analysis: RunAnalysis, c: Configuration) -> dict[str, str]:
    """Each SETUP field of a configuration: its records' values as one text; else the run's plan's; absent where
    neither says."""
    key = config_key(c.row)
    records = [r for r in analysis.records if config_key(r) == key]
    setup = {}
    for name, _, in_plan in SETUP:
        values = {_shown(r[name]) for r in records if name in r}
        if values or (in_plan and (values := _planned(analysis.run.env, in_plan))):
            setup[name] = ", ".join(sorted(values))
    return setup


def _planned(env: object, path: tuple[str, ...]) -> set[str]:
    """The value env.json's plan keeps at `path`, shown; none where it keeps none."""
    for part in (ENV_KEY, *path):
        if not isinstance(env, dict) or part not in env:
            return set()
        env = env[part]
    return {_shown(env)}


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


def _differ(label: str, pairs: list[tuple[str, str]], compared: int) -> str:
    """`datasets differ: x in run A, y in run B`, saying in how many of the compared configurations when not in all."""
    where = "" if len(pairs) == compared else f" in {len(pairs)} of {compared} configuration(s)"
    distinct = list(dict.fromkeys(pairs))
    shown = "; ".join(f"{old} in run A, {new} in run B" for old, new in distinct[:3])
    more = f"; and {len(distinct) - 3} more" if len(distinct) > 3 else ""
    return f"{label} differ{where}: {shown}{more}"


def _judge(a: Configuration | None, b: Configuration | None, t: Thresholds) -> tuple[tuple, tuple, tuple, dict]:
    """(regressions, notes, changes of figures unstable in either run, figure -> why unstable per run). The changes
    of unstable and of smoke figures are not judged."""
    if a is None or b is None:
        return (), (f"only in run {'A' if b is None else 'B'}",), (), {}
    if not (a.has_result and b.has_result):
        if a.has_result:
            return (f"was ok, now {b.status}",), (), (), {}
        return (), (f"was {a.status}, now ok" if b.has_result else f"{b.status} in both runs",), (), {}
    regressions, notes, unstable, why = [], [], [], {}
    assert a.test_mean is not None and b.test_mean is not None  # both has_result, checked above
    if (drop := a.test_mean - b.test_mean) > t.accuracy_drop and seeds_within_noise(a, b):
        notes.append(f"accuracy -{drop:.3f}, within the seeds' noise")
    elif drop > t.accuracy_drop:
        regressions.append(f"accuracy -{drop:.3f} (> {t.accuracy_drop:g})")
    for label, figure in (("training", *TRAIN), ("inference", *INFER)):
        runs = [(run, c.unstable[figure]) for run, c in (("A", a), ("B", b)) if figure in c.unstable]
        if runs:
            why[figure] = "; ".join(f"run {run}: {reason}" for run, reason in runs)
        old, new = getattr(a, figure), getattr(b, figure)
        if not old or new is None:
            continue
        change = f"{label} {signed_percent(new / old - 1)} images/s"
        if runs:
            unstable.append(f"{change}, unstable in {' and '.join(f'run {run}' for run, _ in runs)}: not judged")
        elif stability.SMOKE in (a.timing_quality, b.timing_quality):
            notes.append(f"{change}, smoke figures: not judged")
        elif new < old * (1 - t.slowdown):
            regressions.append(f"{change} (> {t.slowdown:.0%} slower)")
    growth = b.peak_memory_bytes / a.peak_memory_bytes - 1 if a.peak_memory_bytes and b.peak_memory_bytes else None
    if growth is not None and growth > t.memory_growth:
        regressions.append(f"peak memory {signed_percent(growth)} (> {t.memory_growth:.0%} more)")
    if a.weights != b.weights:
        notes.append(f"weights differ: {a.weights} vs {b.weights}")
    if a.device != b.device:
        notes.append(f"devices differ: {a.device} vs {b.device}")
    return tuple(regressions), tuple(notes), tuple(unstable), why


def _pair(format_value, relative: bool):
    """A cell `A -> B (change)` from a (before, after) pair."""

    def cell(pair):
        old, new = pair
        shown = " -> ".join("-" if value is None else format_value(value) for value in pair)
        if old is None or new is None:
            return None if old is None and new is None else shown
        change = signed_percent(new / old - 1) if relative and old else f"{new - old:+.3f}"
        return f"{shown} ({change})"

    return cell


COMPARE_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("test acc A -> B", "accuracy", _pair(fraction, relative=False)),
    Column("train img/s A -> B", "train", _pair(rate, relative=True), figures=TRAIN),
    Column("infer img/s A -> B", "infer", _pair(rate, relative=True), figures=INFER),
    Column("peak mem A -> B", "memory", _pair(format_bytes, relative=True)),
    Column("verdict", "verdict", numeric=False),
)
