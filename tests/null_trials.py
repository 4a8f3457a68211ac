"""Null trials for the driver's tests: what a trial returns, without
TensorFlow. They run in real Ray worker processes through the runner's
`work=` seam; a test picks their behaviour with files in a control folder
(set by TLBENCH_TEST_CONTROL, which Ray's workers inherit).

- `quick_trial`: an `ok` record with made-up figures, at once (fine-tuning's
  chosen rate 3e-4, or the one carried from a smaller batch); an `error`
  record instead for a trial named in `<control>/fail` (one id per line).
  Every start is appended to `<control>/started` (trial id, pid, GPU ids).
  A trial named in `<control>/hold` ("ID N" lines; "*" for every trial) waits
  at its first N starts until `<control>/go-ID` exists (or is killed), so a
  test can interrupt, kill or fill the disk while it runs.
  Given frozen inputs (`frozen_inputs`'), its record says which computation
  made them and where, as a real trial's `frozen_inputs` does.
- `frozen_inputs`: the frozen work, once per backbone: appends a line to
  `<control>/frozen` and returns an id, its node and a 1 MB array (which a
  trial on another node pulls through Ray's object store); a backbone named
  in `<control>/hold-frozen` waits until `<control>/go-frozen-BACKBONE`
  exists; its end is appended to `<control>/frozen-ended`.
- `prepare_standin` / `refuse_prepare`: the runner's `prepare` step.
- `predict_batch` / `probe_batch`: --batch-size max's worker side on a
  device where batches up to FITS_UP_TO fit, the prediction PREDICTED; every
  probe is appended to `<control>/probes` (batch, pid).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tlbench import record

CONTROL = "TLBENCH_TEST_CONTROL"
FORWARD_FLOPS = {"resnet_v2_50": 8_200_000_000, "mobilenet_v2_035_128": 60_000_000}


def _control() -> Path:
    return Path(os.environ[CONTROL])


def _lines(name: str) -> list[str]:
    path = _control() / name
    return path.read_text().split() if path.exists() else []


FROZEN_VALUES = 2**18  # float32: 1 MiB


def frozen_inputs(spec, images, modes) -> dict:
    import uuid

    import numpy as np
    import ray

    with open(_control() / "frozen", "a") as f:
        f.write(json.dumps({"backbone": spec.backbone, "modes": modes, "pid": os.getpid()}) + "\n")
    if spec.backbone in _lines("hold-frozen"):
        while not (_control() / f"go-frozen-{spec.backbone}").exists():  # the test's signal
            time.sleep(0.02)
    with open(_control() / "frozen-ended", "a") as f:
        f.write(json.dumps({"backbone": spec.backbone, "at": time.time()}) + "\n")
    return {
        "computation": uuid.uuid4().hex[:12],
        "node_id": ray.get_runtime_context().get_node_id(),
        "seconds": 0.0,
        "feature_images_per_sec": 100.0,
        "setup_seconds": 1.0,
        "top_share": {},
        "logme": 0.5,
        "ridge_val_accuracy": 0.625,
        "features": {"train": np.arange(FROZEN_VALUES, dtype=np.float32)},
    }


def quick_trial(spec, images, frozen=None) -> dict:
    import ray

    with open(_control() / "started", "a") as f:  # one short line per append: whole lines
        at = time.time()
        f.write(json.dumps({"trial_id": spec.trial_id, "pid": os.getpid(), "gpus": ray.get_gpu_ids(), "at": at}) + "\n")
    _wait_if_held(spec.trial_id)
    if spec.trial_id in _lines("fail"):
        return record.make(**spec.record_fields(), status=record.Status.ERROR, error="RuntimeError: asked to fail")
    shared = {}
    if frozen is not None:
        arrived = frozen["features"]["train"]
        assert arrived.shape == (FROZEN_VALUES,) and float(arrived[-1]) == FROZEN_VALUES - 1
        shared = {"frozen_inputs": {"shared": True, **{k: frozen[k] for k in ("computation", "node_id", "seconds")}}}
    return record.make(
        **spec.record_fields(),
        **shared,
        status=record.Status.OK,
        error=None,
        seconds=0.0,
        process_id=os.getpid(),
        num_classes=images.num_classes,
        test_accuracy=0.625,
        val_accuracy=0.5,
        train_images_per_sec=100.0 / spec.batch_size,
        infer_images_per_sec=300.0 / spec.batch_size,
        peak_memory_bytes=2**20 * spec.batch_size,
        # Fine-tuning's chosen rate: carried from a smaller batch's trial (carry.py), else "searched".
        base_learning_rate=(spec.carried_rate.base_learning_rate if spec.carried_rate else 3e-4)
        if spec.mode != "transfer"
        else None,
        # As long as a real record (its search's validation curves): a few kB.
        lr_search=[
            {
                "base_learning_rate": rate,
                "val_curve": [
                    {
                        "epoch": e,
                        "train_seconds": 0.25 * e,
                        "train_loss": 1.0 / (e + 1),
                        "val_accuracy": 0.5,
                        "val_loss": 1.0,
                    }
                    for e in range(20)
                ],
            }
            for rate in (1e-4, 3e-4)
        ],
    )


def _wait_if_held(trial_id: str) -> None:
    holds = dict(zip(*[iter(_lines("hold"))] * 2))
    times = holds.get(trial_id, holds.get("*"))
    starts = sum(1 for s in started() if s["trial_id"] == trial_id)
    if times is None or starts > int(times):
        return
    while not (_control() / f"go-{trial_id}").exists():  # the test's signal
        time.sleep(0.02)


def started() -> list[dict]:
    path = _control() / "started"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def prepare_standin(backbones, policy, modules, batch_norm_momentum) -> dict:
    """Every backbone's weights from the folder named in `<control>/module`
    (a local SavedModel folder), else a stand-in."""
    module = _lines("module")
    source = {"kind": "local", "location": module[0], "note": None} if module else {
        "kind": "standin", "location": "/cache/standin", "note": "a test"}  # fmt: skip
    return {
        "sources": {name: dict(source) for name in backbones},
        "forward_flops": {name: FORWARD_FLOPS[name] for name in backbones},
    }


FITS_UP_TO = {"transfer": 40, "finetune": 9}
PREDICTED = {"transfer": 50, "finetune": 8}


def predict_batch(spec, images) -> dict:
    return {"trial_id": spec.trial_id, "max_batch_size_predicted": PREDICTED[spec.mode], "device_memory_bytes": 2**30}


def probe_batch(spec, images) -> dict:
    with open(_control() / "probes", "a") as f:
        f.write(json.dumps({"trial_id": spec.trial_id, "batch_size": spec.batch_size, "pid": os.getpid()}) + "\n")
    fits = spec.batch_size <= FITS_UP_TO[spec.mode]
    return {
        "trial_id": spec.trial_id,
        "status": "ok" if fits else "oom",
        "peak_memory_bytes": 2**20 * spec.batch_size if fits else None,
        "error": None if fits else "ResourceExhaustedError: OOM when allocating tensor",
        "seconds": 0.0,
    }


def probes() -> list[dict]:
    path = _control() / "probes"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def refuse_prepare(*args) -> dict:
    raise AssertionError("a resumed run must not choose weights again")


def wait_for_start(count: int, deadline_seconds: float = 300) -> dict:
    """The `count`-th start (1-based), once a worker has made it; the driver's
    side of the hand-over (a generous deadline: only a hang reaches it)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        starts = started()
        if len(starts) >= count:
            return starts[count - 1]
        time.sleep(0.02)
    raise AssertionError(f"no start number {count} within {deadline_seconds} s: {started()}")


