"""A trial's figures, listed once (`FIGURES`): how the record's fields are presented in the trials table
(reports/columns.py), trials.csv and TensorBoard's HParams (reports/export.py) and a finished trial's live line
(`live_figures`, driver/runner.py), shared by the driver and the reports as record.py is. Every output lists its
figures in FIGURES' order (trials.csv's), but for those with an `after` for it. Adding a figure is adding one entry
(and its line in results/README.md). A table's cell carries marks (`Column.cell`): a timed figure's stability
(stability.py: `UNSTABLE_MARK`, `SMOKE_MARK`), a test accuracy's chance level (`rules.CHANCE_MARK`)."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tlbench import stability
from tlbench.formats import format_bytes, fraction, percent, rate, seconds
from tlbench.record import FIELDS, Status
from tlbench.reports import rules

MISSING, UNSTABLE_MARK, SMOKE_MARK = "-", " !", " (smoke)"
LIVE_UNSTABLE_MARK = " [yellow]![/]"  # the live view prints rich markup
TRAIN, INFER = ("train_images_per_sec",), ("infer_images_per_sec",)  # the timed figures cells come from


@dataclass(frozen=True)
class Column:
    header: str
    # A row's field, or a function of the row giving the cell's value; in a Figure, None: the figure's field.
    key: str | Callable[[dict], Any] | None = None
    format: Callable[[Any], str | None] = str  # the value as text; None: missing
    numeric: bool = True
    figures: tuple[str, ...] = ()  # the timed figures the cell comes from: their stability marks it
    chance: str | None = None  # the field of a test accuracy the cell shows: marked at chance level
    # The same cell as narrower columns, for a narrow terminal: the essential one (a median) first.
    parts: tuple[Column, ...] = ()

    def cell(self, record: dict) -> str:
        value = self.key(record) if callable(self.key) else record.get(self.key)
        try:
            shown = None if value is None else self.format(value)
        except (TypeError, ValueError, AttributeError, OverflowError):  # a field of an unexpected type
            return str(value)
        if shown is None:
            return MISSING
        at_chance = self.chance and rules.at_chance(record, record.get(self.chance))
        return shown + (rules.CHANCE_MARK if at_chance else self.stability_mark(record))

    def stability_mark(self, record: dict, unstable_mark: str = UNSTABLE_MARK) -> str:
        if any(figure in stability.unstable(record) for figure in self.figures):
            return unstable_mark
        return SMOKE_MARK if self.figures and stability.record_quality(record) == stability.SMOKE else ""


@dataclass(frozen=True)
class Figure:
    """A trial's figure, and each place it shows."""

    field: str  # a record field, or the name of a figure derived from the record by `value`
    column: Column | None = None  # its column in the trials table: right-aligned unless the record types it as text
    csv: bool = True  # a trials.csv column, named by the field: the figure as plain text
    hparam: str | None = None  # an HParams hparam, shown as: a number or text as the record types it
    metric: str | None = None  # an HParams metric, shown as: a scalar at step 0 of the trial's session
    live: str | None = None  # its part of a finished trial's live line: a format of its value, marked as its cell
    value: Callable[[Any], Any] | None = None  # the figure from the record, where not its field as it is
    varies: bool = False  # a table column only when the trials differ in it
    after: dict[str, str] | None = None  # output ("column", "hparam", "metric") -> the figure it follows there

    def __post_init__(self):
        if self.column is not None and self.column.key is None:
            numeric = _plain(FIELDS.get(self.field)) not in (str, Status)
            object.__setattr__(self, "column", replace(self.column, key=self.field, numeric=numeric))

    def get(self, trial: Mapping) -> Any:
        return self.value(trial) if self.value else trial.get(self.field)

    @property
    def number(self) -> bool:
        return _plain(FIELDS.get(self.field)) in (int, float)


def _plain(kind):
    """A field's type without its `| None`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        (kind,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return kind


def _throughput(stage: str, header: str, metric: str) -> tuple[Figure, ...]:
    """`<stage>_images_per_sec`, the median over the timed windows: in the table with their [interquartile range]
    when there were two or more (in parts: the median with its marks, the range); trials.csv's `_q1`, `_q3` as the
    record's timing holds them, even of one window."""
    figure = f"{stage}_images_per_sec"

    def summary(record: Mapping) -> dict:
        timing = record.get(f"{stage}_timing")
        return timing if isinstance(timing, dict) else {}

    def timing(record: dict) -> tuple | None:
        """(median, [q1-q3] or None); the plain figure of an earlier version's record."""
        median, q1, q3 = (summary(record).get(f"images_per_sec_{k}") for k in ("median", "q1", "q3"))
        if median is None:
            return None if record.get(figure) is None else (record[figure], None)
        if q1 is None or q3 is None or summary(record).get("repeats", 1) < 2:
            return median, None
        digits = ".1f" if median < 100 else ".0f"  # as many digits as tell the quartiles apart
        return median, f"[{q1:,{digits}}-{q3:,{digits}}]"

    def quartile(name: str) -> Figure:
        return Figure(f"{figure}_{name}", value=lambda trial: summary(trial).get(f"images_per_sec_{name}"))

    median = Column(header, timing, lambda t: rate(t[0]), figures=(figure,))
    parts = (median, Column(header.replace("img/s", "IQR"), timing, lambda t: t[1]))
    column = replace(median, format=lambda t: " ".join(filter(None, (rate(t[0]), t[1]))), parts=parts)
    return Figure(figure, column, metric=metric, live=f"{stage} {{:.1f}} img/s"), quartile("q1"), quartile("q3")


