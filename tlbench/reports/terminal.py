"""What `report`, `compare` and `list` print to the terminal (rich).

A table is fitted to the console's width (`_fitted`): its essential columns first and whole (cells wrap at spaces,
never cut), the others beside them where they fit, else in more tables below that repeat the columns that name a row.
`--wide`, a file or a pipe get every column in one table at its natural width instead, however narrow the console."""

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

# compare's table fitted like the others: which configuration, and its verdict, first.
COMPARE_KEYS = ("backbone", "mode", "batch")
COMPARE_ESSENTIALS = (*COMPARE_KEYS, "verdict")


def _plain(text: str) -> str:
    """A paragraph's Markdown as a terminal shows it: no `code` or **bold** marks."""
    return escape(text.replace("**", "").replace("`", ""))


def print_report(analysis: RunAnalysis, console: Console, wide: bool = False) -> None:
    """The report's terminal sections (document.TERMINAL_ORDER): the run's warnings, its trials (with their unstable
    and smoke figures), the spread over seeds, the ladder of trainable depth and the advice. `wide`: see the module."""
    for section in document.build(analysis).in_terminal():
        for block in section.shown_in(document.TERMINAL):
            if isinstance(block, document.Table):
                _print_tables(console, block, wide)
            elif isinstance(block, document.Note):
                console.print(f"[yellow]{escape(block.label)}[/] {_plain(block.text)}")
            elif isinstance(block, document.Bullets):
                for item in block.items:
                    console.print(_plain(item))
            elif isinstance(block, document.Paragraph):
                console.print(_plain(block.text))


def _print_tables(console: Console, block: document.Table, wide: bool) -> None:
    """One table (`wide`) or those that fit the console, then what its marks mean."""
    title = None if block.title is None else escape(block.title)
    if wide:  # at its natural width: every column whole, lines maybe longer than the console
        table = rich_table(block.rows, title, block.columns, ordered=block.ordered)
        natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
        options = console.options.update_width(max(console.width, natural))
        console.print(Segments(console.render(table, options)), crop=False)
    else:
        for table in _fitted(block, title, console.width):
            console.print(table)
    for note in legends(block.rows, block.columns):
        console.print(escape(note))


_GAP = 2  # between the columns of a fitted table
# The narrowest layout names each backbone once, in a row of its own, its rows' modes indented under it.
_GROUP, _UNDER = "backbone", "mode"


class _Grid(NamedTuple):
    """What a terminal table shows, as text: headers, then rows of cells."""

    headers: list
    numeric: list
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
    kept = [i for i in range(len(columns)) if not (grouped and i == under)]
    return _Grid(
        [headers[i] for i in kept],
        [columns[i].numeric for i in kept],
        [columns[i].header in keys for i in kept],  # the backbone column too: grouped only when it is a key
        [([cells[i] for i in kept], style) for cells, style in rows],
    )


def _spans(texts) -> tuple[int, int]:
    """The longest word and the longest line of `texts`, in terminal cells: the narrowest a column of them can be
    without cutting one, and the width that keeps each on one line (as rich measures Text)."""
    return (
        max((cell_len(word) for text in texts for word in text.split()), default=0),
        max((cell_len(line) for text in texts for line in text.splitlines()), default=0),
    )


def _widths(grid: _Grid, width: int, natural: bool) -> list[int] | None:
    """Each column's width so that the grid fits in `width`, its cells wrapped at spaces at most (none when
    `natural`), never cut; None if it can't."""
    least, one_line, full = [], [], []
    for i, header in enumerate(grid.headers):
        cell_word, cell_line = _spans([cells[i] for cells, _ in grid.rows])
        header_word, header_line = _spans([header])
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
        justify: Literal["left", "right"] = "right" if grid.numeric[i] else "left"
        table.add_column(header, justify=justify, width=width, no_wrap=grid.whole[i], overflow="fold")
    for cells, style in grid.rows:
        table.add_row(*map(Text, cells), style=style)  # Text, not markup: "[...]" in a run file stays as it is
    return table


