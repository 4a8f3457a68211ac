"""The frozen inputs' Ray tasks (worker/frozen.py): one per group of a run's
trials that share a plan.TrialSpec.frozen_key, submitted before the trials
and scheduled as a trial is; its result reaches each trial through the object
store, its summary reaches the driver (the early answer) as it ends."""

from __future__ import annotations

from tlbench import isolated
from tlbench.errors import one_line
from tlbench.plan import TrialSpec

ARRAYS = ("features", "activations", "probe")  # what only the trials get: the driver gets the rest


def _frozen_task(work, spec: TrialSpec, images, modes: list, board) -> tuple[dict, dict]:
    """In a worker: `work(spec, images, modes)`, the frozen inputs of every
    trial like `spec`, checked in on the board as a trial is; returned twice:
    without its arrays, for the driver, and whole, for the trials."""
    import time

    import ray

    name = frozen_task_name(spec)
    context = ray.get_runtime_context()
    board.start.remote(
        name, {"node": context.get_node_id(), "gpus": [str(i) for i in ray.get_gpu_ids()], "since": time.time()}
    )
    try:
        from tlbench.driver.cluster import _normal_priority

        _normal_priority()
        function = isolated.resolve(work) if isinstance(work, str) else work
        result = function(spec, images, modes)
        return {key: value for key, value in result.items() if key not in ARRAYS}, result
    finally:
        board.stop.remote(name)


def frozen_task_name(spec: TrialSpec) -> str:
    return f"frozen-inputs-{spec.backbone}"


def told(spec: TrialSpec, ref, on_frozen) -> None:
    import ray

    try:
        summary = ray.get(ref)
    except ray.exceptions.RayError as error:
        summary = {"error": f"{type(error).__name__}: {one_line(error, 300)}"}
    if on_frozen:
        on_frozen(spec, summary)


def submit(specs, images_ref, work, resources: dict, max_retries: int, board) -> tuple[dict, dict]:
    """({frozen key: the reference of its task's whole result}, {the
    reference of its summary: the spec it was computed for}) for every key
    that two trials or more share (one trial alone computes its own)."""
    import ray

    if work is None:
        return {}, {}
    groups: dict = {}
    for spec in specs:
        groups.setdefault(spec.frozen_key(), []).append(spec)
    task = ray.remote(max_calls=1, max_retries=max_retries, retry_exceptions=False, num_returns=2)(_frozen_task)
    shared, summaries = {}, {}
    for key, members in groups.items():
        if len(members) > 1:
            modes = sorted({spec.mode for spec in members})
            summary, whole = task.options(name=frozen_task_name(members[0]), **resources).remote(
                work, members[0], images_ref, modes, board
            )
            shared[key], summaries[summary] = whole, members[0]
    return shared, summaries


def failed(ref) -> bool:
    import ray

    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.RayError:
        return True
    return False
