"""Placement on real Ray clusters: logical GPUs and two nodes on this machine.

`ray.cluster_utils.Cluster` starts real Ray nodes (GCS, raylets, workers) as
separate processes; the command joins them with `--address`, as it would join
a cluster of machines.
"""

import json
from datetime import datetime

import pytest

from tlbench.results import TRIALS


@pytest.fixture
def ray_cluster():
    from ray.cluster_utils import Cluster

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


def _two_tiny_trials(run_in_subprocess, tmp_path, tiny_module, address):
    done = run_in_subprocess(
        *"run --backbone mobilenet_v2_035_128 --mode transfer --batch-size 8 16 --quick --out".split(),
        tmp_path,
        "--module",
        f"mobilenet_v2_035_128={tiny_module}",
        "--address",
        address,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    (run_dir,) = tmp_path.iterdir()
    records = [json.loads(line) for line in (run_dir / TRIALS).read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    return records


def _overlap(a, b) -> bool:
    start = max(datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(b["started_at"]))
    end = min(datetime.fromisoformat(a["finished_at"]), datetime.fromisoformat(b["finished_at"]))
    return start < end


def test_one_trial_per_gpu_and_as_many_at_once_as_there_are_gpus(ray_cluster, run_in_subprocess, tmp_path, tiny_module):
    cluster = ray_cluster({"num_cpus": 2, "num_gpus": 2})
    first, second = _two_tiny_trials(run_in_subprocess, tmp_path, tiny_module, cluster.address)
    assert first["budget"] == "quick"
    assert first["process_id"] != second["process_id"]
    assert {first["cuda_visible_devices"], second["cuda_visible_devices"]} == {"0", "1"}
    assert len(first["ray_gpu_ids"]) == len(second["ray_gpu_ids"]) == 1
    assert _overlap(first, second)  # both ran at the same time


def test_trials_spread_over_the_nodes_of_a_cpu_cluster(ray_cluster, run_in_subprocess, tmp_path, tiny_module):
    cluster = ray_cluster({"num_cpus": 1}, {"num_cpus": 1})
    first, second = _two_tiny_trials(run_in_subprocess, tmp_path, tiny_module, cluster.address)
    assert first["node_id"] != second["node_id"]
    assert first["cuda_visible_devices"] in (None, "") and first["ray_gpu_ids"] == []


def test_a_cluster_that_cannot_hold_a_trial_fails_fast(ray_cluster, run_in_subprocess, tmp_path):
    cluster = ray_cluster({"num_cpus": 0})
    done = run_in_subprocess(*"run --all --quick --address".split(), cluster.address, "--out", tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no node of the Ray cluster" in lines[0] and "'num_cpus': 1" in lines[0]


def test_an_address_with_nothing_listening_is_one_line_and_exit_2(run_in_subprocess, tmp_path):
    done = run_in_subprocess(*"run --all --quick --address 127.0.0.1:9".split(), "--out", tmp_path, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can't start or join Ray at '127.0.0.1:9'" in lines[0]


def test_a_cluster_whose_gpus_sit_where_no_cpu_is_free_is_one_line_and_exit_2(ray_cluster, run_in_subprocess, tmp_path):
    """With GPUs in the cluster every trial asks for one GPU and one CPU; here
    the GPU node has no CPU and the CPU node no GPU, so no trial could ever
    start: the command says so instead of waiting forever."""
    cluster = ray_cluster({"num_cpus": 0, "num_gpus": 1}, {"num_cpus": 2, "num_gpus": 0})
    done = run_in_subprocess(
        *"run --backbone mobilenet_v2_035_128 --mode transfer --batch-size 8 --quick --weights standin --out".split(),
        tmp_path / "runs",
        "--address",
        cluster.address,
    )
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "can give a trial {'num_gpus': 1, 'num_cpus': 1}" in lines[0]
