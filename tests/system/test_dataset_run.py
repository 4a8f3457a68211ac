"""A dataset through the command and a run: an empty --dataset, TFDS not
installed, and what a run says first about the files it skipped and the
classes its budget starves (null trials on the session's Ray)."""

import json
import os

import pytest
from images import classes, undecodable_files

from tlbench import data, imagefolder
from tlbench.errors import UsageError


def test_tfds_without_tensorflow_datasets_installed_is_one_line_and_exit_2():
    """A Python where tensorflow_datasets can't be imported (None in
    sys.modules is Python's mark for that): the command says what to install."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['tensorflow_datasets'] = None\n"
        "from tlbench.cli import main\n"
        "sys.exit(main(['run', '--all', '--dataset', 'tfds:beans']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "needs tensorflow-datasets, which is not installed" in done.stderr


def test_an_empty_dataset_argument_is_refused_not_read_as_the_current_folder(run_in_subprocess):
    done = run_in_subprocess("run", "--all", "--quick", "--dataset", "")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("tlbench: error: --dataset is empty;") and done.stderr.count("\n") == 1
    with pytest.raises(UsageError, match="--dataset is empty"):
        data.open_dataset("")


def test_a_run_says_first_what_was_skipped_and_that_its_budget_starves_classes(control, tmp_path):
    import io

    import null_trials
    from rich.console import Console

    from tlbench import results
    from tlbench.driver import runner
    from tlbench.driver.request import RunRequest

    root = tmp_path / "twenty"
    classes(root, names=[f"class{i:02}" for i in range(20)])
    undecodable_files(root / "class00")
    os.mkfifo(root / "class01" / "pipe.png")
    out = io.StringIO()
    request = RunRequest(str(root), ("mobilenet_v2_035_128",), ("transfer",), (8,), quick=True)
    workers = runner.Workers(frozen=None, trial=null_trials.quick_trial, prepare=null_trials.prepare_standin)
    status = runner.start(request, runner.Settings(out=str(tmp_path / "runs")), Console(file=out, width=100), workers)
    assert status == 0
    lines = out.getvalue().splitlines()
    skipped = "4 file(s) of '{}' skipped: 3 not decodable by TensorFlow (class00/half.jpg, class00/one_bit.bmp, class00/tiff.jpg); 1 not a regular file (class01/pipe.png)"
    assert lines[0] == skipped.format(root)  # one line, however narrow the console
    starved = [i for i, line in enumerate(lines) if line.startswith("warning: the 'quick' budget trains on 16 images")]
    first_trial = next(i for i, line in enumerate(lines) if "trials to run" in line)
    assert len(starved) == 1 and starved[0] < first_trial and "4 of the 20 classes" in lines[starved[0]]
    (run_dir,) = (tmp_path / "runs").iterdir()
    dataset = json.loads((run_dir / results.ENV).read_text())["dataset"]
    assert dataset["skipped_files"] == 4 and dataset["skipped"] == {
        imagefolder.UNDECODABLE: 3,
        imagefolder.NOT_REGULAR: 1,
    }
    assert dataset["skipped_examples"][imagefolder.NOT_REGULAR] == ["class01/pipe.png"]
    assert dataset["budget_warning"] == lines[starved[0]].removeprefix("warning: ")
