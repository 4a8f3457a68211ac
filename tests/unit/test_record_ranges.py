"""A figure out of range (NaN, an infinity, a negative count, an accuracy of 7)
gets one verdict from report, compare and `--resume`: left out with a
warning naming the line and the field, the trial not finished. The rule the
test expects is written here from the figures' meanings, not read from
record.py."""

from __future__ import annotations

import json
import math
import tempfile
import typing
from pathlib import Path

from conftest import ci_examples
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reporting import analysed, compare

from tlbench import record, results
from tlbench.driver.request import recorded_plan
from tlbench.reports.configs import config_key
from tlbench.run_env import ENV_KEY

ROOT = Path(__file__).resolve().parents[2]
(EXAMPLE,) = sorted((ROOT / "results").glob("*-example"))
BASE = next(r for r in map(json.loads, (EXAMPLE / results.TRIALS).read_text().splitlines()) if r["status"] == "ok")
ENV = json.loads((EXAMPLE / results.ENV).read_text())
# The figures that carry a range: every number of the record but the trial's
# name (batch size, seeds), its process and niceness, the losses (a diverged
# learning rate's NaN loss is what it measured) and the graph's per-batch
# intercepts (of lines through batches 1 and 2: any sign).
RANGED = sorted(
    key
    for key, kind in record.KINDS.items()
    if typing.get_origin(kind) is typing.Annotated
    or any(typing.get_origin(arg) is typing.Annotated for arg in typing.get_args(kind))
)
NUMBERS = sorted(key for key in RANGED if isinstance(BASE.get(key), (int, float)) and not isinstance(BASE[key], bool))
ODD = [math.nan, math.inf, -math.inf, -1, -1e-9, 0, 0.0, 0.5, 1, 1.5, 7.0, 10**30, 2.5]


def in_range(field: str, value) -> bool:
    """What a figure may be, by what it means."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    declared = record.FIELDS[field]
    if int in (typing.get_args(declared) or (declared,)) and not isinstance(value, int):
        return False  # a count, bytes, FLOPs: whole numbers
    if field.endswith("_accuracy") or field == "batch_norm_momentum":
        return 0 <= value <= 1
    if field.endswith("_per_sec") or field in ("learning_rate", "base_learning_rate"):
        return value > 0
    return value >= 0


def test_every_number_of_an_ok_record_but_its_name_process_and_losses_has_a_range():
    numbers = {k for k, v in BASE.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    intercepts = {f"predicted_{kind}_bytes_per_batch" for kind in ("activation", "train_step_peak", "infer_step_peak")}
    names = {"batch_size", "seed", "split_seed", "process_id", "worker_niceness"}
    assert numbers - set(NUMBERS) == names | {"val_loss", "test_loss"} | intercepts
    assert {"test_accuracy", "train_images_per_sec", "peak_memory_bytes", "seconds"} <= set(NUMBERS)


def _verdicts(bad: dict) -> tuple[bool, bool, bool, list[str]]:
    """(finished for --resume, a result in the report, not "now incomplete"
    in compare against the same trial with its measured figures; the warnings)."""
    with tempfile.TemporaryDirectory(prefix="tlbench-ranges-") as tmp:
        before, after = Path(tmp, "before"), Path(tmp, "after")
        for folder, trial in ((before, BASE), (after, bad)):
            folder.mkdir()
            results.append_record(folder, trial)
            (folder / results.ENV).write_text(json.dumps(ENV))
        _, done = recorded_plan(after)
        run = results.read_run(after)
        (config,) = [c for c in analysed(run).configurations if config_key(c.row) == config_key(BASE)]
        (change,) = [c for c in compare(results.read_run(before), run) if c.a is not None]
    return BASE["trial_id"] in done, config.has_result, "was ok, now incomplete" not in change.regressions, run.warnings


@settings(max_examples=ci_examples(200, 60), deadline=None, database=None, print_blob=True)
@given(field=st.sampled_from(NUMBERS), value=st.sampled_from(ODD) | st.floats() | st.integers(-(2**70), 2**70))
@example(field="test_accuracy", value=math.inf)
@example(field="val_accuracy", value=7.0)
@example(field="train_images_per_sec", value=math.nan)
@example(field="peak_memory_bytes", value=-math.inf)
def test_report_compare_and_resume_give_an_out_of_range_figure_one_verdict(field, value):
    assert ENV_KEY in ENV  # --resume reads the example's plan
    resume, report, comparison, warnings = _verdicts({**BASE, field: value})
    assert resume == report == comparison == in_range(field, value), (field, value, warnings)
    if not in_range(field, value):
        (warning,) = warnings
        assert warning.startswith(f"{results.TRIALS} line 1: {field} is ") and warning.endswith("; shown as -")


def test_the_committed_example_reads_without_a_warning():
    assert results.read_run(EXAMPLE).warnings == []
