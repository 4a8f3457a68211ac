"""Each trial is one HParams session in TensorBoard, with its choices, its
figures and its validation curves, after `report` through the command in a
process of its own (which fails if the driver imported TensorFlow)."""

from __future__ import annotations

import pytest
from exported_run import FINETUNE, OOM, RUN_ID, TRANSFER, hparams_plugin, run_folder, session_groups

from tlbench.reports import export


def test_each_trial_is_one_hparams_session_with_its_choices_figures_and_validation_curve(tmp_path, run_in_subprocess):
    from tensorboard.util import tensor_util

    run_dir = run_folder(tmp_path)
    done = run_in_subprocess("report", run_dir)  # fails if the driver imported TensorFlow
    assert done.returncode == 0, done.stderr
    groups = session_groups(run_dir)  # `tensorboard --logdir RUN` as well as --logdir results/
    assert groups.keys() == {f"{RUN_ID}/{r['trial_id']}" for r in (FINETUNE, TRANSFER, OOM)}

    finetune = groups[f"{RUN_ID}/{FINETUNE['trial_id']}"]
    assert finetune["hparams"] == {
        "backbone": "resnet_v2_50",
        "mode": "finetune",
        "batch_size": 16,
        "seed": 0,
        "dataset": "digits",
        "weights": "tfhub",
        "budget": "cpu",
        "batch_norm": "frozen",
        "learning_rate": 0.0005,
        "device": "CPU:AMD EPYC",
        "status": "ok",
    }
    (session,) = finetune["sessions"]
    assert session["name"] == f"tensorboard/{FINETUNE['trial_id']}" and session["status"] == "STATUS_SUCCESS"
    metrics = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
    assert metrics == pytest.approx({field: FINETUNE[field] for field, _ in export.METRICS}, rel=1e-6)

    transfer = groups[f"{RUN_ID}/{TRANSFER['trial_id']}"]
    assert transfer["hparams"]["status"] == "ok" and transfer["hparams"]["weights"] == "local"
    assert "batch_norm" not in transfer["hparams"]  # not in the record: no value, not a made-up one
    oom = groups[f"{RUN_ID}/{OOM['trial_id']}"]
    assert oom["hparams"]["status"] == "oom" and oom["sessions"][0]["status"] == "STATUS_FAILURE"
    assert oom["sessions"][0]["metricValues"] == []

    multiplexer, _ = hparams_plugin(run_dir)
    run = f"tensorboard/{FINETUNE['trial_id']}"

    def curve(tag):
        events = multiplexer.Tensors(run, tag)
        return [e.step for e in events], [tensor_util.make_ndarray(e.tensor_proto).item() for e in events]

    chosen = FINETUNE["lr_search"][1]["val_curve"]  # learning_rate 0.0005, as the record chose
    assert curve("val_curve/val_loss") == ([0, 1, 2, 3], pytest.approx([p["val_loss"] for p in chosen]))
    assert curve("val_curve/val_accuracy")[1] == pytest.approx([p["val_accuracy"] for p in chosen])
    assert curve("val_curve/train_loss") == ([1, 2, 3], pytest.approx([p["train_loss"] for p in chosen[1:]]))
    assert curve("lr_search/lr=0.0003535/val_loss") == ([0, 1, 2], pytest.approx([2.0, 1.9, 1.95]))
    assert curve("probe_lr_search/lr=0.002/val_loss") == ([1, 2], pytest.approx([2.2, 2.1]))
    wall_times = [e.wall_time for e in multiplexer.Tensors(run, "val_curve/val_loss")]
    assert wall_times[1] - wall_times[0] == pytest.approx(1.5)  # the start plus training seconds so far
