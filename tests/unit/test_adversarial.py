"""The adversarial table: what careless or hostile users tried on tlbench, one
row each, and what tlbench does about it.

`COMMANDS`: the real command (`cli.main`, in this process: the driver never
imports TensorFlow, and `run_in_subprocess` where a row needs a fresh one)
on what the row's placeholders build. Exit status 2 or 3: exactly one line on
stderr, `tlbench: error: ` with the row's words. Any other status: the words
on stdout. Never a traceback.

`FOLDER` (tests/worker/test_adversarial_folder.py): files an image folder
may hold that a trial can't read, each skipped and counted with its reason,
in one folder checked in a process of its own (a check that opened the FIFO
would block forever).

Faults in the middle of a running grid need Ray and a grid of null trials
and have tests of their own, each asserting that no finished record is lost
or duplicated:
- Ctrl-C twice, then resume: `system/test_runner.py::test_a_run_interrupted_twice_resumes_and_records_every_trial_exactly_once`
- SIGTERM, then resume: `system/test_runner.py::test_sigterm_stops_a_run_as_ctrl_c_does_and_its_resume_records_every_trial_exactly_once`
- SIGTERM outside a run: `system/test_command.py::test_sigterm_while_no_run_is_going_exits_143_with_one_line`
- a worker killed (SIGKILL), once or more often than retries allow: `system/test_faults.py`
- the disk filling up during a run: `system/test_faults.py::test_a_disk_that_fills_up_during_a_run_stops_it_with_one_line_and_keeps_what_was_written`
- a cut or garbage trials.jsonl line, a field of the wrong type, an `ok` record without its figures: `unit/test_results.py`, `system/test_runner.py::test_a_field_of_the_wrong_type_is_shown_as_a_dash_and_its_trial_rerun`, `system/test_runner.py::test_resume_runs_again_exactly_the_trials_that_are_not_done`
- any figure of a record set to NaN, an infinity or out of its range, judged alike by report, compare and resume: `unit/test_record_ranges.py`
- a second writer of a run folder: `system/test_runner.py::test_a_second_writer_of_a_run_folder_is_refused_with_one_line`
- a tampered env.json: `unit/test_properties.py::test_a_recorded_plan_is_accepted_exactly_when_every_value_is_valid`
- a file that goes bad after the folder check: `worker/test_image_folders.py::test_a_trial_that_meets_an_undecodable_file_names_it`
"""

import contextlib
import json
import os
from pathlib import Path

import pytest
from disks import fill, read_only, small_disk
from records import MIB, measured

from tlbench import results
from tlbench.cli import main

OK = measured("resnet", "transfer", 32, 0, 0.9, 8.0, 2600 * MIB)
OTHER = measured("mobilenet", "finetune", 16, 0, 0.9, 90.0, 900 * MIB)
OOM = measured("resnet", "transfer", 32, 0, None, None, None, status="oom")

