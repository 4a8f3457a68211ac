"""The trials' tables where no terminal sets their width: `report` into a
pipe (the command in a process of its own), and the end of a real `run` in
an 80-column terminal, with and without --wide (null trials on the session's
Ray: the driver's part)."""

import io
import json
import subprocess
import sys

from records import RUN_ALL_RECORDS
from rich.cells import cell_len
from rich.console import Console
from tables import assert_one_wide_table

from tlbench import results, stability
from tlbench.results import ENV, TRIALS


def test_a_file_or_a_pipe_gets_every_column_in_one_table(tmp_path):
    """`report` with its output in a pipe: the tables as one, each row on
    one line of its own, as wide as it takes."""
    trials = RUN_ALL_RECORDS["stand-ins, quick"]
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
    assert_one_wide_table(done.stdout, stability.judged(trials))


def test_a_run_fits_its_tables_to_a_terminal_and_wide_prints_every_column(control, tmp_path):
    """The end of `run` in an 80-column terminal, with and without --wide
    (null trials on the session's Ray: the driver's part)."""
    import null_trials

    from tlbench.driver import runner
    from tlbench.driver.request import RunRequest

    workers = runner.Workers(frozen=None, trial=null_trials.quick_trial, prepare=null_trials.prepare_standin)
    request = RunRequest(dataset="digits", modes=("transfer", "finetune"), batch_sizes=(8,), quick=True)
    for wide in (False, True):
        console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
        settings = runner.Settings(out=str(tmp_path / f"wide-{wide}"), wide=wide)
        assert runner.start(request, settings, console, workers) == 0
        (run_dir,) = (tmp_path / f"wide-{wide}").iterdir()
        text = console.file.getvalue()
        tables = text[text.index(f"tlbench run {run_dir.name}") :]  # after the live view
        if wide:
            assert_one_wide_table(tables, results.read_run(run_dir).records)
        else:
            assert max(cell_len(line) for line in tables.splitlines()) <= 80 and "…" not in tables
            assert "mobilenet_v2_035_128" in tables.split() and "┃" not in tables
