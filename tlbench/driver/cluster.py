"""Ray: start a local cluster or join one, place trials, collect records.

Every trial is a Ray task in a fresh worker process (`max_calls=1`): no
TensorFlow state, graph or allocator statistics carry over from one trial to
the next. With GPUs, each trial gets one (Ray sets CUDA_VISIBLE_DEVICES) and
as many run at once as there are GPUs; on CPU-only nodes a trial takes every
core of its node, so trials never share cores and corrupt each other's
timings. This module never imports TensorFlow, nor the code of backbones:
what a trial does is passed in (`work`), by name or as a function. SIGTERM
stops a command as Ctrl-C does (`stop_signals`), not as Ray's handler would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlbench import isolated, record, run_env
from tlbench.data import ImageSet
from tlbench.device_memory import EMULATION_ENV
from tlbench.driver import frozen_tasks, stopping
from tlbench.driver.carry import RateCarrier
from tlbench.errors import UsageError, one_line, os_reason
from tlbench.plan import TrialSpec

# A real trial: spec and images in, record out, in the worker process.
TRIAL = "tlbench.worker.trial:run_trial"
FROZEN = "tlbench.worker.frozen:compute"  # (spec, images, modes) -> a backbone's frozen inputs

# Ray keeps sockets under its temp dir, and Unix socket paths are short.
RAY_TEMP_DIR = Path(tempfile.gettempdir()) / "tlbench-ray"
OBJECT_STORE_BYTES = 256 * 1024 * 1024  # records are small; don't reserve GBs of /dev/shm
PROBE_SECONDS = 5
REFRESH_SECONDS = 1.0  # how often the live view learns what runs where
# Ray picks a local cluster's address with this switch (read when Ray is
# imported): off, every socket of a local Ray binds to 127.0.0.1 and nothing
# on the network can reach it. Otherwise Ray replaces 127.0.0.1 by the
# machine's address even when asked for loopback.
RAY_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray starts its worker processes at niceness 15 (its `worker_niceness`), so
# that they yield to its own daemons. A trial is timed: at 15 every other
# process of its scheduling group (the driver, Ray's daemons; on a kernel
# without autogroups, every process of the machine) takes its cores first,
# while a loop timed elsewhere runs at 0. A local Ray starts them at 0.
WORKER_NICENESS = 0


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # "local" or what was joined
    nodes: int
    cpus: int  # logical CPUs, all nodes
    gpus: int  # GPUs, all nodes
    cpus_per_trial: int  # on CPU-only clusters: every core of the smallest node
    owned: bool = True  # this process started or joined it, and shuts it down

    @property
    def device_tag(self) -> str:
        return f"{self.gpus}gpu" if self.gpus else "cpu"

    @property
    def parallel_trials(self) -> int:
        """About how many trials run at once (exact on uniform nodes)."""
        return self.gpus or max(1, self.cpus // self.cpus_per_trial)

    def trial_resources(self) -> dict:
        if self.gpus:
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_cpus": self.cpus_per_trial}

    def env_fields(self) -> run_env.Cluster:
        return {
            "address": self.address,
            "nodes": self.nodes,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "trial_resources": self.trial_resources(),
        }


def connect(address: str | None, concurrency: int | None = None) -> ClusterInfo:
    """Join `address` (or RAY_ADDRESS); with neither, start a local Ray bound
    to loopback only, the dashboard off, its temporary files under
    RAY_TEMP_DIR. A Ray this process has already started or joined (a
    notebook's, a test session's) is used as it is, and left running.

    `concurrency`: trials at once per CPU-only node (default 1: a trial gets
    every core of its node). With GPUs a trial gets one GPU and one CPU."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:  # before anything else: an address nobody answers at is one line, at once
        _check_reachable(address)
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return _describe(sys.modules["ray"], "this process's Ray", concurrency, owned=False)
    if not address and "ray" not in sys.modules:
        # Read once, when Ray is imported; Ray's processes inherit it. (A
        # process that imported Ray before keeps Ray's own choice.)
        os.environ[RAY_LOOPBACK_SWITCH] = "0"
    import ray

    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    try:
        with _stop_signals_kept():
            if address:
                ray.init(address=address, **common)
            else:
                RAY_TEMP_DIR.mkdir(parents=True, exist_ok=True)
                ray.init(
                    address="local",
                    include_dashboard=False,
                    _temp_dir=str(RAY_TEMP_DIR),
                    object_store_memory=OBJECT_STORE_BYTES,
                    _system_config={"worker_niceness": WORKER_NICENESS},
                    **common,
                )
    except Exception as error:  # noqa: BLE001 - whatever Ray raises, the user needs one line
        raise UsageError(f"can't start or join Ray at '{address or 'local'}': {one_line(error)}") from None
    return _describe(ray, address or "local", concurrency, owned=True)


