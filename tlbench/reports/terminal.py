"""What `report`, `compare` and `list` print to the terminal (rich).

A table is fitted to the console's width (`terminal_tables`): its essential
columns first and whole (cells wrap at spaces, never cut), the others beside
them where they fit, else in more tables below that repeat the columns that
name a row. `--wide`, a file or a pipe get every column in one table at its
natural width instead (`print_wide`)."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from tlbench import stability
from tlbench.reports.analysis import configurations
from tlbench.reports.columns import (
    MISSING,
    SMOKE_MARK,
    SPREAD_COLUMNS,
    TRIAL_ESSENTIALS,
    TRIAL_KEYS,
    UNSTABLE_MARK,
    legends,
    rich_table,
    sort_key,
    trial_columns,
)
from tlbench.reports.compare import COMPARE_COLUMNS, Thresholds, compare_runs
from tlbench.reports.decide import Choice, recommend
from tlbench.reports.ladder import LADDER_COLUMNS, ladders, table_rows
from tlbench.reports.ladder_verdict import summary, verdict
from tlbench.reports.report import describe
from tlbench.results import RunContents

# Each table's columns that name a row, and those shown at any width.
SPREAD_KEYS = ("backbone", "mode", "batch")
SPREAD_ESSENTIALS = (*SPREAD_KEYS, "seeds", "test acc mean ± std", "vs best")
LADDER_KEYS = ("backbone", "batch", "mode")
LADDER_ESSENTIALS = (*LADDER_KEYS, "val acc mean ± std", "step mem/img MiB", "train img/s")


def print_table(run: RunContents, console: Console, wide: bool = False) -> None:
    """A run's warnings, its trials (with their unstable and smoke figures),
    the spread over seeds, the ladder of trainable depth and the advice.
    Tables fit the console (`terminal_tables`); `wide`: every column
    of each in one table, however wide (for --wide, a file or a pipe)."""
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    records = stability.judged(run.records)
    title = escape(f"tlbench run {run.run_dir.name}")
    _print_tables(console, records, title, trial_columns(records), wide, TRIAL_KEYS, TRIAL_ESSENTIALS, ordered=False)
    print_stability(records, console)
    configs = [c for c in configurations(records) if c.test_mean is not None]
    if any(c.n_seeds > 1 for c in configs):
        rows = [c.row for c in configs]
        _print_tables(console, rows, "Test accuracy over seeds", SPREAD_COLUMNS, wide, SPREAD_KEYS, SPREAD_ESSENTIALS)
    found = ladders(records)
    compared = [ladder for ladder in found if ladder.comparable]
    if compared:
        rows = table_rows(found)
        _print_tables(console, rows, "Does fine-tuning pay?", LADDER_COLUMNS, wide, LADDER_KEYS, LADDER_ESSENTIALS)
        for ladder in compared:
            console.print(escape(verdict(ladder).replace("**", "")))
    single = summary(found)
    if single:
        console.print(escape(single.replace("`", "")))
    advice = recommend(records)
    if advice is not None:
        for sentence in advice.advice:
            console.print(escape(sentence))
        for warning in advice.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")


def _print_tables(console: Console, rows, title, columns, wide: bool, keys, essential, ordered=True) -> None:
    """One table (`wide`) or those that fit the console, then what its marks
    mean. `ordered`: keep the rows' order (trial records sort by sort_key)."""
    if wide:
        print_wide(console, rich_table(rows, title, columns, ordered=ordered))
    else:
        for table in terminal_tables(rows, title, columns, console, keys=keys, essential=essential, ordered=ordered):
            console.print(table)
    for note in legends(rows, columns):
        console.print(escape(note))


def print_wide(console, table: Table) -> None:
    """`table` at its natural width, however narrow the console: every column
    whole, for `--wide`, a file or a pipe (lines may be longer than the console)."""
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    options = console.options.update_width(max(console.width, natural))
    console.print(Segments(console.render(table, options)), crop=False)


# A table fitted to a terminal is compact: no rules between columns, which
# stand two spaces apart; a line under the header.
_COMPACT = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True}
_GAP = 2
# The narrowest layout names each backbone once, in a row of its own, with
# the modes of its rows indented under it: one column for two.
_GROUP, _UNDER = "backbone", "mode"


