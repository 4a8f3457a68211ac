"""Faults during a run: a worker process killed mid-trial (SIGKILL)."""

import json
import subprocess
import sys
import time

import psutil

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