def _fitted(block: document.Table, title: str | None, width: int) -> list[Table]:
    """The block's rows in tables that fit `width` (see the module's doc). Layouts tried, most readable first: cells
    on one line before wrapped ones; whole columns, then split into `parts` (the essential part in the first table),
    then backbones named once above their rows."""
    records = list(block.rows) if block.ordered else sorted(block.rows, key=sort_key)
    keys, essential = block.keys, block.essentials
    can_group = {_GROUP, _UNDER} <= {c.header for c in block.columns} & set(keys) & set(essential)

    def fits(columns, grouped, natural) -> list[int] | None:
        return _widths(_grid(records, columns, keys, grouped), width, natural)

    def empty(column):  # a column of dashes says nothing: left out where room is short
        return all(column.cell(r) == MISSING for r in records)

    layouts = []  # (the first table's columns, every column in order, grouped), narrowest last
    for split in (False, True):
        first: list[Column] = []
        order: list[Column] = []
        for c in block.columns:
            pieces = c.parts if split and c.parts and c.header in essential else (c,)
            order += [p for p in pieces if (c.header in essential and p is pieces[0]) or not empty(p)]
            first += pieces[:1] if c.header in essential else []
        layouts += [(first, order, grouped) for grouped in ((False, True) if split and can_group else (False,))]
    natural, (first, order, grouped) = next(
        ((n, layout) for n in (True, False) for layout in layouts if fits(layout[0], layout[2], n) is not None),
        (None, layouts[-1]),  # nothing fits: the narrowest layout, squeezed
    )
    main = list(first)
    for c in order if natural else ():  # beside the essentials, what fits at its natural width
        trial = sorted([*main, c], key=order.index)
        if c not in main and fits(trial, grouped, True) is not None:
            main = trial
    widths = None if natural is None else fits(main, grouped, natural)
    tables = [_table(_grid(records, main, keys, grouped), widths, title)]
    key_columns, rest = [c for c in main if c.header in keys], [c for c in order if c not in main]
    more = f"{title}, more columns" if title else None
    while rest:  # the columns left over, in tables below that repeat the key columns
        chosen: list[Column] = []
        for c in rest:
            if fits([*key_columns, *chosen, c], grouped, True) is not None:
                chosen.append(c)
        chosen = chosen or rest[:1]  # too wide for one line: on its own, wrapped
        columns = [*key_columns, *chosen]
        widths = fits(columns, grouped, True) or fits(columns, grouped, False)
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
    """Each configuration's change from run A to run B; the number that regressed. Setups that differ are said
    before the table, configurations of one run only after it; a UsageError when the runs have nothing in common."""
    comparison = compare_runs(a, b, thresholds)
    changes = comparison.changes
    lines = [f"[yellow]warning (run {x}):[/] {escape(w)}" for x, run in (("A", a), ("B", b)) for w in run.run.warnings]
    lines += [f"[bold red]warning:[/] {escape(w)}" for w in comparison.warnings]
    for line in lines + [f"note: {escape(note)}" for note in comparison.notes]:
        console.print(line)
    title = f"A: {a.run.run_dir.name}  ->  B: {b.run.run_dir.name}"
    rows = [c.row for c in changes]
    table = document.Table(rows, COMPARE_COLUMNS, True, title, keys=COMPARE_KEYS, essentials=COMPARE_ESSENTIALS)
    _print_tables(console, table, False)
    for change in changes:
        for figure, why in change.why_unstable.items():
            name = change.name
            console.print(f"[yellow]unstable:[/] {escape(name)}: {stability.FIGURE_NAMES[figure]}: {escape(why)}")
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


def print_backbones(backbones, flops: dict, problem: str | None, console: Console) -> None:
    """`list`'s table of backbones, with FLOPs per image where counted."""
    table = Table(title="backbones (TF Hub image feature vectors)")
    for header in ("name", "input", "features", "GFLOPs/image", "default grid", "stand-in"):
        table.add_column(header, no_wrap=True, justify="right" if header.startswith("GFLOPs") else "left")
    table.add_column("TF Hub handle", overflow="fold")
    for b in backbones:
        gflops = f"{flops[b.name] / 1e9:.3f}" if flops.get(b.name) else "?"
        size = f"{b.image_size}x{b.image_size}"
        table.add_row(b.name, size, str(b.feature_dim), gflops, "yes" if b.in_default_grid else "", b.standin, b.handle)
    console.print(table)
    console.print(
        "[dim]GFLOPs/image: one forward pass at the input size, counted from the architecture's graph "
        "(a multiply-add is 2 FLOPs)[/]"
    )
    if problem:
        console.print(f"[yellow]FLOPs not counted: {escape(problem)}[/]")
