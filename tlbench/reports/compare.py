"""`compare RUN_A RUN_B`: each configuration's change in accuracy, speed and
memory from run A to run B, with the regressions beyond thresholds marked.

Configurations (backbone x mode x batch size) are matched across the runs and
summed over their seeds first (analysis.configurations). A drop in accuracy is
a regression only when it is beyond the threshold and, where both runs have
several seeds, beyond their noise too. A change of images/s is not judged
when the figure is unstable in either run (stability.py): the verdict is
"unstable", listed with the reasons, and no regression; nor when either is a
smoke figure (the quick budget's), which is no measurement.

`compare_runs` makes a gate of it: two runs with no configuration measured in
both are a UsageError (nothing was compared, so nothing can pass); the
configurations in one run only are set apart, not judged; and where the
common configurations were run on other data, budgets, weights or protocol,
warnings say so before any figure (a differing dataset too: a folder dataset
is recorded by its absolute path, which differs between machines for the
same images). A differing device is a note: before / after on two machines is
what compare is for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tlbench import stability
from tlbench.driver.request import ENV_KEY
from tlbench.errors import UsageError
from tlbench.reports.analysis import Configuration, configurations, within_noise
from tlbench.reports.columns import INFER, TRAIN, Column, format_bytes
from tlbench.results import RunContents


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


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]  # the configurations in both runs, judged
    only_a: list[str]  # names of the configurations in run A only: not compared
    only_b: list[str]
    warnings: list[str]  # setups that differ: the figures do not measure the same thing
    notes: list[str]  # devices that differ


# Record fields that say what a configuration's figures measure: (field, what
# the warning calls it, where env.json's plan keeps it for records that lack
# the field, or None where the plan's value means something else).
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


def compare_runs(run_a: RunContents, run_b: RunContents, thresholds: Thresholds = Thresholds()) -> Comparison:
    """The configurations of both runs judged, those of one run set apart, the
    differences of setup said; a UsageError when nothing can be compared."""
    for label, run in (("A", run_a), ("B", run_b)):
        _check_has_results(label, run)
    changes = compare(run_a.records, run_b.records, thresholds)
    common = [c for c in changes if c.a is not None and c.b is not None]
    only_a = [_name(c) for c in changes if c.b is None]
    only_b = [_name(c) for c in changes if c.a is None]
    if not common:
        raise UsageError(
            f"no configuration in common: run A '{run_a.run_dir}' has {_names(only_a)}; "
            f"run B '{run_b.run_dir}' has {_names(only_b)}"
        )
    if not any("ok" in (c.a.status, c.b.status) for c in common):
        raise UsageError(
            f"no configuration measured in both runs: {_names([_name(c) for c in common])} "
            "ended without a result in both"
        )
    keys = [(c.backbone, c.mode, c.batch_size) for c in common]
    setup_a, setup_b = _setups(run_a, keys), _setups(run_b, keys)
    warnings = []
    for field_name, label, _ in SETUP:
        pairs = [(setup_a[key].get(field_name), setup_b[key].get(field_name)) for key in keys]
        differing = [(old, new) for old, new in pairs if old is not None and new is not None and old != new]
        if differing:
            warnings.append(f"{_differ(label, differing, len(keys))}: the figures do not measure the same thing")
    devices = [(c.a.device, c.b.device) for c in common if c.a.device != c.b.device]
    notes = (
        [f"{_differ('devices', devices, len(keys))}: speed and memory changes are the machines' too"] if devices else []
    )
    return Comparison(common, only_a, only_b, warnings, notes)


def _check_has_results(label: str, run: RunContents) -> None:
    if not run.records:
        raise UsageError(f"run {label} '{run.run_dir}' has no trial record: nothing to compare")
    statuses = {c.status for c in configurations(run.records)}
    if "ok" not in statuses:
        ended = Counter(
            "ok without its figures" if r.get("status") == "ok" else str(r.get("status")) for r in run.records
        )
        counts = ", ".join(f"{n} {status}" for status, n in sorted(ended.items()))
        raise UsageError(f"run {label} '{run.run_dir}' has no trial that ended ok ({counts}): nothing to compare")


def _name(change: Change) -> str:
    return f"{change.backbone} {change.mode} batch {change.batch_size}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES]) or "none"
    return f"{shown} and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else shown


def _setups(run: RunContents, keys: list[tuple]) -> dict[tuple, dict[str, str]]:
    """For each configuration key, each SETUP field's values over its records
    as one text; from the run's plan where no record has the field; absent
    where neither says."""
    plan = run.env.get(ENV_KEY) if isinstance(run.env.get(ENV_KEY), dict) else {}
    groups: dict[tuple, list[dict]] = {key: [] for key in keys}
    for record in run.records:
        key = (str(record.get("backbone")), str(record.get("mode")), record.get("batch_size"))
        if key in groups:
            groups[key].append(record)
    setups = {}
    for key, group in groups.items():
        setup = {}
        for field_name, _, in_plan in SETUP:
            values = {_shown(r[field_name]) for r in group if field_name in r}
            if not values and in_plan is not None:
                value = _planned(plan, in_plan)
                values = {_shown(value)} if value is not _MISSING else set()
            if values:
                setup[field_name] = ", ".join(sorted(values))
        setups[key] = setup
    return setups


_MISSING = object()


def _planned(plan: dict, path: tuple[str, ...]):
    value = plan
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


def _differ(label: str, pairs: list[tuple[str, str]], compared: int) -> str:
    """`datasets differ: x in run A, y in run B`, saying in how many of the
    compared configurations when not in all."""
    where = "" if len(pairs) == compared else f" in {len(pairs)} of {compared} configuration(s)"
    distinct = list(dict.fromkeys(pairs))
    shown = "; ".join(f"{old} in run A, {new} in run B" for old, new in distinct[:3])
    more = f"; and {len(distinct) - 3} more" if len(distinct) > 3 else ""
    return f"{label} differ{where}: {shown}{more}"


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
