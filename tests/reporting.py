"""The reports' entry points on a run or on bare records, for tests: each
analyses the run once (reports.analysis.analyse), as `report` and `compare` do."""

from __future__ import annotations

from pathlib import Path

from tlbench.reports import compare as comparing
from tlbench.reports import decide, document, plots, report, terminal
from tlbench.reports.analysis import RunAnalysis, analyse
from tlbench.results import RunContents


def analysed(run) -> RunAnalysis:
    """`run`: a RunContents, or records (then a run folder named `run` with no env.json)."""
    return analyse(run if isinstance(run, RunContents) else RunContents(Path("run"), records=list(run)))


def render_markdown(run) -> str:
    return report.to_markdown(document.build(analysed(run)))


def write_report(run) -> dict:
    return report.write_report(analysed(run))


def build(run) -> list:
    return document.build(analysed(run)).sections


def print_table(run, console, wide: bool = False) -> None:
    terminal.print_report(analysed(run), console, wide)


def print_comparison(run_a, run_b, thresholds, console) -> int:
    return terminal.print_comparison(analysed(run_a), analysed(run_b), thresholds, console)


def compare(records_a, records_b, thresholds=comparing.Thresholds()) -> list:
    return comparing.compare(analysed(records_a).configurations, analysed(records_b).configurations, thresholds)


def recommend(records):
    return analysed(records).recommendation


def choose(records, constraints):
    return decide.choose(analysed(records).configurations, constraints)


def ladders(records) -> list:
    return analysed(records).ladders


def figures(records) -> dict:
    return plots.figures(analysed(records))


def write_plots(records, folder: Path) -> dict:
    return plots.write_plots(analysed(records), folder)
