"""A run folder opens in TensorBoard and pandas: `report` writes tensorboard/
and trials.csv (read back with `csv`), whole or not at all. Read back by
TensorBoard's own loader and HParams plugin (which import TensorFlow):
tests/worker/test_export_read_back.py, and after the command in a process of
its own, tests/system/test_export_command.py."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from exported_run import FINETUNE, LINES, OOM, TRANSFER, run_folder

from tlbench import results
from tlbench.cli import main
from tlbench.reports import export


def test_trials_csv_has_one_row_per_trial_with_plain_numbers(tmp_path):
    from reporting import write_report

    run_dir = run_folder(tmp_path)
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
        run_dir = run_folder(disk)
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

    run_dir = run_folder(tmp_path)
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
