import errno
import json
import re

import pytest
from disks import fill, read_only, small_disk
from records import record

from tlbench import files, results
from tlbench.errors import ResultsUnwritable, UsageError


def _record(i, status="ok"):
    return record(f"t{i}", status=status)


def test_run_ids_are_never_reused(tmp_path):
    first = results.new_run_dir(tmp_path, "cpu")
    second = results.new_run_dir(tmp_path, "cpu")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("-cpu") and first.name[:8].isdigit()


def test_records_round_trip_one_line_each(tmp_path):
    for i in range(3):
        results.append_record(tmp_path, _record(i))
    lines = (tmp_path / results.TRIALS).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["trial_id"] == f"t{i}" for i, line in enumerate(lines))
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["t0", "t1", "t2"] and not run.warnings


def test_a_cut_last_line_loses_only_that_line(tmp_path):
    for i in range(2):
        results.append_record(tmp_path, _record(i))
    with open(tmp_path / results.TRIALS, "a") as f:
        f.write('{"trial_id": "t2", "backb')  # a crash mid-write
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["t0", "t1"]
    assert run.warnings == [f"{results.TRIALS} line 3 is cut or garbled; skipped"]


def test_records_without_required_keys_are_skipped_with_a_warning(tmp_path):
    (tmp_path / results.TRIALS).write_text('{"trial_id": "old"}\n[1, 2]\n' + json.dumps(_record(1)) + "\n")
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["t1"]
    assert len(run.warnings) == 2


def test_env_json_is_written_atomically(tmp_path):
    files.write_json_atomic(tmp_path / results.ENV, {"a": 1})
    files.write_json_atomic(tmp_path / results.ENV, {"a": 2})
    assert json.loads((tmp_path / results.ENV).read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == [results.ENV]


def test_out_must_be_a_writable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        results.prepare_parent(str(tmp_path / "file"))
    new = results.prepare_parent(str(tmp_path / "new" / "runs"))
    assert not (tmp_path / "new").exists()  # made with the first run folder: a refused run leaves nothing
    assert results.new_run_dir(new, "cpu").parent == new and new.is_dir()
    with pytest.raises(UsageError, match="can't be created: .* is a file"):
        results.prepare_parent(str(tmp_path / "file" / "runs"))


def test_reading_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UsageError, match="not a tlbench run folder"):
        results.read_run(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        results.read_run(tmp_path / "absent")
    with pytest.raises(UsageError, match="no run folders"):
        results.latest_run_dir(tmp_path)


def test_latest_run_dir_is_the_newest(tmp_path):
    for name in ("20260101T000000Z-h-cpu", "20261231T000000Z-h-cpu", "20260601T000000Z-h-cpu"):
        (tmp_path / name).mkdir()
        results.append_record(tmp_path / name, _record(0))
    assert results.latest_run_dir(tmp_path).name == "20261231T000000Z-h-cpu"


def test_the_last_record_of_a_trial_counts(tmp_path):
    results.append_record(tmp_path, _record(0, status="error"))
    results.append_record(tmp_path, _record(1))
    results.append_record(tmp_path, _record(0))  # the resumed run's retry
    run = results.read_run(tmp_path)
    assert sorted((r["trial_id"], r["status"]) for r in run.records) == [("t0", "ok"), ("t1", "ok")]


def test_a_field_of_the_wrong_type_is_dropped_with_a_warning_naming_line_and_field(tmp_path):
    bad = {**_record(1), "repeats": None, "train_timing": {"images_per_sec_median": "fast", "repeats": 3}}
    (tmp_path / results.TRIALS).write_text(json.dumps(_record(0)) + "\n" + json.dumps(bad) + "\n")
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["t0", "t1"]
    assert run.records[1]["train_timing"] == {"repeats": 3}
    assert run.warnings == [
        f"{results.TRIALS} line 2: train_timing.images_per_sec_median is 'fast', not a number; shown as -"
    ]


def test_an_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        files.write_text_atomic(disk / "report.md", "old")
        fill(disk)
        with pytest.raises(OSError) as error:
            files.write_text_atomic(disk / "report.md", "x" * 100_000)
        assert error.value.errno == errno.ENOSPC  # from the kernel
        assert error.value.filename == str(disk / "report.md")  # the file, not its temporary sibling
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "report.md"]
        assert (disk / "report.md").read_text() == "old"


def test_files_replaced_together_are_all_new_or_all_as_they_were(tmp_path):
    with small_disk(tmp_path / "disk", size="1m") as disk:
        folder = disk / "run"
        folder.mkdir()
        for name in ("a", "b"):
            (folder / name).write_text("old")
        unwritable = rf"^can't write {re.escape(str(folder / 'b'))} \(No space left on device\)$"
        with pytest.raises(ResultsUnwritable, match=unwritable), files.replaced_together(folder) as staging:
            files.write_text_atomic(staging / "a", "new")  # fits
            files.write_text_atomic(staging / "b", "x" * 2_000_000)  # doesn't
        assert {p.name: p.read_text() for p in folder.iterdir()} == {"a": "old", "b": "old"}
        with files.replaced_together(folder) as staging:
            files.write_text_atomic(staging / "a", "new")
        assert {p.name: p.read_text() for p in folder.iterdir()} == {"a": "new", "b": "old"}
        read_only_folder = rf"^can't write into {re.escape(str(folder))} \(Read-only file system\)$"
        with read_only(disk), pytest.raises(ResultsUnwritable, match=read_only_folder), files.replaced_together(folder):
            pass
        assert {p.name: p.read_text() for p in folder.iterdir()} == {"a": "new", "b": "old"}


def test_a_locked_run_folder_refuses_a_second_writer(tmp_path):
    with results.lock(tmp_path), pytest.raises(UsageError, match="another tlbench"), results.lock(tmp_path):
        pass
    with results.lock(tmp_path):  # released: free again
        pass


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        results.append_record(disk, {"trial_id": "a", "status": "ok"})
        before = (disk / results.TRIALS).read_bytes()
        fill(disk)
        with pytest.raises(OSError) as error:
            results.append_record(disk, {"trial_id": "b", "status": "ok", "pad": "x" * 100_000})
        assert error.value.errno == 28  # ENOSPC, from the kernel
        assert (disk / results.TRIALS).read_bytes() == before  # not half a line


def test_an_append_after_a_cut_line_starts_on_a_new_line(tmp_path):
    (tmp_path / results.TRIALS).write_text('{"trial_id": "a", "backbone"')  # a crash mid-write
    results.append_record(tmp_path, {"trial_id": "b", "backbone": "m", "mode": "transfer", "batch_size": 8,
                                     "dataset": "digits", "status": "ok"})  # fmt: skip
    run = results.read_run(tmp_path)
    assert [r["trial_id"] for r in run.records] == ["b"] and run.warnings == [
        f"{results.TRIALS} line 1 is cut or garbled; skipped"
    ]


def test_a_cache_entry_is_made_once_by_whoever_holds_it_first(tmp_path):
    """Trials side by side on one node share tlbench's cache: the second to
    ask for a stand-in, a conversion or a graph count waits for the first's,
    then finds it (files.computed_once)."""
    import threading

    entry, made = tmp_path / "cache" / "entry", []

    def make_if_missing():
        with files.computed_once(entry):
            if not entry.exists():
                made.append(threading.current_thread().name)
                entry.write_text("made")

    with files.computed_once(entry):  # this test makes it, holding the entry's lock
        second = threading.Thread(target=make_if_missing, name="second")
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive()  # it waits for the lock (under load it may not have reached it yet: no harm)
        made.append("first")
        entry.write_text("made")
    second.join()
    assert made == ["first"]