# (command with {placeholders}, exit status, what it says)
COMMANDS = [
    # --- commands and names
    ([], 2, "say a command"),
    (["rn"], 2, "unknown command 'rn': did you mean 'run'?"),
    (["run"], 2, "say what to run"),
    (["run", "--all", "--backbone", "resnet_v2_50"], 2, "--all runs the default grid"),
    (["run", "--backbone", "resnet50"], 2, "unknown backbone 'resnet50': did you mean 'resnet_v2_50'?"),
    (["run", "--mode", "finetuning"], 2, "unknown mode 'finetuning': did you mean 'finetune'?"),
    (["run", "--mode", "last_blok"], 2, "did you mean 'last_block'?"),
    (["run", "--backbone", "inception_v3", "--mode", "last_block"], 2, "'inception_v3' does not have"),
    (["run", "--all", "--weights", "pretrained"], 2, "invalid choice: 'pretrained'"),
    (["run", "--all", "--batch-norm", "frozn"], 2, "invalid choice: 'frozn'"),
    (["run", "--all", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["report", "--wide=yes"], 2, "argument --wide: ignored explicit argument 'yes'"),
    (["compare", "{run}", "{run}", "--wide"], 2, "unrecognized arguments: --wide"),
    # --- numbers
    (["run", "--batch-size", "0"], 2, "between 1 and 4096, got 0"),
    (["run", "--batch-size", "-8"], 2, "between 1 and 4096, got -8"),
    (["run", "--batch-size", "1e9"], 2, "whole number, got '1e9'"),
    (["run", "--batch-size", "16.5"], 2, "whole number, got '16.5'"),
    (["run", "--batch-size", "100000"], 2, "between 1 and 4096, got 100000"),
    (["run", "--batch-size", "inf"], 2, "batch size must be a whole number, got 'inf'"),
    (["run", "--batch-size", "nan"], 2, "batch size must be a whole number, got 'nan'"),
    (["run", "--all", "--seed", "x"], 2, "seed must be a whole number"),
    (["run", "--all", "--seed", "1e400"], 2, "seed must be a whole number, got '1e400'"),
    (["run", "--all", "--seeds", "0"], 2, "seeds must be between 1 and 100, got 0"),
    (["run", "--all", "--seeds", "inf"], 2, "seeds must be a whole number"),
    (["run", "--all", "--seed", "2147483647", "--seeds", "2"], 2, "goes past the largest seed, 2147483647"),
    (["run", "--all", "--split-seed", "-1"], 2, "seed must be between 0 and 2147483647, got -1"),
    (["run", "--all", "--split-seed", "nan"], 2, "seed must be a whole number"),
    (["run", "--all", "--train-size", "0"], 2, "train size must be 1 or more, got 0"),
    (["run", "--all", "--train-size", "1e400"], 2, "train size must be a whole number"),
    (["run", "--all", "--train-size", "5"], 2, "--train-size 5 is less than the 10 classes of 'digits'"),
    (["run", "--all", "--batch-norm-momentum", "1"], 2, "momentum must be between 0 and 1 (exclusive), got 1"),
    (["run", "--all", "--batch-norm-momentum", "high"], 2, "momentum must be a number, got 'high'"),
    (["run", "--all", "--batch-norm-momentum", "1e400"], 2, "momentum must be a finite number"),
    (["run", "--all", "--batch-norm-momentum", "nan"], 2, "momentum must be a finite number"),
    (["run", "--all", "--concurrency", "inf"], 2, "concurrency must be a whole number"),
    (["run", "--all", "--device-memory", "lots"], 2, "device memory must be a size such as 4GiB"),
    (["run", "--all", "--device-memory", "0"], 2, "device memory must be more than 0, got '0'"),
    (["run", "--all", "--device-memory", "512KiB"], 2, "device memory must be at least 1MiB, got '512KiB'"),
    (["run", "--all", "--device-memory", "1e400GiB"], 2, "device memory must be a finite size"),
    (["run", "--all", "--max-retries", "nan"], 2, "max retries must be a whole number"),
    (["run", "--backbone", "mobilenet_v2_035_128", "--batch-size", "max", "8"], 2, "--batch-size max searches each"),
    (["run", "--backbone", "mobilenet_v2_035_128", "--batch-size", "maximum"], 2, "got 'maximum' (or max: the largest"),
    (["report", "{tmp}", "--memory-budget", "lots"], 2, "memory budget must be a size such as 4GiB"),
    (["report", "{tmp}", "--memory-budget", "1e400"], 2, "memory budget must be a finite size"),
    (["report", "{tmp}", "--memory-budget", "1e400GiB"], 2, "memory budget must be a finite size, got '1e400GiB'"),
    (["report", "{tmp}", "--memory-budget", "1e308TiB"], 2, "memory budget must be a finite size"),
    (["report", "{tmp}", "--memory-budget", "inf"], 2, "memory budget must be a size such as 4GiB"),
    (["report", "{tmp}", "--memory-budget", "nan"], 2, "memory budget must be a size such as 4GiB"),
    (["report", "{tmp}", "--min-accuracy", "90"], 2, "min accuracy must be between 0 and 1, got 90"),
    (["report", "{tmp}", "--min-accuracy", "nan"], 2, "min accuracy must be a finite number"),
    (["report", "{tmp}", "--min-accuracy", "1e400"], 2, "min accuracy must be a finite number"),
    (["report", "{tmp}", "--min-throughput", "-5"], 2, "min throughput must be more than 0, got -5"),
    (["report", "{tmp}", "--min-throughput", "nan"], 2, "min throughput must be a finite number"),
    (["report", "{tmp}", "--min-throughput", "1e400"], 2, "min throughput must be a finite number, got '1e400'"),
    (["report", "{tmp}", "--min-throughput", "inf"], 2, "min throughput must be a finite number"),
    (["compare", "{run}", "{run}", "--slowdown", "2"], 2, "slowdown must be between 0 and 1, got 2"),
    (["compare", "{run}", "{run}", "--slowdown", "inf"], 2, "slowdown must be a finite number"),
    (["compare", "{run}", "{run}", "--accuracy-drop", "nan"], 2, "accuracy drop must be a finite number"),
    (["compare", "{run}", "{run}", "--memory-growth", "1e400"], 2, "memory growth must be a finite number"),
    # --- datasets
    (["run", "--all", "--dataset", ""], 2, "--dataset is empty"),
    (["run", "--all", "--dataset", "cifar"], 2, "neither 'digits' nor an existing folder; give 'digits'"),
    (["run", "--all", "--dataset", "digit"], 2, "did you mean 'digits'?"),
    (["run", "--all", "--dataset", "tfds:"], 2, "tfds:NAME needs a name"),
    # --- modules, addresses, output folders
    (["run", "--all", "--module", "resnet_v2_50"], 2, "--module takes NAME=PATH_OR_URL"),
    (["run", "--all", "--module", "resnet=/tmp"], 2, "unknown backbone 'resnet'"),
    (["run", "--all", "--module", "resnet_v2_50=/no/such/dir"], 2, "is not a directory"),
    (["run", "--all", "--module", "resnet_v2_50={tmp}"], 2, "holds no saved_model.pb"),
    (["run", "--all", "--module", "resnet_v2_50={tmp}/{long}"], 2, "File name too long"),
    (["run", "--all", "--address", "127.0.0.1:9", "--out", "{tmp}/runs"], 2, "nothing answers there"),
    (["run", "--all", "--out", "{file}"], 2, "is a file"),
    (["run", "--all", "--out", "{tmp}/{long}"], 2, "File name too long"),
    (["run", "--all", "--out", "{file}/runs"], 2, "can't be created: '{file}' is a file"),
    (["prefetch", "--module", "mobilenet_v2_035_128={garbage_module}"], 2, "nothing was installed"),
    (["screen", "--backbone", "resnet50"], 2, "unknown backbone 'resnet50': did you mean 'resnet_v2_50'?"),
    (["screen", "--dataset", "{tmp}/nowhere"], 2, "is neither 'digits' nor an existing folder"),
    (["screen", "--module", "resnet_v2_50=/no/such/dir"], 2, "is not a directory"),
    (["screen", "--mode", "finetune"], 2, "unrecognized arguments: --mode finetune"),
    # --- run folders: report, compare, --resume
    (["report", "{tmp}"], 2, "not a tlbench run folder"),
    (["report", "{file}"], 2, "is a file, not a run folder"),
    (["report", "{tmp}/{long}"], 2, "File name too long"),
    (["report", "{read_only_run}"], 3, "(Read-only file system); the report is printed above, its files are as"),
    (["report", "{full_run}"], 3, "(No space left on device); the report is printed above, its files are as"),
    (["report", "{read_only_run}", "--memory-budget", "1MiB"], 3, "(Read-only file system); the report is printed"),
    (["compare", "{tmp}"], 2, "the following arguments are required: RUN_B"),
    (["compare", "{tmp}", "{tmp}/absent"], 2, "not a tlbench run folder"),
    (["compare", "{run}", "{file}"], 2, "is a file, not a run folder"),
    (["compare", "{tmp}/{long}", "{run}"], 2, "File name too long"),
    (["compare", "{ok_run}", "{empty_run}"], 2, "has no trial record: nothing to compare"),
    (["compare", "{ok_run}", "{oom_run}"], 2, "has no trial that ended ok (1 oom): nothing to compare"),
    (["compare", "{ok_run}", "{other_run}"], 2, "no configuration in common"),
    (["compare", "{ok_run}", "{other_dataset_run}"], 0, "warning: datasets differ"),
    # out of range: left out with a warning, shown as -, and the trial counts as not finished
    (["report", "{out_of_range_run}", "--min-accuracy", "0.1"], 1, "test_accuracy is inf, not a fraction in [0, 1]"),
    (["report", "{out_of_range_run}"], 0, "val_accuracy is 7.0, not a fraction in [0, 1]; shown as -"),
    (["report", "{nan_speed_run}"], 0, "train_images_per_sec is nan, not a finite number > 0; shown as -"),
    (["report", "{negative_memory_run}"], 0, "peak_memory_bytes is -inf, not a whole number"),
    (["compare", "{ok_run}", "{out_of_range_run}"], 2, "has no trial that ended ok (1 ok without its figures)"),
    # a run folder's files that are not files
    (["report", "{folder_trials_run}"], 2, "trials.jsonl' is a folder, not a file"),
    (["report", "{folder_env_run}"], 2, "env.json' is a folder, not a file"),
    (["report", "{pipe_trials_run}"], 2, "trials.jsonl' is a pipe, not a file"),
    (["run", "--resume", "{folder_trials_run}"], 2, "trials.jsonl' is a folder, not a file"),
    (["run", "--resume", "{folder_lock_run}"], 2, ".lock' is a folder, not a file"),
    (["compare", "{ok_run}", "{folder_env_run}"], 2, "env.json' is a folder, not a file"),
    (["run", "--resume", ""], 2, "--resume is empty"),
    (["run", "--resume", "{tmp}"], 2, "not a tlbench run folder"),
    (["run", "--resume", "{tmp}/absent"], 2, "does not exist"),
    (["run", "--resume", "{file}"], 2, "is a file, not a run folder"),
    (["run", "--resume", "{tmp}/{long}"], 2, "File name too long"),
    (["run", "--resume", "{run}"], 2, "env.json has no run plan"),
    (["run", "--resume", "{tmp}", "--all"], 2, "--resume keeps the grid and settings of that run; drop --all"),
    (["run", "--resume", "{tmp}", "--quick"], 2, "--resume keeps the grid and settings of that run; drop --quick"),
    (["run", "--resume", "{tmp}", "--xla", "--mixed-precision"], 2, "drop --xla, --mixed-precision"),
    (["run", "--resume", "{tmp}", "--seeds", "3", "--train-size", "99"], 2, "drop --seeds, --train-size"),
]


class _Places(dict):
    """Placeholder -> path, each built the first time a row asks for it."""

    def __init__(self, tmp_path, stack, monkeypatch):
        super().__init__(tmp=tmp_path, long="x" * 300)
        self.tmp, self.stack, self.monkeypatch = tmp_path, stack, monkeypatch

    def __missing__(self, name):
        self[name] = str(getattr(self, f"_{name}")())
        return self[name]

    def _run_folder(self, name, records, env=None):
        folder = self.tmp / name
        folder.mkdir()
        (folder / results.TRIALS).write_text("".join(json.dumps(r) + "\n" for r in records))
        (folder / results.ENV).write_text(json.dumps(env or {"host": "h"}))
        return folder

    def _file(self):
        (self.tmp / "file").write_text("x")
        return self.tmp / "file"

    def _run(self):  # env.json only: a run folder without a plan or a record
        (self.tmp / "old-run").mkdir()
        (self.tmp / "old-run" / results.ENV).write_text("{}")
        return self.tmp / "old-run"

    def _ok_run(self):
        return self._run_folder("ok-run", [OK])

    def _empty_run(self):
        return self._run_folder("empty-run", [])

    def _oom_run(self):
        return self._run_folder("oom-run", [OOM])

    def _other_run(self):
        return self._run_folder("other-run", [OTHER])

    def _other_dataset_run(self):
        return self._run_folder("other-dataset-run", [{**OK, "dataset": "/data/cats"}])

    def _out_of_range_run(self):
        return self._run_folder("out-of-range-run", [{**OK, "test_accuracy": float("inf"), "val_accuracy": 7.0}])

    def _nan_speed_run(self):
        return self._run_folder("nan-speed-run", [{**OK, "train_images_per_sec": float("nan")}])

    def _negative_memory_run(self):
        return self._run_folder("negative-memory-run", [{**OK, "peak_memory_bytes": float("-inf")}])

    def _not_a_file(self, name, inside):
        folder = self._run_folder(f"{inside}-{name}-run", [OK])
        (folder / inside).unlink(missing_ok=True)
        if name == "pipe":
            os.mkfifo(folder / inside)  # read as a file, it would block forever
        else:
            (folder / inside).mkdir()
        return folder

    def _folder_trials_run(self):
        return self._not_a_file("folder", results.TRIALS)

    def _folder_env_run(self):
        return self._not_a_file("folder", results.ENV)

    def _folder_lock_run(self):
        return self._not_a_file("folder", results.LOCK)

    def _pipe_trials_run(self):
        return self._not_a_file("pipe", results.TRIALS)

    def _garbage_module(self):
        module = self.tmp / "garbage"
        module.mkdir()
        (module / "saved_model.pb").write_bytes(b"")
        self.monkeypatch.setenv("TFHUB_CACHE_DIR", str(self.tmp / "hub"))
        return module

    def _written_run(self, fault):
        disk = self.stack.enter_context(small_disk(self.tmp / f"{fault}-disk", size="4m"))
        folder = disk / "run"
        folder.mkdir()
        (folder / results.TRIALS).write_text(json.dumps(OK) + "\n")
        (folder / results.ENV).write_text("{}")
        if fault == "full":
            fill(disk)
        else:
            self.stack.enter_context(read_only(disk))
        return folder

    def _read_only_run(self):
        return self._written_run("read-only")

    def _full_run(self):
        return self._written_run("full")


@pytest.mark.parametrize("argv, status, says", COMMANDS, ids=lambda value: None)
def test_the_command_answers_a_bad_input_or_fault_as_the_table_says(argv, status, says, tmp_path, monkeypatch, capsys):
    with contextlib.ExitStack() as stack:
        places = _Places(tmp_path, stack, monkeypatch)
        argv = [arg.format_map(places) for arg in argv]
        assert main(argv) == status, capsys.readouterr()
        out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if status in (2, 3):
        assert err.count("\n") == 1 and err.startswith("tlbench: error: "), err
        assert says.format_map(places) in err
    else:
        assert says in out and err == ""


def test_the_readme_counts_the_tables_rows():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"`tests/unit/test_adversarial.py` ({len(COMMANDS)} commands," in " ".join(readme.split())
