"""The terminal's tables at the widths people's terminals have: every
essential cell whole at 80 and 120 columns, nothing lost at any width, every
column in one table for --wide; chance-level accuracies marked there and in
the report. A file or a pipe, and the end of a real run:
tests/system/test_run_tables.py."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from records import RUN_ALL_BACKBONES as BACKBONES
from records import RUN_ALL_RECORDS as RUNS
from rich.cells import cell_len
from rich.console import Console
from tables import assert_one_wide_table as _assert_one_wide_table
from tables import key as _key

from tlbench import cli, stability
from tlbench.registry import MODES
from reporting import print_table, render_markdown

from tlbench.reports import columns
from tlbench.reports import rules as chance
from tlbench.results import TRIALS, RunContents


def _printed(records, width: int, **options) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, **options)
    print_table(RunContents(Path("20261203T000000Z-vm-cpu"), records=records, env={}, warnings=[]), console)
    return console.file.getvalue()


def _tables(text: str) -> list[dict[tuple, Counter]]:
    """The trial tables of printed output: per table, each row's words by
    (backbone, mode, batch, seed). A row starts with its backbone, or with
    its mode under a line naming the backbone; its wrapped cells go on lines
    that start with spaces."""
    tables, rows, group, key, titled = [], None, None, None, False
    for line in text.splitlines():
        words = line.split()
        if "tlbench run" in line:  # a trial table's title: the one before ended
            rows, titled = None, True
        elif line.startswith("─"):
            rows = {} if titled else None
            tables += [rows] if titled else []
            titled = False
        elif rows is None or not words:
            rows = None
        elif words[0] in BACKBONES and len(words) == 1:
            group = words[0]
        elif words[0] in BACKBONES or (line.startswith("  ") and words[0] in MODES and not line.startswith("   ")):
            grouped = words[0] not in BACKBONES
            key = (group, *words[:3]) if grouped else tuple(words[:4])
            rows[key] = Counter([group] if grouped else []) + Counter(words)
        elif line.startswith("   ") and key in rows:
            rows[key] += Counter(words)
        else:
            rows = None
    return tables


def _words(trial: dict, cols) -> Counter:
    """The words of `trial`'s cells, but for dashes: a column of nothing but
    dashes may be left out."""
    return Counter(word for column in cols for word in column.cell(trial).split() if word != columns.MISSING)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", RUNS)
def test_every_essential_cell_is_whole_in_the_first_table_and_no_cell_is_lost(name, width):
    trials = stability.judged(RUNS[name])
    text = _printed(RUNS[name], width)
    assert "…" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= width
    assert "mobilenet_v2_035_128" in text.split()  # whole, a word of its own

    every = columns.trial_columns(trials)
    essential = [c for c in every if c.header in columns.TRIAL_ESSENTIALS]
    # Where a narrow table splits a cell, its essential part (the median) is still whole.
    essential = [c.parts[0] if c.parts else c for c in essential]
    tables = _tables(text)
    first, *more = tables
    assert set(first) == {_key(t) for t in trials}, "every trial is a row of the first table"
    for trial in trials:
        row = first[_key(trial)]
        assert _words(trial, essential) <= row, (trial["trial_id"], row)
        # Every column is in some table: the words of every cell, over the rows of this trial.
        shown = sum((table[_key(trial)] for table in tables), Counter())
        assert _words(trial, every) <= shown, trial["trial_id"]
    assert all(set(table) == set(first) for table in more)


@pytest.mark.parametrize("name", RUNS)
def test_stability_and_chance_marks_fit_at_80_columns(name):
    trials = stability.judged(RUNS[name])
    text = _printed(RUNS[name], 80)
    first = _tables(text)[0]
    resnet = next(t for t in trials if t["unstable"])
    mobilenet = next(t for t in trials if t["backbone"] == BACKBONES[1] and t["status"] == "ok")
    assert "!" in first[_key(resnet)]
    assert "(chance)" in first[_key(mobilenet)]
    if name == "stand-ins, quick":
        assert "(smoke)" in first[_key(mobilenet)]
    assert chance.CHANCE_LEGEND.split(":")[0] in text and "guessing" in text


def test_wide_shows_every_column_in_a_narrow_terminal(tmp_path):
    trials = RUNS["pretrained"]
    run_dir = tmp_path / "20261203T000000Z-vm-cpu"
    run_dir.mkdir()
    (run_dir / TRIALS).write_text("".join(json.dumps(t) + "\n" for t in trials))
    for wide in (False, True):
        console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
        args = cli.build_parser().parse_args(["report", str(run_dir), *(["--wide"] if wide else [])])
        assert cli.cmd_report(args, [], console) == 0
        text = console.file.getvalue()
        if wide:
            _assert_one_wide_table(text, stability.judged(trials))
        else:
            assert max(cell_len(line) for line in text.splitlines()) <= 80


def test_the_report_marks_chance_level_accuracies_and_says_what_the_mark_means():
    trials = RUNS["pretrained"]
    report = render_markdown(RunContents(Path("run"), records=trials, env={}, warnings=[]))
    test_acc = next(c for c in columns.COLUMNS if c.header == "test acc")
    mobilenet = next(t for t in trials if t["backbone"] == BACKBONES[1] and t["status"] == "ok")
    resnet = next(t for t in trials if t["backbone"] == BACKBONES[0] and t["status"] == "ok")
    assert test_acc.cell(mobilenet) == "0.102 (chance)" and test_acc.cell(resnet) == "0.620"
    assert "| 0.102 (chance) |" in report and "| 0.620 |" in report
    assert "\n\n" + chance.CHANCE_LEGEND + "\n" in report
    assert "0.102 ± 0.000 (chance)" in report  # over seeds too
    html = columns.html_table(trials)
    assert "0.102 (chance)</td>" in html and f"<p>{chance.CHANCE_LEGEND}</p>" in html.replace("&#x27;", "'")
