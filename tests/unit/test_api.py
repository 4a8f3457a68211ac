"""The Python API: `tlbench.run(...)` is the command line's `run`, refused
options raise the line the command prints, `load_run` reads a run back. The
README's notebook example, run as written: tests/system/test_readme_example.py."""

import json
import re

import pytest

import tlbench
from tlbench import results
from tlbench.api import command_line
from tlbench.errors import UsageError


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


def test_an_unknown_keyword_is_a_usage_error_with_the_closest_option_if_any():
    with pytest.raises(UsageError, match="no option 'batchsize'; did you mean batch_size\\? options: all, "):
        command_line({"batchsize": 8})
    with pytest.raises(UsageError, match="no option 'bogus'; options: all, backbone, ") as refused:
        tlbench.run(bogus=1)
    assert "did you mean" not in str(refused.value) and "help" not in str(refused.value)


@pytest.mark.parametrize("path", ["", "  ", None, 3])
def test_load_run_refuses_what_is_no_path(path):
    with pytest.raises(UsageError, match="needs a run folder's path"):
        tlbench.load_run(path)


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
