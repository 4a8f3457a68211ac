"""The real command, a real local Ray, fresh worker processes per trial.

Each run goes through a wrapper that fails if the driver imported TensorFlow.
"""

import json
import re
from pathlib import Path

import pytest
from records import read_records

from tlbench.results import ENV, REPORT_MD


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory, run_in_subprocess, shared_module):
    """As a new user would, from a shell that sets no TF_* variable and with
    no network: `prefetch` is refused, then copies the real TF1 Hub module
    into an empty TFHUB_CACHE_DIR; both modes of MobileNet V2 0.35/128 run
    with --quick and --weights hub. Returns (the refused prefetch, the copying
    prefetch, the run's CompletedProcess, its run folder, its records by mode,
    the cache)."""
    folder = tmp_path_factory.mktemp("hub")
    cache = {"TFHUB_CACHE_DIR": str(folder / "hub"), "https_proxy": "http://127.0.0.1:9"}  # and no network
    refused = run_in_subprocess(*["prefetch", "--backbone", "mobilenet_v2_035_128"], env=cache)
    copied = run_in_subprocess("prefetch", "--module", f"mobilenet_v2_035_128={shared_module}", env=cache)
    out = folder / "runs"
    command = ["run", "--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "finetune", "--batch-size", "16"]
    done = run_in_subprocess(*command, "--weights", "hub", "--quick", "--out", out, env=cache, drop=("TF_",))
    run_dir = _only_run_dir(out) if out.is_dir() else None
    records = {r["mode"]: r for r in read_records(run_dir)} if run_dir else {}
    return refused, copied, done, run_dir, records, Path(cache["TFHUB_CACHE_DIR"])


@pytest.mark.xdist_group("hub_run")  # one run for four: its fixture, on one process
def test_quick_grid_on_mobilenet_writes_records_env_and_report(hub_run, run_in_subprocess):
    _, _, done, run_dir, _, _ = hub_run
    assert done.returncode == 0, done.stderr + done.stdout
    records = read_records(run_dir)
    assert sorted((r["mode"], r["status"]) for r in records) == [("finetune", "ok"), ("transfer", "ok")]
    by_mode = {r["mode"]: r for r in records}
    for record in records:
        assert record["train_images_per_sec"] > 0 and record["infer_images_per_sec"] > 0
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
    assert trials.count("| mobilenet_v2_035_128 |") == 2 and "Stand-in weights" not in report
    assert "## Does fine-tuning pay?" in report  # the ladder's two ends
    assert "## Recommendation" in report and "<h2>Recommendation</h2>" in (run_dir / "report.html").read_text()
    # When the answers came and where the time went, from env.json's start and the shared frozen inputs' end.
    shared = {r["frozen_inputs"]["computation"]: r["frozen_inputs"] for r in records}
    (frozen,) = shared.values()  # both trials shared one computation, its early answer recorded in each
    assert env["started_at"] < frozen["finished_at"] < min(r["started_at"] for r in records)
    assert 0 <= frozen["ridge_val_accuracy"] <= 1 and frozen["feature_images_per_sec"] > 0
    # Test read once: on the shared test features where the chosen weights are the probe's, else through the model.
    transfer, finetune = by_mode["transfer"], by_mode["finetune"]
    assert transfer["test_inputs"] == "features" and transfer["test_passes"] == finetune["test_passes"] == 1
    assert finetune["test_inputs"] == ("features" if finetune["kept_epoch"] == 0 else "images")
    # One probe path, fitted once on the shared features: both trials chose on it (a TF1 module: no cut).
    assert all(r["frozen_inputs"]["probe_shared"] and r["frozen_inputs"]["features_via"] == "module" for r in records)
    assert [c["train_loss"] for c in transfer["probe_search"]] == [c["train_loss"] for c in finetune["probe_search"]]
    if finetune["kept_epoch"] == 0:  # the same probe on the same features: the same test figures
        assert finetune["test_loss"] == transfer["test_loss"] and finetune["probe_penalty"] == transfer["probe_penalty"]
    decision = report.split("## How long the decision took\n")[1].split("\n## ")[0]
    early = r"\| 0\.\d{3} \| -?\d+\.\d{3} \| 1 \| \+\d+:\d\d \| \w+, batch 16 \| 0\.\d{3} \| 1 \|"  # and the final
    assert re.search(r"\| mobilenet_v2_035_128 " + early, decision), decision
    assert "Can't tell whether the early ranking held: the run has one backbone, nothing to rank." in decision
    split = report.split("## Where the time went\n")[1].split("\n## ")[0]
    assert re.search(r"\| mobilenet_v2_035_128 (\| \d+ ){6}\| \d+\.\d% \|", split), split
    assert re.search(r"\| total (\| \d+ ){6}\| 100\.0% \|", split) and "The largest part is **" in split
    for plot in ("memory.png", "throughput.png", "accuracy_vs_throughput.png", "ladder.png"):
        assert (run_dir / plot).read_bytes().startswith(b"\x89PNG")

    # `report` prints the same tables again, from the files alone: the
    # trials (a row per trial) and the ladder (a row per rung).
    table_rows = [line for line in done.stdout.splitlines() if "mobilenet_v2_035_128 │" in line]
    again = run_in_subprocess("report", run_dir)
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stdout.splitlines() if "mobilenet_v2_035_128 │" in line] == table_rows
    assert len(table_rows) == 4 and not any("stand-in" in row for row in table_rows)


