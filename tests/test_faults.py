"""Faults during a run: a worker process killed mid-trial (SIGKILL), a disk
that fills up while records are written."""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tlbench import results
from tlbench.results import TRIALS

TARGET = "mobilenet_v2_035_128-transfer-bs8-digits-seed0"


def _kill_trial_worker(trial_id: str, times: int, driver: subprocess.Popen) -> list[int]:
    """SIGKILL the worker process running `trial_id` (Ray titles it
    `ray::<task name>`), `times` times, each once it has run for a moment."""
    killed: list[int] = []
    deadline = time.monotonic() + 240
    while len(killed) < times and time.monotonic() < deadline and driver.poll() is None:
        for process in psutil.process_iter(["pid", "cmdline"]):
            title = " ".join(process.info["cmdline"] or [])
            if title.startswith(f"ray::{trial_id}") and process.pid not in killed:
                time.sleep(1.0)  # mid-trial, not at its first instruction
                process.kill()
                killed.append(process.pid)
                break
        time.sleep(0.1)
    return killed


def _run_and_kill(tmp_path, tiny_module, times):
    command = [
        sys.executable, "-m", "tlbench", "run", "--backbone", "mobilenet_v2_035_128", "--mode", "transfer",
        "--batch-size", "8", "16", "--quick", "--max-retries", "1", "--out", str(tmp_path),
        "--module", f"mobilenet_v2_035_128={tiny_module}",
    ]  # fmt: skip
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = _kill_trial_worker(TARGET, times, driver)
    stdout, stderr = driver.communicate(timeout=300)
    assert len(killed) == times, stdout + stderr
    (run_dir,) = tmp_path.iterdir()
    records = {r["trial_id"]: r for r in map(json.loads, (run_dir / TRIALS).read_text().splitlines())}
    return driver.returncode, records, killed


def test_a_killed_worker_is_retried_and_the_grid_completes(tmp_path, tiny_module):
    returncode, records, killed = _run_and_kill(tmp_path, tiny_module, times=1)
    assert returncode == 0
    assert len(records) == 2 and all(r["status"] == "ok" for r in records.values())
    assert records[TARGET]["process_id"] not in killed  # finished in a fresh process


def test_a_worker_killed_more_often_than_retries_allow_is_an_error_and_the_rest_goes_on(tmp_path, tiny_module):
    returncode, records, _ = _run_and_kill(tmp_path, tiny_module, times=2)
    assert returncode == 1
    assert records[TARGET]["status"] == "error" and "died" in records[TARGET]["error"].lower()
    assert records["mobilenet_v2_035_128-transfer-bs16-digits-seed0"]["status"] == "ok"


@contextlib.contextmanager
def _small_disk(path, size="2m"):
    """A real, small filesystem (tmpfs) at `path`, so that writes meet a real
    ENOSPC; needs the right to mount (root in the sandbox and in CI)."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    mounted = subprocess.run(mount, capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"can't mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder):
    """Write until the filesystem is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path):
    with _small_disk(tmp_path / "disk") as disk:
        results.append_record(disk, {"trial_id": "a", "status": "ok"})
        before = (disk / TRIALS).read_bytes()
        _fill(disk)
        with pytest.raises(OSError) as error:
            results.append_record(disk, {"trial_id": "b", "status": "ok", "pad": "x" * 100_000})
        assert error.value.errno == 28  # ENOSPC, from the kernel
        assert (disk / TRIALS).read_bytes() == before  # not half a line


def test_an_append_after_a_cut_line_starts_on_a_new_line(tmp_path):
    (tmp_path / TRIALS).write_text('{"trial_id": "a", "backbone"')  # a crash mid-write
    results.append_record(tmp_path, {"trial_id": "b", "backbone": "m", "mode": "transfer", "batch_size": 8,
                                     "dataset": "digits", "status": "ok"})  # fmt: skip
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["b"] and run.warnings == [
        f"{TRIALS} line 1 is cut or garbled; skipped"
    ]


def test_a_disk_that_fills_up_during_a_run_stops_it_with_one_line_and_keeps_what_was_written(tmp_path, tiny_module):
    with _small_disk(tmp_path / "disk", size="4m") as disk:
        command = [
            sys.executable, "-m", "tlbench", "run", "--backbone", "mobilenet_v2_035_128", "--mode", "transfer",
            "--batch-size", "8", "16", "--quick", "--out", str(disk),
            "--module", f"mobilenet_v2_035_128={tiny_module}",
        ]  # fmt: skip
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def fill_after_the_first_record():
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and driver.poll() is None:
                written = list(disk.glob(f"*/{TRIALS}"))
                if written and written[0].read_text().count("\n") >= 1:
                    _fill(disk)
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=fill_after_the_first_record)
        watcher.start()
        stdout, stderr = driver.communicate(timeout=300)
        watcher.join()
        assert driver.returncode == 3, stdout + stderr
        assert stderr.count("\n") == 1 and stderr.startswith("tlbench: error: can't write the record of ")
        assert "No space left on device" in stderr and "1 record(s) written before are intact" in stderr
        (run_dir,) = [p for p in disk.iterdir() if p.is_dir()]
        run = results.read_run(run_dir)
        assert [r["status"] for r in run.records] == ["ok"] and run.warnings == []
