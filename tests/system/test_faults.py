"""Faults during a run: a worker process killed mid-trial (SIGKILL), a disk
that fills up while records are written. The runner runs null trials
(`null_trials`) on the session's Ray: the faults are the driver's to handle.
Appends that fail on their own: tests/unit/test_results.py."""

import io
import threading
import time

import null_trials
import psutil
import pytest
from disks import fill, small_disk
from records import read_records
from rich.console import Console

from tlbench import results
from tlbench.driver import runner
from tlbench.driver.request import RunRequest
from tlbench.errors import ResultsUnwritable
from tlbench.results import TRIALS

TARGET = "mobilenet_v2_035_128-transfer-bs8-digits-seed0"
OTHER = "mobilenet_v2_035_128-transfer-bs16-digits-seed0"
WORKERS = runner.Workers(frozen=None, trial=null_trials.quick_trial, prepare=null_trials.prepare_standin)
REQUEST = RunRequest(dataset="digits", backbones=("mobilenet_v2_035_128",), modes=("transfer",), batch_sizes=(8, 16))


def _run_and_kill(tmp_path, control, times):
    """A run of two trials whose TARGET worker is SIGKILLed `times` times
    mid-trial (each attempt waits for the test before it can finish)."""
    (control / "hold").write_text(f"{TARGET} {times}")
    killed = []

    def kill_each_attempt():
        count = 0
        while len(killed) < times:
            count += 1
            start = null_trials.wait_for_start(count)
            if start["trial_id"] == TARGET:
                psutil.Process(start["pid"]).kill()
                killed.append(start["pid"])

    killer = threading.Thread(target=kill_each_attempt, daemon=True)
    killer.start()
    status = runner.start(
        REQUEST, runner.Settings(out=str(tmp_path), max_retries=1), Console(file=io.StringIO()), WORKERS
    )
    killer.join(timeout=300)
    (run_dir,) = tmp_path.iterdir()
    records = {r["trial_id"]: r for r in read_records(run_dir)}
    return status, records, killed


def test_a_killed_worker_is_retried_and_the_grid_completes(tmp_path, control):
    status, records, killed = _run_and_kill(tmp_path, control, times=1)
    assert status == 0 and len(killed) == 1
    assert len(records) == 2 and all(r["status"] == "ok" for r in records.values())
    assert records[TARGET]["process_id"] not in killed  # finished in a fresh process


def test_a_worker_killed_more_often_than_retries_allow_is_an_error_and_the_rest_goes_on(tmp_path, control):
    status, records, killed = _run_and_kill(tmp_path, control, times=2)
    assert status == 1 and len(killed) == 2
    assert records[TARGET]["status"] == "error" and "died" in records[TARGET]["error"].lower()
    assert records[OTHER]["status"] == "ok"


def test_a_disk_that_fills_up_during_a_run_stops_it_with_one_line_and_keeps_what_was_written(tmp_path, control, capsys):
    (control / "hold").write_text("* 1")  # every trial waits for the test
    with small_disk(tmp_path / "disk", size="4m") as disk:

        def fill_after_the_first_record():
            first = null_trials.wait_for_start(1)
            null_trials.release(first["trial_id"])
            while not any(p.read_text().count("\n") for p in disk.glob(f"*/{TRIALS}")):  # its record
                time.sleep(0.02)
            fill(disk)
            null_trials.release(OTHER if first["trial_id"] == TARGET else TARGET)

        watcher = threading.Thread(target=fill_after_the_first_record, daemon=True)
        watcher.start()
        with pytest.raises(ResultsUnwritable) as stopped:
            runner.start(REQUEST, runner.Settings(out=str(disk)), Console(file=io.StringIO()), WORKERS)
        watcher.join(timeout=300)
        message = str(stopped.value)
        assert message.startswith("can't write the record of ") and "\n" not in message
        assert "No space left on device" in message and "1 record(s) written before are intact" in message
        (run_dir,) = [p for p in disk.iterdir() if p.is_dir()]
        run = results.read_run(run_dir)
        assert [r["status"] for r in run.records] == ["ok"] and run.warnings == []
