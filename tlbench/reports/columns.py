"""The column lists the reports' tables are made from, and their renderings: the rich terminal table, the Markdown
table of report.md, the HTML table of report.html. `COLUMNS` renders trial records (the columns of the registry,
figures.FIGURES), `SPREAD_COLUMNS` configurations over their seeds (configs.Configuration rows), `MEMORY_COLUMNS`
memory slopes (configs.MemorySlope rows). A table with chance marks says what they mean under it (`legends`); the
stability marks are explained apart, with their reasons (`MARKS_LEGEND`). In a terminal, a column list's essential
columns come first and whole (`TRIAL_ESSENTIALS`; terminal.py fits the tables to the console's width)."""

from __future__ import annotations

import html
from collections.abc import Callable

from rich.table import Table
from rich.text import Text

from tlbench.figures import INFER, MISSING, SMOKE_MARK, TRAIN, UNSTABLE_MARK, Column, shown_in  # noqa: F401 - re-export
from tlbench.reports import rules
from tlbench.device_memory import FIT_HEADERS
from tlbench.formats import format_bytes, mean_and_std, rate

MARKS_LEGEND = (
    "A figure marked `!` is unstable: its timed windows spread too far, other processes took the CPU while it was "
    "timed, its peak-FLOP/s probes disagree, or it disagrees with other trials that timed the same computation (the "
    "reasons are listed; stop other work on the machine and run again). `(smoke)`: timed in one window or in windows "
    "of fewer than 3 steps (the quick budget): the code path ran, the figure is no measurement."
)

# The columns that name a trial, and those a terminal shows at any width.
TRIAL_KEYS = ("backbone", "mode", "batch", "seed")
TRIAL_ESSENTIALS = (*TRIAL_KEYS, "status", "test acc", "train img/s", "infer img/s", "peak mem")


def trial_columns(records) -> tuple[Column, ...]:
    """The columns of the figures shown in the table, those that `vary` where the trials differ in them."""
    varied = {f.field for f in shown_in("column") if f.varies and len({str(r.get(f.field)) for r in records}) > 1}
    return tuple(f.column for f in shown_in("column") if f.column and (not f.varies or f.field in varied))


COLUMNS = trial_columns(())
_FIGURE_COLUMN = {f.field: f.column for f in shown_in("column") if f.column}  # for other rows with these fields


def _mean_and_std(name: str) -> Callable[[dict], str | None]:
    """A configuration's `<name>_mean ± <name>_std` over its seeds."""
    mean, std = f"{name}_mean", f"{name}_std"
    return lambda row: None if row.get(mean) is None else mean_and_std(row[mean], row.get(std))


SPREAD_COLUMNS = (
    *(_FIGURE_COLUMN[field] for field in ("backbone", "mode", "batch_size", "weights")),
    Column("seeds", "n_seeds"),
    Column("test acc mean ± std", _mean_and_std("test"), chance="test_mean"),
    Column("val acc mean ± std", _mean_and_std("val")),
    Column("vs best", "verdict", numeric=False),
    Column("train img/s", "train_images_per_sec", rate, figures=TRAIN),
    *(_FIGURE_COLUMN[field] for field in ("peak_memory_bytes", "device")),
)

MEMORY_COLUMNS = (
    *(_FIGURE_COLUMN[field] for field in ("backbone", "mode", "device")),
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


def legends(records, columns) -> list[str]:
    """What the chance marks of a table's cells mean, where it has them."""
    marked = any(c.chance and c.cell(r).endswith(rules.CHANCE_MARK) for c in columns for r in records)
    return [rules.CHANCE_LEGEND] if marked else []


def sort_key(record: dict) -> tuple:
    return (*(str(record.get(key)) for key in ("device", "backbone", "mode")), rules.whole(record.get("batch_size")))


def _rows(records, columns, ordered: bool):
    """Each row's cells, and whether it is a failed trial's; `ordered`: in their order, else sorted by sort_key."""
    for record in records if ordered else sorted(records, key=sort_key):
        yield [column.cell(record) for column in columns], record.get("status", "ok") != "ok"


def rich_table(records, title: str | None = None, columns=COLUMNS, *, ordered: bool = False) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for cells, failed in _rows(records, columns, ordered):
        table.add_row(*map(Text, cells), style="red" if failed else None)  # Text, not markup: "[...]" shows as it is
    return table


def html_table(records, columns=COLUMNS, *, ordered: bool = False) -> str:
    head = "".join(f"<th>{html.escape(column.header)}</th>" for column in columns)
    kinds = ["num" if column.numeric else "text" for column in columns]
    rows = []
    for cells, failed in _rows(records, columns, ordered):
        tds = "".join(f'<td class="{kind}">{html.escape(cell)}</td>' for kind, cell in zip(kinds, cells))
        rows.append(('<tr class="failed">' if failed else "<tr>") + tds + "</tr>")
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in legends(records, columns))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}"


def markdown_table(records, columns=COLUMNS, *, ordered: bool = False) -> str:
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "| " + " | ".join("---:" if column.numeric else "---" for column in columns) + " |",
    ]
    for cells, _ in _rows(records, columns, ordered):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [line for note in legends(records, columns) for line in ("", note)]  # a paragraph under the table
    return "\n".join(lines) + "\n"


DEVICE_COLUMNS = (*(_FIGURE_COLUMN[f] for f in ("backbone", "mode")), *(Column(h, h) for h in FIT_HEADERS))
