"""The real command, a real local Ray, fresh worker processes per trial.

Each run goes through a wrapper that fails if the driver imported TensorFlow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from records import read_records

from tlbench.results import ENV, REPORT_MD


def _run_mobilenet_quick(run_in_subprocess, out, *more):
    """Both modes of MobileNet V2 0.35/128 with --quick; `more` picks the rest."""
    return run_in_subprocess(
        *["run", "--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "finetune", "--quick", "--out"], out, *more
    )


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def test_quick_grid_on_mobilenet_writes_records_env_and_report(tmp_path, run_in_subprocess):
    out = tmp_path / "runs"
    done = _run_mobilenet_quick(run_in_subprocess, out, "--batch-size", "16", "--weights", "standin")
    assert done.returncode == 0, done.stderr + done.stdout
    run_dir = _only_run_dir(out)
    records = read_records(run_dir)
    assert sorted((r["mode"], r["status"]) for r in records) == [("finetune", "ok"), ("transfer", "ok")]
    by_mode = {r["mode"]: r for r in records}
    for record in records:
        assert record["train_images_per_sec"] > 0 and record["infer_images_per_sec"] > 0
        assert record["weights"] == "standin:random-init" and record["weights_note"] == "--weights standin"
        assert record["budget"] == "quick"
    assert by_mode["finetune"]["peak_memory_bytes"] > by_mode["transfer"]["peak_memory_bytes"]
    assert by_mode["finetune"]["process_id"] != by_mode["transfer"]["process_id"]  # a fresh process each
    assert all(r["worker_niceness"] == 0 for r in by_mode.values())  # the local Ray's workers, not Ray's 15

    env = json.loads((run_dir / ENV).read_text())
    assert env["versions"]["tensorflow"] and env["versions"]["ray"] and env["versions"]["tensorflow-hub"]
    assert env["cpu"]["model"] and "run --backbone mobilenet_v2_035_128" in env["command"]
    one_each = {"num_gpus": 1, "num_cpus": 1} if env["cluster"]["gpus"] else {"num_cpus": env["cluster"]["cpus"]}
    assert env["cluster"]["trial_resources"] == one_each  # a GPU each, or every core: one trial at a time
    report = (run_dir / REPORT_MD).read_text()
    trials = report.split("## Trials")[1].split("\n## ")[0]
    assert trials.count("| mobilenet_v2_035_128 |") == 2 and "Stand-in weights" in report
    assert "## Does fine-tuning pay?" in report  # the ladder's two ends, costs only: stand-in weights
    assert "## Recommendation" in report and "<h2>Recommendation</h2>" in (run_dir / "report.html").read_text()
    for plot in ("memory.png", "throughput.png", "accuracy_vs_throughput.png", "ladder.png"):
        assert (run_dir / plot).read_bytes().startswith(b"\x89PNG")

    # `report` prints the same tables again, from the files alone: the
    # trials (a row per trial) and the ladder (a row per rung).
    table_rows = [line for line in done.stdout.splitlines() if "mobilenet_v2_035_128 │" in line]
    again = run_in_subprocess("report", run_dir)
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stdout.splitlines() if "mobilenet_v2_035_128 │" in line] == table_rows
    assert len(table_rows) == 4 and sum("stand-in" in row for row in table_rows) == 2


def test_a_tf1_module_runs_in_transfer_and_in_finetune_through_its_conversion(
    tmp_path, run_in_subprocess, shared_module
):
    out = tmp_path / "runs"
    done = _run_mobilenet_quick(
        run_in_subprocess, out, "--batch-size", "32", "--module", f"mobilenet_v2_035_128={shared_module}"
    )
    assert done.returncode == 0, done.stderr
    records = {r["mode"]: r for r in read_records(_only_run_dir(out))}
    assert records["transfer"]["status"] == "ok" and records["transfer"]["module_format"] == "tf1-hub"
    assert records["transfer"]["weights"] == f"local:{Path(shared_module).resolve()}"
    assert records["finetune"]["status"] == "ok", records["finetune"]["error"]
    assert records["finetune"]["converted_from"] == str(Path(shared_module).resolve())


def test_weights_hub_offline_is_one_line_and_exit_2(tmp_path, run_in_subprocess):
    # A proxy nobody listens on makes TF Hub unreachable on any machine.
    offline = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    done = run_in_subprocess(
        *[
            "run",
            "--backbone",
            "mobilenet_v2_035_128",
            "--mode",
            "transfer",
            "--batch-size",
            "8",
            "--weights",
            "hub",
            "--quick",
            "--out",
        ],
        tmp_path,
        env=offline,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can't be reached" in lines[0] and "TFHUB_CACHE_DIR" in lines[0]
    assert "python -m tlbench prefetch" in lines[0] and "--module mobilenet_v2_035_128=PATH" in lines[0]
    assert not list(tmp_path.iterdir())  # no run folder for a run that never started


def test_a_module_that_is_not_a_feature_vector_is_refused_before_any_trial(tmp_path, run_in_subprocess):
    from modules import save_spatial_module

    spatial = save_spatial_module(tmp_path / "spatial")
    done = run_in_subprocess(
        *[
            "run",
            "--backbone",
            "mobilenet_v2_035_128",
            "--mode",
            "transfer",
            "--batch-size",
            "8",
            "--quick",
            "--module",
        ],
        f"mobilenet_v2_035_128={spatial}",
        "--out",
        tmp_path / "runs",
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "outputs shape [1, 16, 16, 4] for one image, not a feature vector" in lines[0]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_prefetch_fills_tfhub_cache_dir_so_weights_hub_works_offline(tmp_path, run_in_subprocess, shared_module):
    cache = {"TFHUB_CACHE_DIR": str(tmp_path / "hub"), "https_proxy": "http://127.0.0.1:9"}  # and no network
    refused = run_in_subprocess(*["prefetch", "--backbone", "mobilenet_v2_035_128"], env=cache)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "can't be reached" in refused.stderr and "--module mobilenet_v2_035_128=PATH" in refused.stderr

    copied = run_in_subprocess("prefetch", "--module", f"mobilenet_v2_035_128={shared_module}", env=cache)
    assert copied.returncode == 0, copied.stderr
    assert "copied from" in copied.stdout

    out = tmp_path / "runs"
    done = run_in_subprocess(
        *[
            "run",
            "--backbone",
            "mobilenet_v2_035_128",
            "--mode",
            "transfer",
            "--batch-size",
            "8",
            "--weights",
            "hub",
            "--quick",
            "--out",
        ],
        out,
        env=cache,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    (record,) = read_records(_only_run_dir(out))
    assert record["status"] == "ok"
    assert record["weights"] == "tfhub:https://tfhub.dev/google/imagenet/mobilenet_v2_035_128/feature_vector/5"
    assert record["module_format"] == "tf1-hub"  # the shared module, found through the handle


def test_a_clean_environment_measures_the_allocator_peak_and_finetunings_activation_cost(tmp_path):
    """A new user's shell sets no TF_* variable: the worker itself chooses the
    allocator that keeps statistics, so peak memory means the same on every
    machine, and fine-tuning's activation memory shows against transfer's."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "tlbench", "run", "--backbone", "mobilenet_v2_035_128"]
    command += ["--mode", "transfer", "finetune", "--quick", "--batch-size", "16", "--weights", "standin"]
    done = subprocess.run([*command, "--out", str(out)], env=clean, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    records = {r["mode"]: r for r in read_records(_only_run_dir(out))}
    device = "GPU:0" if records["transfer"]["device"].startswith("GPU") else "CPU:0"
    for record in records.values():
        assert record["memory_method"] == f"tf-allocator:{device}"
        assert record["peak_rss_bytes"] > record["peak_memory_bytes"] > 0
        assert record["runtime_overhead_bytes"] == record["peak_rss_bytes"] - record["peak_memory_bytes"]
    # The seed's headline: a fine-tuning step keeps the backbone's activations for the gradient.
    assert records["finetune"]["activation_memory_bytes"] > 3 * records["transfer"]["activation_memory_bytes"] > 0
