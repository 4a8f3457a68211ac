"""One column list feeds every rendering of the comparison: the rich terminal
table and the Markdown table in report.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

MISSING = "-"


def _fraction(value) -> str:
    return f"{value:.3f}"


def _rate(value) -> str:
    return f"{value:,.1f}"


def _bytes(value) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _seconds(value) -> str:
    return f"{value:.0f}"


def _weights(value) -> str:
    return value.split(":", 1)[0]  # tfhub / local / standin; the full source is in the record


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    format: Callable = str
    numeric: bool = True

    def cell(self, record: dict) -> str:
        value = record.get(self.key)
        if value is None:
            return MISSING
        try:
            return self.format(value)
        except (TypeError, ValueError):
            return str(value)


COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("mode", "mode", numeric=False),
    Column("batch", "batch_size"),
    Column("status", "status", numeric=False),
    Column("val acc", "val_accuracy", _fraction),
    Column("test acc", "test_accuracy", _fraction),
    Column("train img/s", "train_images_per_sec", _rate),
    Column("infer img/s", "infer_images_per_sec", _rate),
    Column("peak mem", "peak_memory_bytes", _bytes),
    Column("weights", "weights", _weights, numeric=False),
    # Throughputs from different devices are not one ranking: the device
    # labels every row and groups the rows.
    Column("device", "device", numeric=False),
    Column("time s", "seconds", _seconds),
)


def sort_key(record: dict):
    return (
        str(record.get("device")),
        str(record.get("backbone")),
        str(record.get("mode")),
        record.get("batch_size") or 0,
    )


def rich_table(records, title: str | None = None) -> Table:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for record in sorted(records, key=sort_key):
        style = None if record.get("status") == "ok" else "red"
        table.add_row(*(column.cell(record) for column in COLUMNS), style=style)
    return table


def markdown_table(records) -> str:
    lines = [
        "| " + " | ".join(column.header for column in COLUMNS) + " |",
        "| " + " | ".join("---:" if column.numeric else "---" for column in COLUMNS) + " |",
    ]
    for record in sorted(records, key=sort_key):
        cells = (column.cell(record).replace("|", "\\|") for column in COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
