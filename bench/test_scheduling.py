"""How well trials are placed: N trials of known length over K logical GPUs,
through the same `cluster.run_trials` a run uses (fresh worker process per
trial, one GPU each), against the ideal longest-processing-time makespan.

The trials are null trials (they sleep for their length), so what is measured
is the harness: Ray's scheduling and the per-trial cost of a fresh process.
They are handed over shuffled and put in submission order by the same
`plan.longest_first` a run uses, with their lengths as the cost.
"""

from __future__ import annotations

import heapq
import math
import random
import sys
import time

import pytest

GPUS = 4
# Seconds. Long enough that a fresh process per trial (about 0.6 s here) is a
# small part of each.
LENGTHS = [18.0, 16.0, 14.0, 12.0, 12.0, 10.0, 8.0, 8.0, 6.0, 4.0, 4.0, 2.0]
MAX_RATIO = 1.15


def lpt_makespan(lengths, machines: int) -> float:
    """Longest processing time first: each job to the machine free first."""
    loads = [0.0] * machines
    for length in sorted(lengths, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + length)
    return max(loads)


def null_trial(spec, lengths):
    """Stands in for a trial: takes its known length, does nothing else.
    (`lengths` travels where a real trial gets its dataset.)"""
    time.sleep(lengths[spec.trial_id])
    return {**spec.record_fields(), "status": "ok", "error": None, "seconds": lengths[spec.trial_id]}


def test_lpt_makespan_by_hand():
    assert lpt_makespan([3, 3, 2, 2, 2], 2) == 7  # LPT's own worst case: 6 is optimal
    assert lpt_makespan(LENGTHS, GPUS) == 30.0


@pytest.fixture(scope="module")
def logical_gpus():
    import ray
    import ray.cloudpickle

    from tlbench.driver.cluster import RAY_TEMP_DIR, ClusterInfo

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers can't import bench/
    ray.init(num_cpus=GPUS, num_gpus=GPUS, include_dashboard=False, _temp_dir=str(RAY_TEMP_DIR), log_to_driver=False)
    yield ClusterInfo(address="local", nodes=1, cpus=GPUS, gpus=GPUS, cpus_per_trial=1)
    ray.shutdown()


def _specs(count):
    from tlbench.plan import BUDGETS, ModuleSource, TrialSpec

    return [
        TrialSpec("mobilenet_v2_035_128", "transfer", 1 + i, "digits", 0, BUDGETS["quick"], ModuleSource("local", "-"))
        for i in range(count)
    ]


def test_scheduling_makespan_and_per_trial_overhead(benchmark, logical_gpus):
    from tlbench.driver.cluster import run_trials
    from tlbench.plan import longest_first

    # Untimed (--benchmark-disable), a twentieth of the lengths: the same placement, no makespan asked.
    scale = 1.0 if benchmark.enabled else 0.05
    shuffled = _specs(len(LENGTHS))
    lengths = {spec.trial_id: scale * length for spec, length in zip(shuffled, LENGTHS)}
    random.Random(0).shuffle(shuffled)
    specs = longest_first(shuffled, lambda spec: lengths[spec.trial_id])
    assert [lengths[spec.trial_id] for spec in specs] == sorted(lengths.values(), reverse=True)
    noop = {spec.trial_id: 0.0 for spec in specs}

    def grid():
        records = []
        run_trials(specs, lengths, logical_gpus, records.append, work=null_trial)
        return records

    def empty_round():
        start = time.perf_counter()
        run_trials(specs[:GPUS], noop, logical_gpus, lambda record: None, work=null_trial)
        return time.perf_counter() - start

    records = benchmark.pedantic(grid, rounds=1, iterations=1)
    makespan = benchmark.stats.stats.max if benchmark.stats else None
    ideal = lpt_makespan(LENGTHS, GPUS)
    assert len(records) == len(LENGTHS) and all(r["status"] == "ok" for r in records)
    trials_per_gpu = math.ceil(len(LENGTHS) / GPUS)
    benchmark.extra_info.update(
        trials=len(LENGTHS),
        logical_gpus=GPUS,
        ideal_lpt_makespan_seconds=ideal,
        makespan_seconds=makespan,
        makespan_ratio=makespan / ideal if makespan else None,
        # What the harness adds per trial on the critical path: fresh worker
        # process, Ray's dispatch and the record's way back.
        per_trial_overhead_seconds=(makespan - ideal) / trials_per_gpu if makespan else None,
        # One empty trial per GPU through run_trials, start to last record.
        empty_round_seconds=empty_round(),
    )
    if makespan is not None:  # timed run (not --benchmark-disable)
        assert makespan <= MAX_RATIO * ideal, f"makespan {makespan:.1f} s vs ideal {ideal:.1f} s"
