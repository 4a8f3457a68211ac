"""One column list feeds every rendering of a table: the rich terminal table,
the Markdown table in report.md and the HTML table in report.html. `COLUMNS`
renders trial records, `SPREAD_COLUMNS` configurations over their seeds
(analysis.Configuration rows), `MEMORY_COLUMNS` memory slopes
(analysis.MemorySlope rows).

A timed figure's cell carries its stability (stability.py): `UNSTABLE_MARK`
when the row's `unstable` names one of the figures it comes from,
`SMOKE_MARK` when the row's timing is a smoke figure (`MARKS_LEGEND`). A test
accuracy at chance level carries `chance.MARK`, and every rendering of a
table with one says what it means under it (`chance.LEGEND`).

In a terminal, a column list's essential columns come first and whole
(`TRIAL_ESSENTIALS`; terminal.py fits the tables to the console's width); a
column's `parts` are its cell split for a narrow terminal."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from tlbench import stability
from tlbench.reports import chance

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
        if value >= size * 1000 / 1024:  # 1000 MiB and up as 0.98 GiB: at most 5 characters before the unit
            digits = 2 if value < size else 1
            return f"{sign}{value / size:.{digits}f} {unit}"
    return f"{sign}{value:.0f} B"


def _seconds(value) -> str:
    return f"{value:.0f}"


def _percent(value) -> str:
    return f"{100 * value:.1f}%"


def _timing(record: dict, timing_key: str) -> tuple:
    """Median images/s and the interquartile range over the timed windows
    (None, None when there was one window); the plain figure for records of
    earlier versions."""
    timing = record.get(timing_key)
    timing = timing if isinstance(timing, dict) else {}
    median, q1, q3 = (timing.get(f"images_per_sec_{k}") for k in ("median", "q1", "q3"))
    if median is None:
        return record.get(timing_key.replace("timing", "images_per_sec")), None, None
    if q1 is None or q3 is None or timing.get("repeats", 1) < 2:
        return median, None, None
    return median, q1, q3


def _quartiles(timing_key: str) -> Callable[[dict], str | None]:
    def cell(record: dict) -> str | None:
        median, q1, q3 = _timing(record, timing_key)
        if q1 is None:
            return None
        spread = ".1f" if median < 100 else ".0f"  # as many digits as tell the quartiles apart
        return f"[{q1:,{spread}}-{q3:,{spread}}]"

    return cell


def _rate_with_spread(timing_key: str) -> Callable[[dict], str | None]:
    """Median images/s and its [interquartile range] over the timed windows."""

    def cell(record: dict) -> str | None:
        median = _timing(record, timing_key)[0]
        if median is None:
            return None
        quartiles = _quartiles(timing_key)(record)
        return _rate(median) if quartiles is None else f"{_rate(median)} {quartiles}"

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
    chance: str | None = None  # the field of a test accuracy the cell shows: marked at chance level
    # The same cell as narrower columns, for a narrow terminal: the first
    # holds what is essential (a median), the others the rest (its spread).
    parts: tuple = ()

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
        if self.chance and chance.at_chance(record, record.get(self.chance)):
            return chance.MARK
        if not self.figures:
            return ""
        if any(figure in stability.unstable(record) for figure in self.figures):
            return UNSTABLE_MARK
        return SMOKE_MARK if stability.record_quality(record) == stability.SMOKE else ""


# The timed figures cells come from (Column.figures).
TRAIN, INFER = ("train_images_per_sec",), ("infer_images_per_sec",)


def _rate_columns(header: str, timing_key: str, figures: tuple[str, ...]) -> Column:
    """Median images/s over the timed windows, [interquartile range]; in
    parts, the median (with its marks) and the range."""
    median = Column(header, lambda r: _timing(r, timing_key)[0], _rate, figures=figures)
    quartiles = Column(header.replace("img/s", "IQR"), _quartiles(timing_key))
    return Column(header, _rate_with_spread(timing_key), figures=figures, parts=(median, quartiles))


COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("status", "status", numeric=False),
    Column("val acc", "val_accuracy", _fraction),
    Column("test acc", "test_accuracy", _fraction, chance="test_accuracy"),
    _rate_columns("train img/s", "train_timing", TRAIN),
    _rate_columns("infer img/s", "infer_timing", INFER),
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
    Column("test acc mean ± std", _mean_and_std("test_mean", "test_std"), chance="test_mean"),
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


SEED = Column("seed", "seed")
# The columns that name a trial, and those a terminal shows at any width.
TRIAL_KEYS = ("backbone", "mode", "batch", "seed")
TRIAL_ESSENTIALS = (*TRIAL_KEYS, "status", "test acc", "train img/s", "infer img/s", "peak mem")


def trial_columns(records) -> tuple[Column, ...]:
    """COLUMNS, with the seed after the batch size when the trials ran with
    more than one (else rows of one configuration look alike)."""
    if len({str(r.get("seed")) for r in records}) < 2:
        return COLUMNS
    after = [c.header for c in COLUMNS].index("batch") + 1
    return (*COLUMNS[:after], SEED, *COLUMNS[after:])


def legends(records, columns) -> list[str]:
    """What the marks of a table's cells mean, where it has them (the
    stability marks are explained apart, with their reasons)."""
    marked = any(c.chance and c.cell(r).endswith(chance.MARK) for c in columns for r in records)
    return [chance.LEGEND] if marked else []


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
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in legends(records, columns))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}"


def markdown_table(records, columns=COLUMNS, *, ordered: bool = False) -> str:
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "| " + " | ".join("---:" if column.numeric else "---" for column in columns) + " |",
    ]
    for record in records if ordered else sorted(records, key=sort_key):
        cells = (column.cell(record).replace("|", "\\|") for column in columns)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [line for note in legends(records, columns) for line in ("", note)]  # a paragraph under the table
    return "\n".join(lines) + "\n"
