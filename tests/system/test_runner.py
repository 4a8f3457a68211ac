"""The runner end to end on a real Ray, with null trials (`null_trials`):
what a run records, what `--resume` runs (and on another cluster shape),
the run folder's lock, the order trials are submitted in, and records with
fields of the wrong type. No TensorFlow: these test the driver."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import null_trials
from records import read_records
from rich.console import Console

from tlbench import data, record, results
from tlbench.cli import main
from tlbench.driver import runner
from tlbench.driver.carry import RateCarrier
from tlbench.driver.request import RunRequest
from tlbench.plan import BUDGETS, longest_first, predicted_flops
from tlbench.run_env import ENV_KEY

WORKERS = runner.Workers(frozen=None, trial=null_trials.quick_trial, prepare=null_trials.prepare_standin)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=240), out


def _start(tmp_path, request: RunRequest) -> tuple[int, Path, str]:
    console, out = _console()
    status = runner.start(request, runner.Settings(out=str(tmp_path / "runs")), console, WORKERS)
    (run_dir,) = (tmp_path / "runs").iterdir()
    return status, run_dir, out.getvalue()


def _fake_module(tmp_path) -> str:
    """A folder that passes for a local SavedModel (null trials never load it)."""
    module = tmp_path / "module"
    module.mkdir()
    (module / "saved_model.pb").write_bytes(b"")
    return str(module)


def test_a_run_records_its_resolved_plan_and_every_trial_once(control, tmp_path):
    status, run_dir, out = _start(tmp_path, RunRequest(dataset="digits", modes=("transfer",), quick=True))
    env = json.loads((run_dir / results.ENV).read_text())
    plan = env[ENV_KEY]
    # The default grid of a cluster with two GPUs, resolved and written whole.
    assert plan["backbones"] == ["resnet_v2_50", "mobilenet_v2_035_128"]
    assert plan["batch_sizes"] == [32, 64, 128] and plan["modes"] == ["transfer"]
    assert plan["sources"]["resnet_v2_50"]["kind"] == "standin"
    assert env["budget"]["name"] == plan["budget"] == "quick"
    assert results.read_run(run_dir).env == env  # what the runner writes, env.json's checker reads whole
    records = read_records(run_dir)
    assert status == 0 and len(records) == 6 == len({r["trial_id"] for r in records})
    assert all(r["status"] == "ok" and len(r["ray_gpu_ids"]) == 1 for r in records)
    assert "6 of 6 trials to run" in out and not (run_dir / ".lock").read_text()
    # Stand-in weights are said before any trial runs: which, why, what they mean, what to do.
    said = out.index("stand-in weights (random initialisation) for resnet_v2_50, mobilenet_v2_035_128: a test")
    assert said < out.index("6 of 6 trials to run")
    for words in ("speed and memory figures hold", "say nothing about which backbone", "prefetch", "--module"):
        assert words in " ".join(out[said:].split())


def test_trials_are_submitted_longest_first(control, tmp_path):
    """The two GPUs start the two trials predicted longest, of those that
    don't wait for a smaller batch's fine-tuning rate (carry.py): ResNet
    fine-tuning at the smallest batch first."""
    # The first two starts are held until both have happened: a null trial
    # that ends at once would free its GPU for the third before the second
    # worker process is up.
    (control / "hold").write_text("* 1")
    first_two = []

    def release_the_first_two():
        try:
            first_two.extend(null_trials.wait_for_start(n)["trial_id"] for n in (1, 2))
        finally:
            (control / "hold").unlink()
            for trial_id in {s["trial_id"] for s in null_trials.started()}:
                null_trials.release(trial_id)

    releaser = threading.Thread(target=release_the_first_two)
    releaser.start()
    request = RunRequest(dataset="digits", batch_sizes=(8, 32), quick=True)
    status, run_dir, _ = _start(tmp_path, request)
    releaser.join()
    assert status == 0 and len(first_two) == 2
    plan = runner.RunPlan.from_json(json.loads((run_dir / results.ENV).read_text())[ENV_KEY], "env.json")
    budget = BUDGETS[plan.budget]
    images = data.open_dataset("digits")
    sizes = data.capped_splits(images, 0, plan.protocol.max_train_images(budget), budget.max_eval_images).sizes()
    cost = lambda spec: predicted_flops(spec, plan.forward_flops[spec.backbone], sizes)
    expected = [spec.trial_id for spec in longest_first(plan.grid(), cost)]
    not_waiting = [spec.trial_id for spec in RateCarrier(longest_first(plan.grid(), cost)).ready()]
    assert expected[0] == "resnet_v2_50-finetune-bs32-digits-seed0"  # waits for bs8's rate
    assert not_waiting[0] == "resnet_v2_50-finetune-bs8-digits-seed0"
    started = [s["trial_id"] for s in null_trials.started()]
    assert sorted(started) == sorted(expected)
    assert set(started[:2]) == set(first_two) == set(not_waiting[:2])  # two GPUs: the two longest first


def test_fine_tuning_rates_are_searched_at_the_smallest_batch_and_carried_to_the_others(control, tmp_path):
    request = RunRequest(
        dataset="digits", backbones=("mobilenet_v2_035_128",), modes=("transfer", "finetune"), batch_sizes=(8, 16, 32)
    )
    status, run_dir, _ = _start(tmp_path, request)
    assert status == 0
    records = {(r["mode"], r["batch_size"]): r for r in read_records(run_dir)}
    source = records[("finetune", 8)]
    assert source["learning_rate_carried_from"] is None and source["base_learning_rate"] == 3e-4  # searched
    for batch in (16, 32):
        assert records[("finetune", batch)]["learning_rate_carried_from"] == source["trial_id"]
        assert records[("transfer", batch)]["learning_rate_carried_from"] is None
    started = [s["trial_id"] for s in null_trials.started()]
    after = started.index(source["trial_id"])
    assert all(started.index(f"mobilenet_v2_035_128-finetune-bs{b}-digits-seed0") > after for b in (16, 32))


def test_resume_on_a_cluster_of_another_shape_runs_exactly_the_missing_trials_with_the_recorded_weights(
    control, null_run, tmp_path
):
    module = _fake_module(tmp_path)
    (control / "module").write_text(module)
    failing = ["resnet_v2_50-transfer-bs64-digits-seed0", "mobilenet_v2_035_128-finetune-bs128-digits-seed0"]
    (control / "fail").write_text("\n".join(failing))
    request = RunRequest(dataset="digits", modes=("transfer", "finetune"), quick=True)  # two GPUs: 12 trials
    status, run_dir, _ = _start(tmp_path, request)
    assert status == 1  # two trials errored
    first = read_records(run_dir)
    assert len(first) == 12 and {r["trial_id"] for r in first if r["status"] == "error"} == set(failing)
    (control / "fail").unlink()
    (control / "started").unlink()
    started_at = json.loads((run_dir / results.ENV).read_text())["started_at"]  # the run's, as the command started
    assert 0 < time.time() - record.timestamp(started_at) < 600

    # Resume in a process of its own, on a local Ray without GPUs, whose
    # default grid (batch sizes 8 and 16) has none of these trials; choosing
    # weights again would fail.
    resume = null_run("resume", run_dir, "--refuse-prepare")
    stdout, stderr = resume.communicate(timeout=600)
    assert resume.returncode == 0, stdout + stderr
    assert "2 of 12 trials to run" in stdout and "0 GPU(s)" in stdout
    resumed = read_records(run_dir)[12:]
    assert sorted(r["trial_id"] for r in resumed) == sorted(failing)
    assert sorted(s["trial_id"] for s in null_trials.started()) == sorted(failing)
    assert all(r["status"] == "ok" and r["ray_gpu_ids"] == [] for r in resumed)  # on the CPU-only Ray
    assert {r["weights"] for r in resumed} == {r["weights"] for r in first} == {f"local:{module}"}
    run = results.read_run(run_dir)
    assert len(run.records) == 12 and all(r["status"] == "ok" for r in run.records)
    assert run.env["started_at"] == started_at  # a resume keeps the run's start


def test_a_second_writer_of_a_run_folder_is_refused_with_one_line(control, tmp_path, run_in_subprocess):
    status, run_dir, _ = _start(tmp_path, RunRequest(dataset="digits", backbones=("mobilenet_v2_035_128",), quick=True))
    assert status == 0
    with results.lock(run_dir):  # a run still writing to it
        done = run_in_subprocess("run", "--resume", run_dir)
        status_in_process = main(["run", "--resume", str(run_dir)])
    assert done.returncode == 2 and status_in_process == 2
    assert done.stderr.count("\n") == 1 and "is being written by another tlbench run" in done.stderr
    assert f"process {os.getpid()} holds" in done.stderr


def test_a_field_of_the_wrong_type_is_shown_as_a_dash_and_its_trial_rerun(control, tmp_path, capsys):
    request = RunRequest(dataset="digits", backbones=("mobilenet_v2_035_128",), modes=("transfer",), batch_sizes=(8,))
    status, run_dir, _ = _start(tmp_path, request)
    assert status == 0
    (good,) = read_records(run_dir)
    bad = {**good, "test_accuracy": "high", "train_timing": {"images_per_sec_median": "fast"}}
    (run_dir / results.TRIALS).write_text(json.dumps(bad) + "\n")
    warning = "trials.jsonl line 1: test_accuracy is 'high', not a number; shown as -"

    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert warning in out and "Traceback" not in out
    row = next(line for line in out.splitlines() if good["backbone"][:8] in line and "transfer" in line)
    assert " - " in row and "0.625" not in row  # the test accuracy: a dash, not a traceback
    # Its only record lacks its figures: compare has nothing to compare, and says so in one line.
    assert main(["compare", str(run_dir), str(run_dir)]) == 2
    assert "has no trial that ended ok (1 ok without its figures)" in capsys.readouterr().err

    # An ok record without its accuracy is not finished: resume runs it again.
    console, out = _console()
    assert runner.resume(run_dir, runner.Settings(), console, WORKERS) == 0
    assert "1 of 1 trials to run" in out.getvalue() and warning in out.getvalue()
    assert [s["trial_id"] for s in null_trials.started()] == [good["trial_id"]] * 2
    (record,) = results.read_run(run_dir).records
    assert record["test_accuracy"] == 0.625


def _wait_for_records(out: Path, count: int) -> None:
    deadline = time.monotonic() + 300  # only a hang reaches it
    while not any(len(read_records(run)) >= count for run in out.glob("*") if (run / results.TRIALS).exists()):
        assert time.monotonic() < deadline, f"fewer than {count} records after 300 s"
        time.sleep(0.02)


def _interrupt_when(driver: subprocess.Popen, hand_over, signum=signal.SIGINT) -> tuple[int, str]:
    """Once `hand_over()` returns (a trial is running, held), send `driver`
    `signum` (SIGINT: as Ctrl-C would). Its exit status and output."""
    status, stdout, stderr = _signal_when(driver, hand_over, signum)
    return status, stdout + stderr


def _signal_when(driver: subprocess.Popen, hand_over, signum) -> tuple[int, str, str]:
    try:
        hand_over()
        driver.send_signal(signum)
        try:
            stdout, stderr = driver.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # only a hang: say where it hangs
            driver.send_signal(signal.SIGUSR1)
            time.sleep(2)
            driver.kill()
            stdout, stderr = driver.communicate()
            raise AssertionError(f"still running 300 s after {signum!r}:\n{stdout}\n{stderr}") from None
    finally:
        driver.kill()
    return driver.returncode, stdout, stderr


def test_a_run_interrupted_twice_resumes_and_records_every_trial_exactly_once(control, null_run, tmp_path):
    """Each interrupt lands while a trial is held running, after a known
    number of records: the same outcome however fast the machine is."""
    (control / "hold").write_text("* 1")
    out = tmp_path / "runs"
    grid = ["--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "--batch-size", "8", "12", "16"]
    starts = 0

    def finish_one_then_hold_the_next():
        nonlocal starts
        starts += 1
        null_trials.release(null_trials.wait_for_start(starts)["trial_id"])  # this one finishes,
        _wait_for_records(out, (starts + 1) // 2)  # its record is written,
        starts += 1
        null_trials.wait_for_start(starts)  # and the next is running, held

    status, output = _interrupt_when(null_run("start", out, *grid), finish_one_then_hold_the_next)
    (run_dir,) = out.iterdir()
    assert status == 130, output
    assert "interrupted: 1 finished trial(s) kept" in output
    assert f"resume with: python -m tlbench run --resume {run_dir}" in output
    assert len(read_records(run_dir)) == 1

    status, output = _interrupt_when(null_run("resume", run_dir), finish_one_then_hold_the_next)
    assert status == 130 and "2 of 3 trials to run" in output, output
    assert len(read_records(run_dir)) == 2

    (control / "hold").unlink()
    resume = null_run("resume", run_dir)
    stdout, stderr = resume.communicate(timeout=600)
    assert resume.returncode == 0 and "1 of 3 trials to run" in stdout, stdout + stderr
    records = read_records(run_dir)
    assert sorted(r["trial_id"] for r in records) == [
        f"mobilenet_v2_035_128-transfer-bs{n}-digits-seed0" for n in (12, 16, 8)
    ]
    assert all(r["status"] == "ok" and r["budget"] == "quick" for r in records)  # the run's settings kept


def test_sigterm_stops_a_run_as_ctrl_c_does_and_its_resume_records_every_trial_exactly_once(
    control, null_run, tmp_path
):
    """`kill`, a scheduler or a container's stop: an interruption, exit 143,
    Ray shut down by the run (none of its C-level stack dump), resumable."""
    (control / "hold").write_text("* 1")
    out = tmp_path / "runs"
    grid = ["--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "--batch-size", "8", "12", "16"]

    def finish_one_then_hold_the_next():
        null_trials.release(null_trials.wait_for_start(1)["trial_id"])
        _wait_for_records(out, 1)
        null_trials.wait_for_start(2)

    status, stdout, stderr = _signal_when(null_run("start", out, *grid), finish_one_then_hold_the_next, signal.SIGTERM)
    (run_dir,) = out.iterdir()
    assert status == 143, stdout + stderr
    for dump in ("Traceback", "SIGTERM received", "@ 0x", "logging.cc"):
        assert dump not in stderr, stderr
    assert "interrupted: 1 finished trial(s) kept" in stdout
    assert f"resume with: python -m tlbench run --resume {run_dir}" in stdout
    (kept,) = read_records(run_dir)

    (control / "hold").unlink()
    resume = null_run("resume", run_dir)
    stdout, stderr = resume.communicate(timeout=600)
    assert resume.returncode == 0 and "2 of 3 trials to run" in stdout, stdout + stderr
    records = read_records(run_dir)
    assert records[0] == kept
    assert sorted(r["trial_id"] for r in records) == [
        f"mobilenet_v2_035_128-transfer-bs{n}-digits-seed0" for n in (12, 16, 8)
    ]
    assert all(r["status"] == "ok" for r in records)


STOP_SIGNALS_HELD = """
import os, signal
from tlbench.driver import stopping