def frozen_ended() -> dict:
    """{backbone: when its frozen task ended (time.time())}."""
    path = _control() / "frozen-ended"
    lines = path.read_text().splitlines() if path.exists() else []
    return {line["backbone"]: line["at"] for line in map(json.loads, lines)}


def release(trial_id: str) -> None:
    (_control() / f"go-{trial_id}").touch()


def main(argv=None) -> int:
    """`python -m null_trials start|resume ...`: the runner with null trials
    in a process of its own (its own local Ray, or --address), as `run` runs
    it; for tests that interrupt a run or need another cluster shape."""
    import argparse
    import faulthandler
    import signal

    from rich.console import Console

    from tlbench.driver import runner
    from tlbench.driver.request import RunRequest

    parser = argparse.ArgumentParser(prog="null_trials")
    parser.add_argument("command", choices=("start", "resume"))
    parser.add_argument("folder", help="start: the parent of run folders; resume: the run folder")
    parser.add_argument("--address")
    parser.add_argument("--backbone", nargs="+", default=[])
    parser.add_argument("--mode", nargs="+", default=[])
    parser.add_argument("--batch-size", nargs="+", type=int, default=[])
    parser.add_argument("--refuse-prepare", action="store_true", help="fail if weights are chosen (again)")
    parser.add_argument("--share-frozen", action="store_true", help="frozen inputs once per backbone (frozen_inputs)")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # a test that waits in vain gets the stack
    # Started as a background job of a shell without job control (a CI script's
    # `&`, nohup), SIGINT comes ignored, and tlbench rightly leaves it so; the
    # tests send Ctrl-C as a terminal would, to a process that takes it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workers = runner.Workers(
        frozen="null_trials:frozen_inputs" if args.share_frozen else None,
        trial="null_trials:quick_trial",
        prepare=refuse_prepare if args.refuse_prepare else prepare_standin,
    )
    settings = runner.Settings(out=args.folder, address=args.address)
    console = Console(width=240)
    if args.command == "resume":
        return runner.resume(Path(args.folder), settings, console, workers)
    request = RunRequest("digits", tuple(args.backbone), tuple(args.mode), tuple(args.batch_size), quick=True)
    return runner.start(request, settings, console, workers)


if __name__ == "__main__":
    raise SystemExit(main())
