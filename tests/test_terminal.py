"""The terminal's tables at the widths people's terminals have: every
essential cell whole at 80 and 120 columns, nothing lost at any width, every
column in one table for --wide, a file or a pipe; chance-level accuracies
marked there and in the report."""

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from tlbench import cli, record, results, stability
from tlbench.registry import MODES
from tlbench.reports import chance, columns
from tlbench.reports.report import render_markdown
from tlbench.reports.terminal import print_table
from tlbench.results import ENV, TRIALS, RunContents

BACKBONES = ("resnet_v2_50", "mobilenet_v2_035_128")
TEST_COUNTS = [13] * 8 + [12] * 2  # the digits' test split: 128 images, 10 classes
LOADED = "other processes took 48 % of the CPU while timed (> 15 %)"


def _timing(rate: float, windows: int) -> dict:
    return {
        "repeats": windows,
        "window_steps_min": 10,
        "images_per_sec_median": rate,
        "images_per_sec_q1": rate * 0.94,
        "images_per_sec_q3": rate * 1.03,
    }


def _trial(backbone, mode, batch, seed, *, weights, windows, status="ok") -> dict:
    """A record as a trial of `run --all` writes it: the fields the tables show."""
    name = f"{backbone}-{mode}-bs{batch}-digits-seed{seed}"
    fields = {
        "trial_id": name,
        "backbone": backbone,
        "mode": mode,
        "batch_size": batch,
        "dataset": "digits",
        "seed": seed,
        "weights": weights,
        "device": "CPU:AMD EPYC 7B13",
        "status": status,
        "seconds": 61.0 + batch,
        "num_classes": 10,
        "split_sizes": {"train": 256, "val": 128, "test": 128},
        "class_counts": {"train": [26] * 6 + [25] * 4, "val": TEST_COUNTS, "test": TEST_COUNTS},
    }
    if status != "ok":
        error = "ResourceExhaustedError: OOM when allocating tensor" if status == "oom" else "RuntimeError: x"
        return record.make(**fields, error=error)
    mobilenet = backbone.startswith("mobilenet")
    # MobileNet guesses (13 of 128 right: chance); ResNet learns.
    accuracy = 13 / 128 if mobilenet else 0.62 + 0.03 * MODES.index(mode) + 0.01 * seed
    train = (1234.5 if mode == "transfer" else 345.6) if mobilenet else 4.8 * batch / (1 + MODES.index(mode))
    return record.make(
        **fields,
        error=None,
        val_accuracy=accuracy,
        test_accuracy=accuracy,
        train_images_per_sec=train,
        infer_images_per_sec=train * 1.7,
        train_timing=_timing(train, windows),
        infer_timing=_timing(train * 1.7, windows),
        train_mfu=0.152 if mobilenet else 0.528,
        peak_memory_bytes=(40 if mobilenet else 600) * 2**20 * batch // 8 * (1 + MODES.index(mode)),
        activation_memory_bytes=12 * 2**20 * batch,
        predicted_activation_bytes=10 * 2**20 * batch,
        time_to_accuracy_seconds=25.0,
        **(
            {"unstable": {"train_images_per_sec": LOADED}}
            if (backbone, mode, batch) == (BACKBONES[0], "transfer", 8)
            else {}
        ),
    )


def run_all(*, weights: str, windows: int) -> list[dict]:
    """2 backbones x 4 modes x 2 batch sizes x 2 seeds: ResNet finetune at
    batch 16 out of memory, one MobileNet trial failed."""
    trials = []
    for backbone in BACKBONES:
        for mode in MODES:
            for batch in (8, 16):
                for seed in (0, 1):
                    status = "ok"
                    if (backbone, mode, batch) == (BACKBONES[0], "finetune", 16):
                        status = "oom"
                    elif (backbone, mode, batch, seed) == (BACKBONES[1], "last_stage", 8, 1):
                        status = "error"
                    trials.append(_trial(backbone, mode, batch, seed, weights=weights, windows=windows, status=status))
    return trials