@dataclass(frozen=True)
class _Grid:
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
    rows, group = [], None
    for record in records:
        cells = [c.cell(record) for c in columns]
        style = None if record.get("status", "ok") == "ok" else "red"
        if grouped:
            if cells[at] != group:
                group = cells[at]
                rows.append(([group if i == at else "" for i in range(len(cells))], "bold"))
            cells[at] = f"  {cells[under]}"
        rows.append((cells, style))
    kept = [i for i in range(len(columns)) if not (grouped and i == under)]
    return _Grid(
        [headers[i] for i in kept],
        [columns[i].numeric for i in kept],
        [columns[i].header in keys or (grouped and i == at) for i in kept],
        [([cells[i] for i in kept], style) for cells, style in rows],
    )


def _spans(texts) -> tuple[int, int]:
    """The longest word and the longest line of `texts`, in terminal cells:
    the narrowest a column of them can be without cutting one, and the width
    that keeps each on one line (as rich measures Text)."""
    return (
        max((cell_len(word) for text in texts for word in text.split()), default=0),
        max((cell_len(line) for text in texts for line in text.splitlines()), default=0),
    )


def _widths(grid: _Grid, width: int, natural: bool) -> list[int] | None:
    """Each column's width so that the grid fits in `width`, its cells wrapped
    at spaces at most (none when `natural`), never cut; None if it can't."""
    least, one_line, full = [], [], []
    for i, header in enumerate(grid.headers):
        cell_word, cell_line = _spans([cells[i] for cells, _ in grid.rows])
        header_word, header_line = _spans([header])
        one_line.append(max(cell_line, header_word))  # a header may wrap, above cells that don't
        least.append(one_line[-1] if grid.whole[i] else max(cell_word, header_word))
        full.append(max(one_line[-1], header_line))
    spare = width - _GAP * (len(least) - 1) - sum(one_line if natural else least)
    if spare < 0:
        return None
    widths = list(one_line if natural else least)
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
    table = Table(title=title, **_COMPACT)
    for i, header in enumerate(grid.headers):
        width = None if widths is None else widths[i]
        justify = "right" if grid.numeric[i] else "left"
        table.add_column(header, justify=justify, width=width, no_wrap=grid.whole[i], overflow="fold")
    for cells, style in grid.rows:
        table.add_row(*map(Text, cells), style=style)  # Text, not markup: "[...]" in a run file stays as it is
    return table


def terminal_tables(records, title, columns, console, *, keys, essential, ordered=False) -> list[Table]:
    """`records` in tables that fit the console's width: the `essential`
    columns (by header) in the first, with the others that fit beside them at
    their natural width; the rest in tables below, each repeating the `keys`
    columns. Cells wrap at spaces where they must, and are never cut; a
    column with `parts` gives its essential part first where it can't fit
    whole. Layouts tried, most readable first: cells on one line before
    wrapped ones; whole columns, then split into parts, then backbones named
    once above their rows."""
    records = list(records) if ordered else sorted(records, key=sort_key)
    width = console.width
    grouped_ok = {_GROUP, _UNDER} <= {c.header for c in columns} & set(keys) & set(essential)

    def fits(chosen, grouped, natural):
        return _widths(_grid(records, chosen, keys, grouped), width, natural)

    def empty(column):  # a column of dashes says nothing: left out where room is short
        return all(column.cell(r) == MISSING for r in records)

    layouts = []
    for split in (False, True):
        first, order = [], []
        for c in columns:
            pieces = c.parts if split and c.parts and c.header in essential else (c,)
            order += [p for p in pieces if (c.header in essential and p is pieces[0]) or not empty(p)]
            first += pieces[:1] if c.header in essential else []
        for grouped in (False, True) if split and grouped_ok else (False,):
            layouts.append((first, order, grouped))
    for natural in (True, False):
        for first, order, grouped in layouts:
            if fits(first, grouped, natural) is None:
                continue
            main = list(first)
            for c in order if natural else ():  # beside the essentials, what fits at its natural width
                trial = sorted([*main, c], key=order.index)
                if c not in main and fits(trial, grouped, True) is not None:
                    main = trial
            rest = [c for c in order if c not in main]
            return [_table(_grid(records, main, keys, grouped), fits(main, grouped, natural), title)] + _more(
                records, title, [c for c in main if c.header in keys], rest, grouped, fits
            )
    first, order, grouped = layouts[-1]  # nothing fits: the narrowest layout, squeezed
    rest = [c for c in order if c not in first]
    squeezed = _table(_grid(records, first, keys, grouped), None, title)
    return [squeezed] + _more(records, title, [c for c in first if c.header in keys], rest, grouped, fits)


