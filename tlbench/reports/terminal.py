"""What `report`, `compare` and `list` print to the terminal (rich). Tables fit the console (`_fitted`): essential
columns first and whole, cells wrapped at spaces, never cut; `--wide`, a file or a pipe: every column in one table."""

from __future__ import annotations

from typing import Literal, NamedTuple

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from tlbench import stability
from tlbench.reports import document
from tlbench.reports.analysis import RunAnalysis
from tlbench.reports.columns import MISSING, SMOKE_MARK, UNSTABLE_MARK, Column, legends, rich_table, sort_key
from tlbench.reports.compare import COMPARE_COLUMNS, Thresholds, compare_runs
from tlbench.reports.decide import Choice

COMPARE_KEYS = ("backbone", "mode", "batch")
COMPARE_ESSENTIALS = (*COMPARE_KEYS, "verdict")


def _plain(text: str) -> str:
    return escape(text.replace("**", "").replace("`", ""))


def print_report(analysis: RunAnalysis, console: Console, wide: bool = False) -> None:
    """The report's terminal sections (document.TERMINAL_ORDER); `wide`: see the module."""
    for section in document.build(analysis).in_terminal():
        for block in section.shown_in(document.TERMINAL):
            if isinstance(block, document.Table):
                _print_tables(console, block, wide)
            elif isinstance(block, document.Note):
                console.print(f"[yellow]{escape(block.label)}[/] {_plain(block.text)}")
            elif isinstance(block, document.Bullets):
                console.print(*map(_plain, block.items), sep="\n")
            elif isinstance(block, document.Paragraph):
                console.print(_plain(block.text))


def _print_tables(console: Console, block: document.Table, wide: bool) -> None:
    title = None if block.title is None else escape(block.title)
    if wide:  # at its natural width: every column whole, lines maybe longer than the console
        table = rich_table(block.rows, title, block.columns, ordered=block.ordered)
        natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
        options = console.options.update_width(max(console.width, natural))
        console.print(Segments(console.render(table, options)), crop=False)
    else:
        console.print(*_fitted(block, title, console.width))
    for note in legends(block.rows, block.columns):
        console.print(escape(note))


_GAP = 2  # between the columns of a fitted table
# The narrowest layout names each backbone once, in a row of its own, its rows' modes indented under it.
_GROUP, _UNDER = "backbone", "mode"


class _Grid(NamedTuple):  # what a terminal table shows, as text
    headers: list
    justify: list[Literal["left", "right"]]
    whole: list  # columns whose cells never wrap: the names of a row
    rows: list  # (cells, style)


def _grid(records, columns, keys, grouped: bool) -> _Grid:
    headers = [c.header for c in columns]
    if grouped:
        at, under = headers.index(_GROUP), headers.index(_UNDER)
        headers[at] = f"{_GROUP}\n  {_UNDER}"
    rows: list[tuple[list[str], str | None]] = []
    group = None
    for record in records:
        cells = [c.cell(record) for c in columns]
        if grouped:
            if cells[at] != group:
                group = cells[at]
                rows.append(([group if i == at else "" for i in range(len(cells))], "bold"))
            cells[at] = f"  {cells[under]}"
        rows.append((cells, None if record.get("status", "ok") == "ok" else "red"))
    whole = [c.header in keys for c in columns]  # the backbone column too: grouped only when it is a key
    grid = _Grid(headers, ["right" if c.numeric else "left" for c in columns], whole, rows)
    for values in (grid.headers, grid.justify, grid.whole, *(cells for cells, _ in rows)) if grouped else ():
        del values[under]  # the modes, indented under their backbone
    return grid


def _widths(grid: _Grid, width: int, natural: bool) -> list[int] | None:
    """Widths that fit the grid in `width`, cells wrapped at spaces (not when `natural`), never cut; else None."""

    def spans(texts) -> tuple[int, int]:
        """The least width cutting no word of `texts`, and the one-line width, in cells (as rich measures Text)."""
        return (
            max((cell_len(word) for text in texts for word in text.split()), default=0),
            max((cell_len(line) for text in texts for line in text.splitlines()), default=0),
        )

    least, one_line, full = [], [], []
    for i, header in enumerate(grid.headers):
        (cell_word, cell_line), (header_word, header_line) = spans([row[i] for row, _ in grid.rows]), spans([header])
        one_line.append(max(cell_line, header_word))  # a header may wrap, above cells that don't
        least.append(one_line[-1] if grid.whole[i] else max(cell_word, header_word))
        full.append(max(one_line[-1], header_line))
    widths = list(one_line if natural else least)
    spare = width - _GAP * (len(widths) - 1) - sum(widths)
    if spare < 0:
        return None
    for goal in (one_line, full):  # first cells on one line, then headers on one line
        needs = sorted(range(len(widths)), key=lambda i: goal[i] - widths[i])  # the columns that need least first
        for whole in (True, False):  # widths that make a column one line shorter, then what is left
            for i in needs:
                need = max(0, goal[i] - widths[i])
                grow = need if need <= spare else 0 if whole else spare
                widths[i] += grow
                spare -= grow
    return widths


def _table(grid: _Grid, widths: list[int] | None, title: str | None) -> Table:
    # Compact: no rules between columns, which stand _GAP spaces apart; a line under the header.
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for i, header in enumerate(grid.headers):
        width = None if widths is None else widths[i]
        table.add_column(header, justify=grid.justify[i], width=width, no_wrap=grid.whole[i], overflow="fold")
    for cells, style in grid.rows:
        table.add_row(*map(Text, cells), style=style)  # Text, not markup: "[...]" in a run file stays as it is
    return table