@pytest.mark.xdist_group("hub_run")  # one run for four: its fixture, on one process
def test_a_clean_environment_measures_the_allocator_peak_and_finetunings_activation_cost(hub_run):
    """A new user's shell sets no TF_* variable: the worker itself chooses the
    allocator that keeps statistics, so peak memory means the same on every
    machine, and fine-tuning's activation memory shows against transfer's."""
    _, _, done, _, records, _ = hub_run
    assert done.returncode == 0, done.stderr + done.stdout
    device = "GPU:0" if records["transfer"]["device"].startswith("GPU") else "CPU:0"
    for record in records.values():
        assert record["memory_method"] == f"tf-allocator:{device}"
        assert record["peak_rss_bytes"] > record["peak_memory_bytes"] > 0
        assert record["runtime_overhead_bytes"] == record["peak_rss_bytes"] - record["peak_memory_bytes"]
    # The seed's headline: a fine-tuning step keeps the backbone's activations for the gradient.
    assert records["finetune"]["activation_memory_bytes"] > 3 * records["transfer"]["activation_memory_bytes"] > 0


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
        tmp_path / "runs",
        env=offline,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can't be reached" in lines[0] and "TFHUB_CACHE_DIR" in lines[0]
    assert "python -m tlbench prefetch" in lines[0] and "--module mobilenet_v2_035_128=PATH" in lines[0]
    assert not list(tmp_path.iterdir())  # no run folder, nor --out, for a run that never started


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


@pytest.mark.xdist_group("hub_run")  # one run for four: its fixture, on one process
def test_prefetch_fills_tfhub_cache_dir_so_weights_hub_works_offline(hub_run):
    refused, copied, done, _, records, _ = hub_run
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "can't be reached" in refused.stderr and "--module mobilenet_v2_035_128=PATH" in refused.stderr
    assert copied.returncode == 0, copied.stderr
    assert "copied from" in copied.stdout
    assert done.returncode == 0, done.stderr + done.stdout
    record = records["transfer"]
    assert record["status"] == "ok"
    assert record["weights"] == "tfhub:https://tfhub.dev/google/imagenet/mobilenet_v2_035_128/feature_vector/5"
    assert record["module_format"] == "tf1-hub"  # the shared module, found through the handle


@pytest.mark.xdist_group("hub_run")  # one run for four: its fixture, on one process
def test_a_tf1_module_runs_in_transfer_and_in_finetune_through_its_conversion(hub_run):
    _, _, done, _, records, cache = hub_run
    assert done.returncode == 0, done.stderr + done.stdout
    assert records["transfer"]["status"] == "ok" and records["transfer"]["module_format"] == "tf1-hub"
    assert records["finetune"]["status"] == "ok", records["finetune"]["error"]
    # hub.KerasLayer can't fine-tune a TF1 module: the same network, rebuilt with its weights.
    assert records["finetune"]["converted_from"] == records["transfer"]["module"]
    assert Path(records["finetune"]["converted_from"]).is_relative_to(cache.resolve())
    assert records["finetune"]["module_format"] == "tf2-savedmodel"
    assert records["finetune"]["conversion_max_abs_difference"] < 1e-3


def test_a_trial_past_the_device_memory_ends_oom_from_the_allocator_and_resume_keeps_it(tmp_path, run_in_subprocess):
    """--device-memory 384MiB at batch 64: MobileNet's transfer step fits (the
    graph predicts 74 MiB on the device, the largest batch 223), fine-tuning's
    (563 MiB, the largest batch 43) fails in TensorFlow's own allocator; the
    run goes on, and --resume has nothing to run again."""
    out = tmp_path / "runs"
    command = ["run", "--backbone", "mobilenet_v2_035_128", "--mode", "transfer", "finetune", "--batch-size", "64"]
    done = run_in_subprocess(*command, "--device-memory", "384MiB", "--quick", "--weights", "standin", "--out", out)
    assert done.returncode == 0, done.stderr + done.stdout  # ok and oom: every trial ended as it should
    run_dir = _only_run_dir(out)
    records = {r["mode"]: r for r in read_records(run_dir)}
    transfer, finetune = records["transfer"], records["finetune"]
    assert transfer["status"] == "ok" and transfer["train_images_per_sec"] > 0, transfer["error"]
    assert finetune["status"] == "oom" and finetune["oom_cause"] == "allocator"
    assert finetune["error"].startswith("ResourceExhaustedError: OOM when allocating tensor")
    for record in records.values():
        assert record["device_memory_bytes"] == 384 * 2**20 and record["device_memory_emulated"] is True
    # The CPU allocator is the device: the decoded images and timed batches are kept outside it, as on a GPU.
    assert transfer["max_batch_size_predicted"] >= 64 and transfer["peak_memory_bytes"] <= 384 * 2**20
    assert finetune["max_batch_size_predicted"] < 64  # the graph said so too: kept in the oom record
    assert json.loads((run_dir / ENV).read_text())["plan"]["device_memory"] == 384 * 2**20

    again = run_in_subprocess("run", "--resume", run_dir)
    assert again.returncode == 0, again.stderr + again.stdout
    assert [r["trial_id"] for r in read_records(run_dir)] == [r["trial_id"] for r in records.values()]
