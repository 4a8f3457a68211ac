"""One column list feeds every rendering of a table: the rich terminal table,
the Markdown table in report.md and the HTML table in report.html. `COLUMNS`
renders trial records, `SPREAD_COLUMNS` configurations over their seeds
(analysis.Configuration rows), `MEMORY_COLUMNS` memory slopes
(analysis.MemorySlope rows).

A timed figure's cell carries its stability (stability.py): `UNSTABLE_MARK`
when the row's `unstable` names one of the figures it comes from,
`SMOKE_MARK` when the row's timing is a smoke figure (`MARKS_LEGEND`)."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from tlbench import stability

MISSING = "-"
UNSTABLE_MARK = " !"
SMOKE_MARK = " (smoke)"
MARKS_LEGEND = (
    "A figure marked `!` is unstable: its timed windows spread too far, other processes took the CPU while it "
    "was timed, its peak-FLOP/s probes disagree, or it disagrees with other trials that timed the same "
    "computation (the reasons are listed; stop other work on the machine and run again). `(smoke)`: timed in "
    "one window or in windows of fewer than 3 steps (the quick budget): the code path ran, the figure is no "
    "measurement."
)


def _fraction(value) -> str:
    return f"{value:.3f}"


def _rate(value) -> str:
    return f"{value:,.1f}"


def format_bytes(value) -> str:
    sign, value = ("-" if value < 0 else ""), abs(value)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{sign}{value / size:.1f} {unit}"
    return f"{sign}{value:.0f} B"


def _seconds(value) -> str:
    return f"{value:.0f}"


def _percent(value) -> str:
    return f"{100 * value:.1f}%"


def _rate_with_spread(timing_key: str) -> Callable[[dict], str | None]:
    """Median images/s and its interquartile range over the timed windows."""

    def cell(record: dict) -> str | None:
        timing = record.get(timing_key)
        timing = timing if isinstance(timing, dict) else {}
        median, q1, q3 = (timing.get(f"images_per_sec_{k}") for k in ("median", "q1", "q3"))
        if median is None:  # records of earlier versions: the plain figure
            value = record.get(timing_key.replace("timing", "images_per_sec"))
            return None if value is None else _rate(value)
        if q1 is None or q3 is None or timing.get("repeats", 1) < 2:
            return _rate(median)
        spread = ".1f" if median < 100 else ".0f"  # as many digits as tell the quartiles apart
        return f"{_rate(median)} [{q1:,{spread}}-{q3:,{spread}}]"

    return cell


def _weights(value) -> str:
    return value.split(":", 1)[0]  # tfhub / local / standin; the full source is in the record


@dataclass(frozen=True)
class Column:
    header: str
    key: str | Callable[[dict], str | None]  # a record field, or a function of the record giving the cell
    format: Callable = str
    numeric: bool = True
    figures: tuple[str, ...] = ()  # the timed figures the cell comes from: their stability marks it

    def cell(self, record: dict) -> str:
        value = self.key(record) if callable(self.key) else record.get(self.key)
        if value is None:
            return MISSING
        try:
            text = self.format(value)
        except (TypeError, ValueError, AttributeError, OverflowError):  # a field of an unexpected type
            return str(value)
        return MISSING if text is None else text + self._mark(record)

    def _mark(self, record: dict) -> str:
        if not self.figures:
            return ""
        if any(figure in stability.unstable(record) for figure in self.figures):
            return UNSTABLE_MARK
        return SMOKE_MARK if stability.record_quality(record) == stability.SMOKE else ""


# The timed figures cells come from (Column.figures).
TRAIN, INFER = ("train_images_per_sec",), ("infer_images_per_sec",)

COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("status", "status", numeric=False),
    Column("val acc", "val_accuracy", _fraction),
    Column("test acc", "test_accuracy", _fraction),
    # Median images/s over the timed windows, [interquartile range].
    Column("train img/s", _rate_with_spread("train_timing"), figures=TRAIN),
    Column("infer img/s", _rate_with_spread("infer_timing"), figures=INFER),
    Column("train MFU", "train_mfu", _percent, figures=(*TRAIN, "peak_flops_per_sec")),
    Column("peak mem", "peak_memory_bytes", format_bytes),
    # What a training step adds to the baseline, and what the graph predicts it keeps.
    Column("step mem", "activation_memory_bytes", format_bytes),
    Column("pred act", "predicted_activation_bytes", format_bytes),
    Column("weights", "weights", _weights, numeric=False),
    # Throughputs from different devices are not one ranking: the device
    # labels every row and groups the rows.
    Column("device", "device", numeric=False),
    Column("to acc s", "time_to_accuracy_seconds", _seconds),
    Column("time s", "seconds", _seconds),
)


def _mean_and_std(mean_key: str, std_key: str) -> Callable[[dict], str | None]:
    def cell(row: dict) -> str | None:
        mean, std = row.get(mean_key), row.get(std_key)
        if mean is None:
            return None
        return _fraction(mean) if std is None else f"{_fraction(mean)} ± {_fraction(std)}"

    return cell


SPREAD_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("weights", "weights", _weights, numeric=False),
    Column("seeds", "n_seeds"),
    Column("test acc mean ± std", _mean_and_std("test_mean", "test_std")),
    Column("val acc mean ± std", _mean_and_std("val_mean", "val_std")),
    Column("vs best", "verdict", numeric=False),
    Column("train img/s", "train_images_per_sec", _rate, figures=TRAIN),
    Column("peak mem", "peak_memory_bytes", format_bytes),
    Column("device", "device", numeric=False),
)

MEMORY_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("device", "device", numeric=False),
    Column("batch sizes", lambda row: ", ".join(map(str, row["batch_sizes"])), numeric=False),
    Column("step mem per image", "step_bytes_per_image", format_bytes),
    Column("predicted per image", "predicted_bytes_per_image", format_bytes),
    Column("peak mem per image", "bytes_per_image", format_bytes),
    Column("predicted peak per image", "predicted_peak_bytes_per_image", format_bytes),
    Column("peak / predicted", "peak_over_predicted", lambda value: f"{value:.2f}"),
    Column(
        "peak mem fixed part",
        lambda row: row["intercept_note"] if row["intercept_bytes"] is None else format_bytes(row["intercept_bytes"]),
    ),
)


def sort_key(record: dict):
    batch = record.get("batch_size")
    return (
        str(record.get("device")),
        str(record.get("backbone")),
        str(record.get("mode")),
        batch if isinstance(batch, int) else 0,
    )


def rich_table(records, title: str | None = None, columns=COLUMNS, *, ordered: bool = False) -> Table:
    """`ordered`: keep the rows' order (else trial records sort by sort_key)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for record in records if ordered else sorted(records, key=sort_key):
        style = None if record.get("status", "ok") == "ok" else "red"
        # Text, not markup: a "[...]" in a run file is shown as it is.
        table.add_row(*(Text(column.cell(record)) for column in columns), style=style)
    return table


def html_table(records, columns=COLUMNS, *, ordered: bool = False) -> str:
    head = "".join(f"<th>{html.escape(column.header)}</th>" for column in columns)
    rows = []
    for record in records if ordered else sorted(records, key=sort_key):
        cells = "".join(
            f'<td class="{"num" if column.numeric else "text"}">{html.escape(column.cell(record))}</td>'
            for column in columns
        )
        failed = ' class="failed"' if record.get("status", "ok") != "ok" else ""
        rows.append(f"<tr{failed}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def markdown_table(records, columns=COLUMNS, *, ordered: bool = False) -> str:
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "| " + " | ".join("---:" if column.numeric else "---" for column in columns) + " |",
    ]
    for record in records if ordered else sorted(records, key=sort_key):
        cells = (column.cell(record).replace("|", "\\|") for column in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
