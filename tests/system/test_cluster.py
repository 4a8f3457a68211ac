"""Placement on real Ray clusters: logical GPUs and two nodes on this machine.

`ray.cluster_utils.Cluster` starts real Ray nodes (GCS, raylets, workers) as
separate processes; the runner joins them with `--address`, as it would join
a cluster of machines. Placement is the driver's: the trials are null trials
(`null_trials`), held until the test lets them finish.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import null_trials
import pytest
from records import read_records


@pytest.fixture
def ray_cluster(control_folder, monkeypatch):
    from conftest import TESTS
    from ray.cluster_utils import Cluster

    # The nodes' workers import the null trials from tests/.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    clusters = []

    def start(*nodes):
        cluster = Cluster(initialize_head=True, head_node_args=nodes[0])
        for node in nodes[1:]:
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.shutdown()


def _all_at_once(null_run, tmp_path, address, backbones, *options) -> tuple[list, str]:
    """(records, stdout) of null trials of `backbones` in transfer at batch 8
    and 16, run through the runner joined to `address`; each waits until all
    have started, so they must run at the same time."""
    (Path(os.environ[null_trials.CONTROL]) / "hold").write_text("* 1")
    driver = null_run(
        "start", tmp_path, "--backbone", *backbones, "--mode", "transfer", "--batch-size", "8", "16",
        "--address", address, *options,
    )  # fmt: skip
    count = 2 * len(backbones)
    try:
        for start in [null_trials.wait_for_start(n) for n in range(1, count + 1)]:
            null_trials.release(start["trial_id"])
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, stdout + stderr
    (run_dir,) = tmp_path.iterdir()
    records = read_records(run_dir)
    assert len(records) == count and all(r["status"] == "ok" for r in records)
    return records, stdout


def _two_trials_at_once(null_run, tmp_path, address):
    return _all_at_once(null_run, tmp_path, address, ["mobilenet_v2_035_128"])[0]


def test_one_trial_per_gpu_and_as_many_at_once_as_there_are_gpus(ray_cluster, null_run, tmp_path):
    cluster = ray_cluster({"num_cpus": 2, "num_gpus": 2})
    first, second = _two_trials_at_once(null_run, tmp_path, cluster.address)
    assert first["process_id"] != second["process_id"]
    assert {first["cuda_visible_devices"], second["cuda_visible_devices"]} == {"0", "1"}
    assert len(first["ray_gpu_ids"]) == len(second["ray_gpu_ids"]) == 1


def test_trials_spread_over_the_nodes_of_a_cpu_cluster(ray_cluster, null_run, tmp_path):
    cluster = ray_cluster({"num_cpus": 1}, {"num_cpus": 1})
    first, second = _two_trials_at_once(null_run, tmp_path, cluster.address)
    assert first["node_id"] != second["node_id"]
    assert first["cuda_visible_devices"] in (None, "") and first["ray_gpu_ids"] == []


def test_frozen_inputs_are_computed_once_per_backbone_for_trials_on_both_nodes(ray_cluster, null_run, tmp_path):
    """Two backbones, two trials each, on four one-CPU nodes: each backbone's
    frozen inputs are computed by one task, and its trials, held until all
    four run (so on every node, each on its own), get that one computation's
    result, pulled to their node through the object store."""
    cluster = ray_cluster({"num_cpus": 1}, {"num_cpus": 1}, {"num_cpus": 1}, {"num_cpus": 1})
    backbones = ["mobilenet_v2_035_128", "resnet_v2_50"]  # four trials at once: one per node
    records, stdout = _all_at_once(null_run, tmp_path, cluster.address, backbones, "--share-frozen")
    computed = (Path(os.environ[null_trials.CONTROL]) / "frozen").read_text().splitlines()
    assert sorted(json.loads(line)["backbone"] for line in computed) == ["mobilenet_v2_035_128", "resnet_v2_50"]
    for backbone in ("mobilenet_v2_035_128", "resnet_v2_50"):
        trials = [r for r in records if r["backbone"] == backbone]
        assert len({r["frozen_inputs"]["computation"] for r in trials}) == 1
        assert len({r["node_id"] for r in trials}) == 2  # on two nodes
    assert len({r["node_id"] for r in records}) == 4
    assert "frozen inputs: 2 computation(s) for 2 backbone(s)" in stdout.replace("\n", " ")
    for backbone in ("mobilenet_v2_035_128", "resnet_v2_50"):  # each told as its computation ended
        told = stdout.replace("\n", " ")
        assert f"early answer, {backbone}: a ridge probe's validation accuracy 0.625, LogME 0.500" in told
        assert "its 2 trial(s): about 0:0" in told.split(f"early answer, {backbone}")[1]


def test_no_trial_starts_before_every_backbones_frozen_task_has_answered(ray_cluster, null_run, tmp_path):
    """Room for a trial beside the frozen tasks, MobileNet's held: ResNet's
    trials, ready, still wait for it, so that its early answer comes before
    any trial takes the cores (Ray runs ready tasks in no set order)."""
    cluster = ray_cluster({"num_cpus": 4})
    control = Path(os.environ[null_trials.CONTROL])
    (control / "hold-frozen").write_text("mobilenet_v2_035_128")
    backbones = ["resnet_v2_50", "mobilenet_v2_035_128"]
    driver = null_run(
        "start", tmp_path, "--backbone", *backbones, "--mode", "transfer", "--batch-size", "8", "16",
        "--address", cluster.address, "--share-frozen",
    )  # fmt: skip
    try:
        while "resnet_v2_50" not in null_trials.frozen_ended():  # ResNet's trials are ready from here
            time.sleep(0.02)
        with pytest.raises(AssertionError, match="no start number 1"):  # none starts while MobileNet's is held
            null_trials.wait_for_start(1, deadline_seconds=10)
        (control / "go-frozen-mobilenet_v2_035_128").touch()
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, stdout + stderr
    answered = max(null_trials.frozen_ended().values())
    assert len(null_trials.started()) == 4 and all(s["at"] > answered for s in null_trials.started())


def test_a_cluster_that_cannot_hold_a_trial_fails_fast(ray_cluster, run_in_subprocess, tmp_path):
    cluster = ray_cluster({"num_cpus": 0})
    done = run_in_subprocess(*["run", "--all", "--quick", "--address"], cluster.address, "--out", tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no node of the Ray cluster" in lines[0] and "'num_cpus': 1" in lines[0]


def test_an_address_with_nothing_listening_is_one_line_and_exit_2(run_in_subprocess, tmp_path):
    done = run_in_subprocess(*["run", "--all", "--quick", "--address", "127.0.0.1:9"], "--out", tmp_path, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can't start or join Ray at '127.0.0.1:9'" in lines[0]


def test_a_cluster_whose_gpus_sit_where_no_cpu_is_free_is_one_line_and_exit_2(ray_cluster, run_in_subprocess, tmp_path):
    """With GPUs in the cluster every trial asks for one GPU and one CPU; here
    the GPU node has no CPU and the CPU node no GPU, so no trial could ever
    start: the command says so instead of waiting forever."""
    cluster = ray_cluster({"num_cpus": 0, "num_gpus": 1}, {"num_cpus": 2, "num_gpus": 0})
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
            "--weights",
            "standin",
            "--out",
        ],
        tmp_path / "runs",
        "--address",
        cluster.address,
    )
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can give a trial {'num_gpus': 1, 'num_cpus': 1}" in lines[0]


def test_a_trial_worker_runs_at_normal_priority_where_it_may():
    """Ray starts workers at niceness 15; a timed trial brings itself back to
    0 (a privileged process may; any other keeps what it was given), before
    TensorFlow starts its threads, and says which it ran at."""
    code = "import os; os.nice(15); from tlbench.driver.cluster import _normal_priority; print(_normal_priority())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    may_lower = os.geteuid() == 0
    assert int(done.stdout) == (0 if may_lower else 15)