before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
seen = []
try:
    with stopping.stop_signals() as stops:
        with stopping.interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("the held block ran to its end")
        seen.append("not reached")
except KeyboardInterrupt as stop:
    seen.append(type(stop).__name__)
restored = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
print(seen, stops.exit_status, restored)
"""


def test_a_stop_signal_waits_for_a_held_block_and_the_handlers_before_are_put_back():
    """In a process of its own: were the handler missing, SIGTERM would end it."""
    done = subprocess.run(
        [sys.executable, "-c", STOP_SIGNALS_HELD], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['the held block ran to its end', 'Terminated'] 143 True"


def test_resume_runs_again_exactly_the_trials_that_are_not_done(control, tmp_path):
    """Done: an ok record with its figures, or an oom one, by the last record
    of each trial. An error, an ok record lacking a figure or with one of the
    wrong type (dropped when read) or not finite is run again; the report
    then has every trial once, the records that were done as they were."""
    request = RunRequest(
        dataset="digits",
        backbones=("mobilenet_v2_035_128",),
        modes=("transfer",),
        batch_sizes=(8, 12, 16, 20, 24, 28, 32),
        quick=True,
    )
    status, run_dir, _ = _start(tmp_path, request)
    assert status == 0
    ok, oom, error, lacking, mistyped, infinite, errored_then_ok = sorted(
        read_records(run_dir), key=lambda r: r["batch_size"]
    )
    oom.update(status="oom", error="ResourceExhaustedError: OOM")
    error.update(status="error", error="RuntimeError: boom")
    del lacking["test_accuracy"], lacking["infer_images_per_sec"]
    mistyped["peak_memory_bytes"] = "lots"
    infinite["train_images_per_sec"] = float("inf")  # json writes Infinity; read back as inf
    first = [ok, oom, error, lacking, mistyped, infinite, {**errored_then_ok, "status": "error"}, errored_then_ok]
    (run_dir / results.TRIALS).write_text("".join(json.dumps(r) + "\n" for r in first))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    console, out = _console()
    assert runner.resume(run_dir, runner.Settings(), console, WORKERS) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "4 of 7 trials to run" in out.getvalue()
    rerun = [r["trial_id"] for r in (error, lacking, mistyped, infinite)]
    assert sorted(s["trial_id"] for s in null_trials.started()[7:]) == sorted(rerun)
    assert sorted(r["trial_id"] for r in read_records(run_dir)[len(first) :]) == sorted(rerun)
    run = results.read_run(run_dir)
    assert sorted(r["trial_id"] for r in run.records) == sorted(r["trial_id"] for r in first[:7])
    kept = {r["trial_id"]: r for r in run.records}
    assert all(kept[was_done["trial_id"]] == was_done for was_done in (ok, oom, errored_then_ok))
    assert all(kept[trial_id]["status"] == "ok" and kept[trial_id]["test_accuracy"] == 0.625 for trial_id in rerun)


def test_a_refused_address_leaves_a_ray_already_running_in_the_process(control, ray_session, tmp_path):
    import ray

    argv = ["run", "--all", "--address", "127.0.0.1:9", "--out", str(tmp_path)]
    assert main(argv) == 2  # nothing answers there
    assert ray.is_initialized() and ray_session.shut_down_by is None  # the session's Ray, untouched