def _fitted(block: document.Table, title: str | None, width: int) -> list[Table]:
    """The block's rows in tables that fit `width` (module doc). Layouts tried, most readable first: cells on one line,
    then wrapped; whole columns, then split into `parts` (the essential one first), then backbones named once."""
    records = list(block.rows) if block.ordered else sorted(block.rows, key=sort_key)
    keys, essential = block.keys, block.essentials
    can_group = {_GROUP, _UNDER} <= {c.header for c in block.columns} & set(keys) & set(essential)

    def fits(columns, grouped, natural) -> list[int] | None:
        return _widths(_grid(records, columns, keys, grouped), width, natural)

    layouts = []  # (the first table's columns, every column in order, grouped), narrowest last
    for split in (False, True):
        first = [c.parts[0] if split and c.parts else c for c in block.columns if c.header in essential]
        pieces = [p for c in block.columns for p in (c.parts if split and c.parts and c.header in essential else (c,))]
        # a column of dashes says nothing: left out where room is short
        order = [p for p in pieces if p in first or any(p.cell(r) != MISSING for r in records)]
        layouts += [(first, order, grouped) for grouped in ((False, True) if split and can_group else (False,))]
    natural, (main, order, grouped) = next(
        ((n, layout) for n in (True, False) for layout in layouts if fits(layout[0], layout[2], n) is not None),
        (None, layouts[-1]),  # nothing fits: the narrowest layout, squeezed
    )
    for c in order if natural else ():  # beside the essentials, what fits at its natural width
        if c not in main and fits(trial := sorted([*main, c], key=order.index), grouped, True) is not None:
            main = trial
    tables = [_table(_grid(records, main, keys, grouped), fits(main, grouped, natural), title)]
    key_columns, rest = [c for c in main if c.header in keys], [c for c in order if c not in main]
    more = f"{title}, more columns" if title else None
    while rest:  # the columns left over, in tables below that repeat the key columns
        chosen: list[Column] = []
        for c in rest:
            if fits([*key_columns, *chosen, c], grouped, True) is not None:
                chosen.append(c)
        chosen = chosen or rest[:1]  # too wide for one line: on its own, wrapped
        widths = fits(columns := [*key_columns, *chosen], grouped, True) or fits(columns, grouped, False)
        tables.append(_table(_grid(records, columns, keys, grouped), widths, more))
        rest = [c for c in rest if c not in chosen]
    return tables


def print_choice(choice: Choice, console: Console) -> None:
    """The best configuration under the constraints, and why the others are out."""
    console.print(f"constraints: {choice.constraints.summary_line()}")
    if choice.best is None:
        console.print("[red]no configuration fits[/]")
    else:
        console.print(f"[green]best that fits:[/] {escape(choice.best.summary_line())}")
        console.print(f"  chosen as {escape(choice.basis)}")
        for other in choice.fitting[1:]:
            console.print(f"  also fits: {escape(other.summary_line())}")
    for config, reasons in choice.ruled_out:
        console.print(escape(f"  ruled out: {config.name} ({config.weights.split(':')[0]}): {'; '.join(reasons)}"))


def print_comparison(a: RunAnalysis, b: RunAnalysis, thresholds: Thresholds, console: Console) -> int:
    """Each configuration's change from run A to B; the number that regressed; a UsageError if the runs share none."""
    comparison = compare_runs(a, b, thresholds)
    changes = comparison.changes
    lines = [f"[yellow]warning (run {x}):[/] {escape(w)}" for x, run in (("A", a), ("B", b)) for w in run.run.warnings]
    lines += [f"[bold red]warning:[/] {escape(w)}" for w in comparison.warnings]
    for line in lines + [f"note: {escape(note)}" for note in comparison.notes]:
        console.print(line)
    rows, title = [c.row for c in changes], f"A: {a.run.run_dir.name}  ->  B: {b.run.run_dir.name}"
    table = document.Table(rows, COMPARE_COLUMNS, True, title, keys=COMPARE_KEYS, essentials=COMPARE_ESSENTIALS)
    _print_tables(console, table, False)
    for c in changes:
        for figure, why in c.why_unstable.items():
            console.print(f"[yellow]unstable:[/] {escape(c.name)}: {stability.FIGURE_NAMES[figure]}: {escape(why)}")
    if unstable := sum(1 for c in changes if c.unstable):
        console.print(
            f"[yellow]warning:[/] {unstable} configuration(s) with unstable images/s (marked "
            f"{UNSTABLE_MARK.strip()}): their changes are not judged; {escape(stability.ADVICE)}"
        )
    if any(c.row["timing_quality"] == stability.SMOKE for c in changes):
        console.print(f"{escape(SMOKE_MARK.strip())}: {escape(stability.SMOKE_NOTE)}; their changes are not judged")
    for label, names in (("A", comparison.only_a), ("B", comparison.only_b)):
        if names:
            console.print(f"[yellow]only in run {label}[/], not compared: {escape(', '.join(names))}")
    regressed = sum(1 for c in changes if c.regressions)
    one_run = len(comparison.only_a) + len(comparison.only_b)
    apart = f"; {one_run} in one run only, not compared" if one_run else ""
    said = f"[red]{regressed} regression(s)[/] of" if regressed else "no regression in"
    console.print(f"{said} {len(changes)} configuration(s) in both runs{apart}")
    return regressed
