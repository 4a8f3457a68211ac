"""A run folder of three trials as `run` writes them (a finetune with its
learning-rate searches' validation curves, a resumed transfer, an oom), and
TensorBoard's own readers over what `report` exports from it."""

from __future__ import annotations

import json
from pathlib import Path

from tlbench import results

RUN_ID = "20261128T000000Z-h-cpu"
STARTED = "2026-11-28T21:53:00.000+00:00"


def curve(losses, start_epoch=0):
    return [
        {
            "epoch": epoch,
            "train_seconds": 1.5 * epoch,
            "train_loss": None if epoch == 0 else loss + 0.1,
            "val_accuracy": 1.0 - loss / 4,
            "val_loss": loss,
        }
        for epoch, loss in enumerate(losses, start_epoch)
    ]


def candidate(base, rate, losses, start_epoch=0):
    return {"base_learning_rate": base, "learning_rate": rate, "val_curve": curve(losses, start_epoch)}


FINETUNE = {
    "trial_id": "resnet_v2_50-finetune-bs16-digits-seed0",
    "backbone": "resnet_v2_50",
    "mode": "finetune",
    "batch_size": 16,
    "dataset": "digits",
    "seed": 0,
    "budget": "cpu",
    "batch_norm": "frozen",
    "weights": "tfhub:https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5",
    "device": "CPU:AMD EPYC",
    "status": "ok",
    "error": None,
    "started_at": STARTED,
    "finished_at": "2026-11-28T21:54:01.500+00:00",
    "seconds": 61.5,
    "learning_rate": 0.0005,
    "train_accuracy": 0.9375,
    "val_accuracy": 0.875,
    "test_accuracy": 0.8125,
    "train_images_per_sec": 7.25,
    "infer_images_per_sec": 26.5,
    "train_timing": {"repeats": 3, "images_per_sec_median": 7.25, "images_per_sec_q1": 7.0, "images_per_sec_q3": 7.5},
    "train_mfu": 0.375,
    "peak_memory_bytes": 3 * 2**30,
    "activation_memory_bytes": 2**30,
    "peak_rss_bytes": 5 * 2**30,
    "runtime_overhead_bytes": 2 * 2**30,
    "device_memory_bytes": 24 * 2**30,
    "max_batch_size_predicted": 342,
    "max_batch_size_found": 16,  # as if --batch-size max had chosen this batch
    "time_to_accuracy_seconds": 12.0,
    "timing_quality": "measured",
    "unstable": {"infer_images_per_sec": "windows spread 14%"},
    # The final stage starts at epoch 0 (the probed head); the chosen rate is the second.
    "lr_search": [candidate(0.0005, 0.0003535, [2.0, 1.9, 1.95]), candidate(0.001, 0.0005, [2.0, 1.5, 1.0, 1.25])],
    "probe_lr_search": [candidate(0.003, 0.002, [2.2, 2.1], start_epoch=1)],
}
TRANSFER = {
    "trial_id": "mobilenet_v2_035_128-transfer-bs8-digits-seed1",
    "backbone": "mobilenet_v2_035_128",
    "mode": "transfer",
    "batch_size": 8,
    "dataset": "digits",
    "seed": 1,
    "weights": "local:/models/mobilenet",
    "status": "ok",
    "learning_rate": 0.002,
    "test_accuracy": 0.5,
    "train_images_per_sec": 400.0,
    "lr_search": [candidate(0.004, 0.002, [1.0, 0.5], start_epoch=1)],
}
OOM = {
    "trial_id": "mobilenet_v2_035_128-finetune-bs8-digits-seed0",
    "backbone": "mobilenet_v2_035_128",
    "mode": "finetune",
    "batch_size": 8,
    "dataset": "digits",
    "seed": 0,
    "status": "oom",
    "error": 'ResourceExhaustedError: OOM when allocating "conv", shape [8,64]',
}
# The transfer trial failed first and ran again on --resume: its last record counts.
LINES = [{**TRANSFER, "status": "error", "error": "RuntimeError: worker died"}, FINETUNE, TRANSFER, OOM]


def run_folder(tmp_path: Path) -> Path:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    for line in LINES:
        results.append_record(run_dir, line)
    (run_dir / results.ENV).write_text(json.dumps({"host": "h"}))
    return run_dir


def hparams_plugin(logdir: Path):
    """TensorBoard's HParams plugin over `logdir`, as `tensorboard --logdir`
    serves it: its routes as a WSGI test client each."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug.test import Client

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=str(logdir),
        multiplexer=multiplexer,
        data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logdir)),
    )
    routes = hparams_plugin.HParamsPlugin(context).get_plugin_apps()
    return multiplexer, {route: Client(app) for route, app in routes.items()}


def session_groups(logdir: Path) -> dict[str, dict]:
    _, routes = hparams_plugin(logdir)
    statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
    request = {"experimentName": "", "allowedStatuses": statuses, "startIndex": 0, "sliceSize": 100}
    answer = routes["/session_groups"].post("/", json=request).get_json()
    assert answer["totalSize"] == len(answer["sessionGroups"])
    return {group["name"]: group for group in answer["sessionGroups"]}