FIGURES = (
    Figure("trial_id"),
    Figure("backbone", Column("backbone"), hparam="backbone"),
    Figure("mode", Column("mode"), hparam="mode"),
    Figure("batch_size", Column("batch"), hparam="batch size"),
    # A column when the trials ran with several seeds: else rows of one configuration look alike.
    Figure("seed", Column("seed"), hparam="seed", varies=True),
    Figure("dataset", hparam="dataset"),
    # The table and HParams show its kind (tfhub / local / standin), trials.csv the full source.
    Figure(
        "weights",
        Column("weights", format=lambda source: source.split(":", 1)[0]),
        hparam="weights",
        after={"column": "predicted_activation_bytes"},
    ),
    # Throughputs from different devices are not one ranking: the device labels every row and groups the rows.
    Figure("device", Column("device"), hparam="device", after={"column": "weights", "hparam": "learning_rate"}),
    Figure("status", Column("status"), hparam="status", after={"hparam": "device"}),
    Figure("error"),
    Figure("budget", hparam="budget"),
    Figure("batch_norm", hparam="backbone BatchNorm"),
    Figure("probe_penalty", hparam="probe L2 penalty chosen"),
    Figure("learning_rate", hparam="learning rate chosen"),
    Figure("train_accuracy", metric="train accuracy"),
    Figure("val_accuracy", Column("val acc", format=fraction), metric="validation accuracy"),
    Figure(
        "test_accuracy",
        Column("test acc", format=fraction, chance="test_accuracy"),
        metric="test accuracy",
        live="test acc {:.3f}",
    ),
    *_throughput("train", "train img/s", metric="train images/s"),
    *_throughput("infer", "infer img/s", metric="inference images/s"),
    Figure(
        "train_mfu",
        Column("train MFU", format=percent, figures=(*TRAIN, "peak_flops_per_sec")),
        metric="train MFU",
        after={"metric": "activation_memory_bytes"},
    ),
    Figure("peak_memory_bytes", Column("peak mem", format=format_bytes), metric="peak memory bytes"),
    # What a training step adds to the baseline, and what the graph predicts it keeps.
    Figure("activation_memory_bytes", Column("step mem", format=format_bytes), metric="step memory bytes"),
    Figure("predicted_activation_bytes", Column("pred act", format=format_bytes)),
    # The process's resident peak and what of it the allocator does not count: no column (the table is wide).
    Figure("peak_rss_bytes", metric="peak RSS bytes"),
    Figure("runtime_overhead_bytes", metric="runtime overhead bytes"),
    # The trial's device (--device-memory's, the GPU's or the CPU allocator's limit) and the largest batch whose
    # training step fits it by the graph (device_memory.py); why an oom was one (allocator or prediction).
    Figure("device_memory_bytes", metric="device memory bytes"),
    Figure("max_batch_size_predicted", metric="largest batch predicted"),
    Figure("max_batch_size_found", metric="largest batch found"),  # --batch-size max (batch_search.py)
    Figure("oom_cause"),
    Figure("time_to_accuracy_seconds", Column("to acc s", format=seconds), metric="seconds to accuracy"),
    Figure("seconds", Column("time s", format=seconds), metric="trial seconds"),
    Figure("timing_quality", value=stability.record_quality),
    Figure("unstable", value=lambda trial: ";".join(sorted(stability.unstable(trial))) or None),
)


def shown_in(output: str) -> list[Figure]:
    """The figures an output ("column", "csv", "hparam", "metric", "live") shows, in its order. FIGURES is read at
    each call."""
    order = [figure for figure in FIGURES if getattr(figure, output)]
    for figure in order[:]:
        if follows := (figure.after or {}).get(output):
            order.remove(figure)
            order.insert([f.field for f in order].index(follows) + 1, figure)
    return order


def live_figures(trial: dict) -> str:
    """A finished trial's figures, as the live view prints them after its status."""
    line = ""
    for figure in shown_in("live"):
        value = figure.get(trial)
        if isinstance(value, (int, float)) and figure.live:
            mark = figure.column.stability_mark(trial, LIVE_UNSTABLE_MARK) if figure.column else ""
            line += f"  {figure.live.format(value)}{mark}"
    return line