# A quick run on stand-ins (smoke figures, chance-level MobileNet) and a
# measured one on pretrained weights: the widest cells either has.
RUNS = {
    "stand-ins, quick": run_all(weights="standin:random-init", windows=1),
    "pretrained": run_all(weights="tfhub:https://tfhub.dev/google/x/feature_vector/5", windows=3),
}


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


def _key(trial: dict) -> tuple:
    return trial["backbone"], trial["mode"], str(trial["batch_size"]), str(trial["seed"])


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
    assert chance.LEGEND.split(":")[0] in text and "guessing" in text


def test_a_file_or_a_pipe_gets_every_column_in_one_table(tmp_path):
    """`report` with its output in a pipe: the tables as one, each row on
    one line of its own, as wide as it takes."""
    trials = RUNS["stand-ins, quick"]
    run_dir = tmp_path / "20261203T000000Z-vm-cpu"
    run_dir.mkdir()
    (run_dir / ENV).write_text(json.dumps({"command": "python -m tlbench run --all --quick"}))
    (run_dir / TRIALS).write_text("".join(json.dumps(t) + "\n" for t in trials))
    done = subprocess.run(
        [sys.executable, "-m", "tlbench", "report", str(run_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    _assert_one_wide_table(done.stdout, stability.judged(trials))


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


def _assert_one_wide_table(text: str, trials: list[dict]) -> None:
    """The trials' table with every column, a row per line, no cell cut."""
    every = columns.trial_columns(trials)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("┃ backbone"))
    assert _cells(header, "┃") == [c.header for c in every]
    rows = [_cells(line, "│") for line in lines if line.startswith("│ ")]
    named = len([c for c in every if c.header in columns.TRIAL_KEYS])  # with the seed when there are several
    rows = {tuple(cells[:named]): cells for cells in rows if len(cells) == len(every)}
    for trial in trials:
        assert rows[_key(trial)[:named]] == [c.cell(trial) for c in every]
    assert "…" not in text


def _cells(line: str, rule: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip(rule).split(rule)]


def test_the_report_marks_chance_level_accuracies_and_says_what_the_mark_means():
    trials = RUNS["pretrained"]
    report = render_markdown(RunContents(Path("run"), records=trials, env={}, warnings=[]))
    test_acc = next(c for c in columns.COLUMNS if c.header == "test acc")
    mobilenet = next(t for t in trials if t["backbone"] == BACKBONES[1] and t["status"] == "ok")
    resnet = next(t for t in trials if t["backbone"] == BACKBONES[0] and t["status"] == "ok")
    assert test_acc.cell(mobilenet) == "0.102 (chance)" and test_acc.cell(resnet) == "0.620"
    assert "| 0.102 (chance) |" in report and "| 0.620 |" in report
    assert "\n\n" + chance.LEGEND + "\n" in report
    assert "0.102 ± 0.000 (chance)" in report  # over seeds too
    html = columns.html_table(trials)
    assert "0.102 (chance)</td>" in html and f"<p>{chance.LEGEND}</p>" in html.replace("&#x27;", "'")


def test_a_run_fits_its_tables_to_a_terminal_and_wide_prints_every_column(control, tmp_path):
    """The end of `run` in an 80-column terminal, with and without --wide
    (null trials on the session's Ray: the driver's part)."""
    import null_trials

    from tlbench.driver import runner
    from tlbench.driver.request import RunRequest

    workers = runner.Workers(trial=null_trials.quick_trial, prepare=null_trials.prepare_standin)
    request = RunRequest(dataset="digits", modes=("transfer", "finetune"), batch_sizes=(8,), quick=True)
    for wide in (False, True):
        console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
        settings = runner.Settings(out=str(tmp_path / f"wide-{wide}"), wide=wide)
        assert runner.start(request, settings, console, workers) == 0
        (run_dir,) = (tmp_path / f"wide-{wide}").iterdir()
        text = console.file.getvalue()
        tables = text[text.index(f"tlbench run {run_dir.name}") :]  # after the live view
        if wide:
            _assert_one_wide_table(tables, results.read_run(run_dir).records)
        else:
            assert max(cell_len(line) for line in tables.splitlines()) <= 80 and "…" not in tables
            assert "mobilenet_v2_035_128" in tables.split() and "┃" not in tables
