"""A second `report` replaces the run's TensorBoard sessions rather than
adding to them, as TensorBoard's own HParams plugin (which imports
TensorFlow) reads them back."""

from exported_run import run_folder, session_groups

from tlbench import results
from tlbench.cli import main


def test_a_second_report_replaces_the_sessions_rather_than_adding_to_them(tmp_path, capsys):
    run_dir = run_folder(tmp_path)
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
    assert len(session_groups(run_dir.parent)) == 3
