"""What `report`, `compare` and `list` print to the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tlbench import stability
from tlbench.reports.analysis import configurations
from tlbench.reports.columns import SMOKE_MARK, SPREAD_COLUMNS, UNSTABLE_MARK, rich_table
from tlbench.reports.compare import COMPARE_COLUMNS, Thresholds, compare
from tlbench.reports.decide import Choice, recommend
from tlbench.reports.ladder import LADDER_COLUMNS, ladders, table_rows
from tlbench.reports.ladder_verdict import summary, verdict
from tlbench.reports.report import describe
from tlbench.results import RunContents


def print_table(run: RunContents, console: Console) -> None:
    """A run's warnings, its trials (with their unstable and smoke figures),
    the spread over seeds, the ladder of trainable depth and the advice."""
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    records = stability.judged(run.records)
    console.print(rich_table(records, title=escape(f"tlbench run {run.run_dir.name}")))
    print_stability(records, console)
    configs = [c for c in configurations(records) if c.test_mean is not None]
    if any(c.n_seeds > 1 for c in configs):
        console.print(rich_table([c.row for c in configs], "Test accuracy over seeds", SPREAD_COLUMNS, ordered=True))
    found = ladders(records)
    compared = [ladder for ladder in found if ladder.comparable]
    if compared:
        console.print(rich_table(table_rows(found), "Does fine-tuning pay?", LADDER_COLUMNS, ordered=True))
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
        for other in choice.fitting[1:]:
            console.print(f"  also fits: {escape(describe(other))}")
    for config, reasons in choice.ruled_out:
        line = f"  ruled out: {config.name} ({config.weights.split(':')[0]}): {'; '.join(reasons)}"
        console.print(escape(line))


def print_comparison(run_a: RunContents, run_b: RunContents, thresholds: Thresholds, console: Console) -> int:
    """Each configuration's change from run A to run B; the number that regressed."""
    for label, run in (("A", run_a), ("B", run_b)):
        for warning in run.warnings:
            console.print(f"[yellow]warning (run {label}):[/] {escape(warning)}")
    changes = compare(run_a.records, run_b.records, thresholds)
    title = escape(f"A: {run_a.run_dir.name}  ->  B: {run_b.run_dir.name}")
    console.print(rich_table([c.row for c in changes], title, COMPARE_COLUMNS, ordered=True))
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
    regressed = [c for c in changes if c.regressions]
    if regressed:
        console.print(f"[red]{len(regressed)} regression(s)[/] of {len(changes)} configuration(s)")
    else:
        console.print(f"no regression in {len(changes)} configuration(s)")
    return len(regressed)


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