def _describe(ray, address: str, concurrency: int | None, owned: bool) -> ClusterInfo:
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    node_cpus = [int(n.get("CPU", 0)) for n in nodes]
    info = ClusterInfo(
        address=address,
        nodes=len(nodes),
        cpus=sum(node_cpus),
        gpus=int(sum(n.get("GPU", 0) for n in nodes)),
        cpus_per_trial=max(1, min((c for c in node_cpus if c > 0), default=1) // (concurrency or 1)),
        owned=owned,
    )
    # A task that fits no node would wait forever: say so now instead.
    wanted = info.trial_resources()
    if not any(n.get("CPU", 0) >= wanted["num_cpus"] and n.get("GPU", 0) >= wanted.get("num_gpus", 0) for n in nodes):
        release(info)
        raise UsageError(
            f"no node of the Ray cluster at '{info.address}' can give a trial {wanted} "
            f"(nodes: {[{k: n.get(k, 0) for k in ('CPU', 'GPU')} for n in nodes]})"
        )
    return info


def _check_reachable(address: str) -> None:
    """Ray keeps retrying an address where nothing listens; a TCP probe of a
    `host:port` address (also `ray://host:port`) answers at once."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise UsageError(
            f"can't start or join Ray at '{address}': nothing answers there ({os_reason(error)}); "
            "start a head node with 'ray start --head' or leave out --address"
        ) from None


@contextlib.contextmanager
def _stop_signals_kept():
    """ray.init puts in its own SIGTERM handlers, a Python one (sys.exit(15))
    and then a C one that dumps the stack before it: while `stop_signals` is
    in force, ours is put back, and a SIGTERM during ray.init is `Terminated`."""
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == stopping.on_stop_signal
    )
    try:
        yield
    except SystemExit as exit:
        if ours and exit.code == signal.SIGTERM:
            stopping.raise_stop(signal.SIGTERM)
        raise
    finally:
        if ours:
            signal.signal(signal.SIGTERM, stopping.on_stop_signal)


def release(info: ClusterInfo | None) -> None:
    """Shut down (or leave) the Ray this process started or joined; one it
    found already running stays, and so does any Ray when `connect` never
    returned (`info` None: a refused address, a failed start)."""
    if info is None or not info.owned:
        return
    import ray

    if ray.is_initialized():
        with stopping.interrupts_held():  # a second Ctrl-C or SIGTERM lets the shutdown finish first
            ray.shutdown()


class _Board:
    """Where the running trials are: workers check in when they start, the
    driver reads it for the live view (the Ray dashboard may be off)."""

    def __init__(self):
        self.running = {}

    def start(self, trial_id, where):
        self.running[trial_id] = where

    def stop(self, trial_id):
        self.running.pop(trial_id, None)

    def read(self):
        return dict(self.running)


def _normal_priority() -> int:
    """The worker's niceness brought back to WORKER_NICENESS where this
    process may (a cluster started by `ray start` runs its workers at 15,
    and only a privileged process may lower it); the niceness the trial
    runs at, which its record keeps."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(os.getpriority(os.PRIO_PROCESS, 0), WORKER_NICENESS))
    except (OSError, AttributeError):  # not permitted, or not POSIX
        pass
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except AttributeError:
        return 0


def _trial_task(work, spec: TrialSpec, images, board, frozen=None) -> dict:
    """In the worker: check in on the board, run `work(spec, images)` (a
    function, or a "module:function" name imported here; with `frozen`, the
    backbone's frozen inputs, `work(spec, images, frozen)`), add where it ran."""
    import time

    import ray

    context = ray.get_runtime_context()
    placement = record.make(
        # Before TensorFlow starts its threads, which inherit it.
        worker_niceness=_normal_priority(),
        node_id=context.get_node_id(),
        ray_gpu_ids=[str(i) for i in ray.get_gpu_ids()],
        # Ray sets this from the GPUs it assigned, before TensorFlow starts.
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
    board.start.remote(
        spec.trial_id, {"node": placement["node_id"], "gpus": placement["ray_gpu_ids"], "since": time.time()}
    )
    try:
        function = isolated.resolve(work) if isinstance(work, str) else work
        return {**(function(spec, images) if frozen is None else function(spec, images, frozen)), **placement}
    finally:
        board.stop.remote(spec.trial_id)


def run_trials(
    specs,
    images: ImageSet,
    cluster: ClusterInfo,
    on_record: Callable[[dict], None],
    max_retries: int = 1,
    on_running: Callable[[dict], None] | None = None,
    work: str | Callable = TRIAL,
    frozen_work: str | Callable | None = None,
    on_frozen: Callable[[TrialSpec, dict], None] | None = None,
    carrier: RateCarrier | None = None,
) -> None:
    """Run every spec as its own Ray task and hand each record to `on_record`
    as soon as its trial ends. A worker process or node that dies is retried
    `max_retries` times, then becomes an "error" record. Out-of-memory is not
    retried: the trial catches it and returns an "oom" record. `on_running`
    gets {trial id: where} of the running trials about once a second.
    `work(spec, images) -> record` runs in the worker: a real trial by
    default; tests and the scheduling benchmark pass null trials. Specs are
    submitted in the order given (see plan.longest_first).
    The dataset, checked once by the driver, goes to the workers through Ray's
    object store rather than being read again by every trial.

    `frozen_work` (FROZEN): the frozen inputs of the trials that share a
    plan.TrialSpec.frozen_key (a backbone's features, and its partial modes'
    boundary activations) are computed by one task, submitted first, and
    reach each trial through the object store, pulled to the trial's node; a
    trial is scheduled once they are there. Should that task's worker die,
    its trials run again computing their own. `on_frozen(spec, summary)`
    gets what each computation found, without its arrays, as it ends; the
    trials are submitted once every computation has ended, so that each
    backbone's early answer comes before any trial takes the cores.

    `carrier` (carry.RateCarrier of these specs): the trials that wait for a
    smaller batch size's fine-tuning rate are submitted when its record comes."""
    import ray

    task = ray.remote(max_calls=1, max_retries=max_retries, retry_exceptions=False)(_trial_task)
    board = ray.remote(num_cpus=0)(_Board).remote()
    resources = cluster.trial_resources()
    if not cluster.gpus and any(spec.device_memory is not None for spec in specs):  # a device emulated on the CPU
        resources["runtime_env"] = {"env_vars": dict(EMULATION_ENV)}
    images_ref = ray.put(images)
    shared, summaries = frozen_tasks.submit(specs, images_ref, frozen_work, resources, max_retries, board)
    pending = {}

    def submit(spec, frozen=None) -> None:
        args = (work, spec, images_ref, board) + (() if frozen is None else (frozen,))
        pending[task.options(name=spec.trial_id, **resources).remote(*args)] = (spec, frozen)

    carrier = carrier or RateCarrier(specs)
    # The trials wait until every frozen task has told its early answer: Ray doesn't run ready tasks in the
    # order they came, and a trial taking the cores first delayed another backbone's answer by minutes.
    held = list(carrier.ready())

    def release_held() -> None:
        for spec in held:
            submit(spec, shared.get(spec.frozen_key()))
        held.clear()

    if not summaries:
        release_held()
    try:
        while pending or held:
            ready, _ = ray.wait([*summaries, *pending], num_returns=1, timeout=REFRESH_SECONDS)
            if on_running:
                on_running(ray.get(board.read.remote()))
            if not ready:
                continue
            (ref,) = ready
            if ref in summaries:
                frozen_tasks.told(summaries.pop(ref), ref, on_frozen)
                if not summaries:
                    release_held()
                continue
            spec, frozen = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                if frozen is not None and frozen_tasks.failed(frozen):  # never ran: its frozen inputs were lost
                    submit(spec)
                    continue
                result = record.make(
                    **spec.record_fields(),
                    status=record.Status.ERROR,
                    error=f"{type(error).__name__}: {one_line(error, 500)}",
                    seconds=None,  # the worker died before it could say
                )
                board.stop.remote(spec.trial_id)  # it could not check out itself
            on_record(result)
            for waited in carrier.released(result):
                submit(waited, shared.get(waited.frozen_key()))
    finally:
        for ref in [*pending, *shared.values()]:  # interrupted: stop what is still running
            ray.cancel(ref, force=True)
