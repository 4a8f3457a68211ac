"""A run folder opens in TensorBoard and pandas: `report` writes
tensorboard/ (read back here by TensorBoard's own loader and HParams plugin)
and trials.csv (read back with `csv`)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tlbench import results
from tlbench.cli import main
from tlbench.reports import export

RUN_ID = "20261128T000000Z-h-cpu"
STARTED = "2026-11-28T21:53:00.000+00:00"


def _curve(losses, start_epoch=0):
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


def _candidate(base, rate, losses, start_epoch=0):
    return {"base_learning_rate": base, "learning_rate": rate, "val_curve": _curve(losses, start_epoch)}


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
    "time_to_accuracy_seconds": 12.0,
    "timing_quality": "measured",
    "unstable": {"infer_images_per_sec": "windows spread 14%"},
    # The final stage starts at epoch 0 (the probed head); the chosen rate is the second.
    "lr_search": [_candidate(0.0005, 0.0003535, [2.0, 1.9, 1.95]), _candidate(0.001, 0.0005, [2.0, 1.5, 1.0, 1.25])],
    "probe_lr_search": [_candidate(0.003, 0.002, [2.2, 2.1], start_epoch=1)],
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
    "lr_search": [_candidate(0.004, 0.002, [1.0, 0.5], start_epoch=1)],
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


def _run_folder(tmp_path: Path) -> Path:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    for line in LINES:
        results.append_record(run_dir, line)
    (run_dir / results.ENV).write_text(json.dumps({"host": "h"}))
    return run_dir


def _hparams_plugin(logdir: Path):
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


def _session_groups(logdir: Path) -> dict[str, dict]:
    _, routes = _hparams_plugin(logdir)
    statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
    request = {"experimentName": "", "allowedStatuses": statuses, "startIndex": 0, "sliceSize": 100}
    answer = routes["/session_groups"].post("/", json=request).get_json()
    assert answer["totalSize"] == len(answer["sessionGroups"])
    return {group["name"]: group for group in answer["sessionGroups"]}


def test_each_trial_is_one_hparams_session_with_its_choices_figures_and_validation_curve(tmp_path, run_in_subprocess):
    from tensorboard.util import tensor_util

    run_dir = _run_folder(tmp_path)
    done = run_in_subprocess("report", run_dir)  # fails if the driver imported TensorFlow
    assert done.returncode == 0, done.stderr
    groups = _session_groups(run_dir)  # `tensorboard --logdir RUN` as well as --logdir results/
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

    multiplexer, _ = _hparams_plugin(run_dir)
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


def test_a_second_report_replaces_the_sessions_rather_than_adding_to_them(tmp_path, capsys):
    run_dir = _run_folder(tmp_path)
    crashed = run_dir / f".{results.TENSORBOARD}-999999999-x"  # a render that died (no such process)
    (crashed / results.TENSORBOARD / "old-trial").mkdir(parents=True)
    assert main(["report", str(run_dir)]) == 0
    first = {p.relative_to(run_dir): p.read_bytes() for p in (run_dir / results.TENSORBOARD).rglob("*") if p.is_file()}
    assert main(["report", str(run_dir)]) == 0
    second = {p.relative_to(run_dir): p.read_bytes() for p in (run_dir / results.TENSORBOARD).rglob("*") if p.is_file()}
    assert first == second  # the same records: the same files, byte for byte
    assert len(second) == 1 + 3  # the experiment, one session per trial
    # Nothing left beside it for a --logdir over the results folder to find twice.
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != results.LOCK]
    assert len(_session_groups(run_dir.parent)) == 3


def test_trials_csv_has_one_row_per_trial_with_plain_numbers(tmp_path):
    from tlbench.reports.report import write_report

    run_dir = _run_folder(tmp_path)
    write_report(results.read_run(run_dir))
    with open(run_dir / results.TRIALS_CSV, newline="") as f:
        reader = csv.DictReader(f)
        rows = {row["trial_id"]: row for row in reader}
        assert tuple(reader.fieldnames) == export.CSV_FIELDS
    trial_ids = {json.loads(line)["trial_id"] for line in (run_dir / results.TRIALS).read_text().splitlines()}
    assert rows.keys() == trial_ids and len(LINES) == len(trial_ids) + 1

    finetune = rows[FINETUNE["trial_id"]]
    for name in ("test_accuracy", "train_images_per_sec", "train_mfu", "learning_rate", "seconds"):
        assert float(finetune[name]) == FINETUNE[name]
    assert int(finetune["peak_memory_bytes"]) == 3 * 2**30 and int(finetune["batch_size"]) == 16
    assert (float(finetune["train_images_per_sec_q1"]), float(finetune["train_images_per_sec_q3"])) == (7.0, 7.5)
    assert finetune["weights"] == FINETUNE["weights"] and finetune["unstable"] == "infer_images_per_sec"
    assert finetune["error"] == "" and finetune["infer_images_per_sec_q1"] == ""  # missing: an empty cell
    transfer = rows[TRANSFER["trial_id"]]
    assert (transfer["status"], transfer["error"], transfer["seed"]) == ("ok", "", "1")  # the resumed record
    assert rows[OOM["trial_id"]]["error"] == OOM["error"]  # quotes and commas survive


def test_a_full_disk_leaves_the_old_tensorboard_folder_whole(tmp_path):
    from disks import fill, small_disk

    with small_disk(tmp_path / "disk") as disk:
        run_dir = _run_folder(disk)
        run = results.read_run(run_dir)
        target = run_dir / results.TENSORBOARD
        export.write_tensorboard(run, target)
        before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        fill(disk)
        run.records.append({**OOM, "trial_id": "another-trial"})
        with pytest.raises(OSError) as raised:
            export.write_tensorboard(run, target)
        assert raised.value.filename == str(target) and "No space left" in raised.value.strerror
        assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
        assert sorted(p.name for p in run_dir.iterdir()) == sorted([results.ENV, results.TRIALS, results.TENSORBOARD])


def test_a_tensorboard_folder_that_cannot_be_replaced_fails_the_report_with_one_line(tmp_path, capsys):
    """A mount point can't be renamed (EBUSY): the report's files stay as they
    were too, since they replace the old ones together with trials.csv."""
    from disks import small_disk

    run_dir = _run_folder(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    report_before = (run_dir / results.REPORT_MD).read_bytes()
    results.append_record(run_dir, {**OOM, "trial_id": "another-trial"})
    csv_before = (run_dir / results.TRIALS_CSV).read_bytes()
    shutil.rmtree(run_dir / results.TENSORBOARD)
    with small_disk(run_dir / results.TENSORBOARD):
        capsys.readouterr()
        assert main(["report", str(run_dir)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            f"tlbench: error: can't write {run_dir / results.TENSORBOARD} (Device or resource busy); "
            "the report is printed above, its files are as they were"
        )
    ]
    assert (run_dir / results.REPORT_MD).read_bytes() == report_before
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != results.LOCK]
    assert (run_dir / results.TRIALS_CSV).read_bytes() == csv_before
