"""The Python API: `tlbench.run(...)` is the command line's `run`, and the
README's notebook example runs as written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tlbench
from tlbench import results
from tlbench.api import command_line
from tlbench.errors import UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_keywords_become_the_command_lines_options():
    argv = command_line(
        {
            "backbone": "mobilenet_v2_035_128",
            "mode": ["transfer", "finetune"],
            "batch_size": (8, 16),
            "quick": True,
            "xla": False,
            "train_size": None,
            "module": {"resnet_v2_50": "/m/resnet"},
            "seeds": 3,
        }
    )
    assert argv == [
        "--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "finetune", "--batch-size", "8", "16",
        "--quick", "--module", "resnet_v2_50=/m/resnet", "--seeds", "3",
    ]  # fmt: skip


def test_an_unknown_keyword_is_a_type_error_with_the_closest_option():
    with pytest.raises(TypeError, match="unknown option 'batchsize' \\(did you mean batch_size\\?\\)"):
        command_line({"batchsize": 8})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "between 1 and 4096, got 0"),
        ({"backbone": "resnet50"}, "did you mean 'resnet_v2_50'?"),
        ({}, "say what to run"),
        ({"all": True, "mode": "transfer"}, "--all runs the default grid"),
    ],
)
def test_a_bad_option_raises_the_line_the_command_prints(options, message, tmp_path):
    with pytest.raises(UsageError, match=re.escape(message)):
        tlbench.run(out=str(tmp_path), **options)
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_load_run_reads_a_run_folder_back(tmp_path):
    run_dir = tmp_path / "20261203T000000Z-h-cpu"
    run_dir.mkdir()
    (run_dir / results.ENV).write_text(json.dumps({"host": "h"}))
    for trial_id in ("a", "b"):
        record = {"trial_id": trial_id, "backbone": "resnet_v2_50", "mode": "transfer", "batch_size": 8}
        results.append_record(run_dir, {**record, "dataset": "digits", "status": "ok"})
    run = tlbench.load_run(run_dir)
    assert run.path == run_dir and [r["trial_id"] for r in run.records] == ["a", "b"]
    assert run.env == {"host": "h"} and run.exit_status is None
    with pytest.raises(UsageError, match="does not exist"):
        tlbench.load_run(tmp_path / "absent")


def _readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


def test_the_readmes_notebook_example_runs_as_written(tmp_path):
    """In a fresh process, as a notebook would: a real quick run on a real
    local Ray, its records returned and read back."""
    done = subprocess.run(
        [sys.executable, "-c", _readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "results").iterdir()
    assert f"{run_dir.name} exit status 0" in done.stdout
    trial_ids = [json.loads(line)["trial_id"] for line in (run_dir / results.TRIALS).read_text().splitlines()]
    assert len(trial_ids) == 2 and all(f"{trial_id} ok" in done.stdout for trial_id in trial_ids)