def _more(records, title, key_columns, rest, grouped, fits) -> list[Table]:
    """The columns left over, in tables below that repeat the key columns."""
    tables, title = [], f"{title}, more columns" if title else None
    while rest:
        chosen = []
        for c in rest:
            if fits([*key_columns, *chosen, c], grouped, True) is not None:
                chosen.append(c)
        chosen = chosen or rest[:1]  # too wide for one line: on its own, wrapped
        columns = [*key_columns, *chosen]
        widths = fits(columns, grouped, True) or fits(columns, grouped, False)
        tables.append(_table(_grid(records, columns, [c.header for c in key_columns], grouped), widths, title))
        rest = [c for c in rest if c not in chosen]
    return tables


def print_stability(records, console: Console) -> None:
    """Why each figure marked unstable is, what to do; what a smoke figure is."""
    lines = stability.unstable_lines(records)
    for line in lines:
        console.print(f"[yellow]unstable:[/] {escape(line.replace('`', ''))}")
    if lines:
        console.print(f"[yellow]{UNSTABLE_MARK.strip()}[/] unstable: {escape(stability.ADVICE)}")
    if stability.smoke_trials(records):
        console.print(f"{escape(SMOKE_MARK.strip())}: {escape(stability.SMOKE_NOTE)}")


def print_choice(choice: Choice, console: Console) -> None:
    """The best configuration under the constraints, and why the others are out."""
    console.print(f"constraints: {choice.constraints.describe()}")
    if choice.best is None:
        console.print("[red]no configuration fits[/]")
    else:
        console.print(f"[green]best that fits:[/] {escape(describe(choice.best))}")
        console.print(f"  chosen as {escape(choice.basis)}")
        for other in choice.fitting[1:]:
            console.print(f"  also fits: {escape(describe(other))}")
    for config, reasons in choice.ruled_out:
        line = f"  ruled out: {config.name} ({config.weights.split(':')[0]}): {'; '.join(reasons)}"
        console.print(escape(line))


def print_comparison(run_a: RunContents, run_b: RunContents, thresholds: Thresholds, console: Console) -> int:
    """Each configuration's change from run A to run B; the number that regressed.
    Setups that differ are said before the table, configurations of one run
    only after it; a UsageError when the runs have nothing in common."""
    comparison = compare_runs(run_a, run_b, thresholds)
    changes = comparison.changes
    for label, run in (("A", run_a), ("B", run_b)):
        for warning in run.warnings:
            console.print(f"[yellow]warning (run {label}):[/] {escape(warning)}")
    for warning in comparison.warnings:
        console.print(f"[bold red]warning:[/] {escape(warning)}")
    for note in comparison.notes:
        console.print(f"note: {escape(note)}")
    title = escape(f"A: {run_a.run_dir.name}  ->  B: {run_b.run_dir.name}")
    _print_tables(console, [c.row for c in changes], title, COMPARE_COLUMNS, False, COMPARE_KEYS, COMPARE_ESSENTIALS)
    for change in changes:
        for figure, why in change.why_unstable.items():
            name = f"{change.backbone} {change.mode} batch {change.batch_size}"
            console.print(f"[yellow]unstable:[/] {escape(name)}: {stability.FIGURE_NAMES[figure]}: {escape(why)}")
    unstable = [c for c in changes if c.unstable]
    if unstable:
        console.print(
            f"[yellow]warning:[/] {len(unstable)} configuration(s) with unstable images/s (marked "
            f"{UNSTABLE_MARK.strip()}): their changes are not judged; {escape(stability.ADVICE)}"
        )
    if any(c.row["timing_quality"] == stability.SMOKE for c in changes):
        console.print(f"{escape(SMOKE_MARK.strip())}: {escape(stability.SMOKE_NOTE)}; their changes are not judged")
    for label, names in (("A", comparison.only_a), ("B", comparison.only_b)):
        if names:
            console.print(f"[yellow]only in run {label}[/], not compared: {escape(', '.join(names))}")
    regressed = [c for c in changes if c.regressions]
    one_run = len(comparison.only_a) + len(comparison.only_b)
    apart = f"; {one_run} in one run only, not compared" if one_run else ""
    if regressed:
        console.print(f"[red]{len(regressed)} regression(s)[/] of {len(changes)} configuration(s) in both runs{apart}")
    else:
        console.print(f"no regression in {len(changes)} configuration(s) in both runs{apart}")
    return len(regressed)


# compare's table fitted like the others: which configuration, and its verdict, first.
COMPARE_KEYS = ("backbone", "mode", "batch")
COMPARE_ESSENTIALS = (*COMPARE_KEYS, "verdict")


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
