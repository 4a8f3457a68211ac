"""Stability of the timed figures: the judgement on hand-made numbers and the
marks every table shows. A pass timed while the machine is loaded on
purpose: tests/system/test_loaded_machine.py."""

import io
from pathlib import Path

import pytest
from records import measured
from rich.console import Console

from tlbench import stability
from tlbench.reports import columns
from reporting import compare, print_comparison, print_table, render_markdown

from tlbench.reports.compare import Thresholds
from tlbench.results import RunContents

STEADY = {"repeats": 3, "window_steps_min": 10, "images_per_sec_cv": 0.02, "other_cpu_share_mean": 0.03}


# ------------------------------------------------------------ the judgement


def test_a_steady_pass_on_a_quiet_machine_is_stable():
    assert stability.quality(STEADY) == stability.MEASURED
    assert stability.timing_problem(STEADY) is None
    assert stability.unsteadiness(STEADY) <= 1


def test_spread_over_windows_and_other_processes_make_a_pass_unstable():
    spread = {**STEADY, "images_per_sec_cv": 0.14}
    assert stability.timing_problem(spread) == "spread 14 % over 3 windows (> 10 %)"
    loaded = {**STEADY, "other_cpu_share_mean": 0.48}
    assert stability.timing_problem(loaded) == "other processes took 48 % of the CPU while timed (> 15 %)"
    both = stability.timing_problem({**spread, "other_cpu_share_mean": 0.48})
    assert both == "spread 14 % over 3 windows (> 10 %); other processes took 48 % of the CPU while timed (> 15 %)"
    assert stability.unsteadiness(loaded) > stability.unsteadiness(spread) > 1  # 3.2 and 1.4 tolerances


def test_one_window_or_windows_of_few_steps_are_smoke_never_unstable():
    for smoke in ({**STEADY, "repeats": 1}, {**STEADY, "window_steps_min": 2}):
        assert stability.quality(smoke) == stability.SMOKE
        assert stability.timing_problem({**smoke, "images_per_sec_cv": 0.9, "other_cpu_share_mean": 0.9}) is None
    old = {"repeats": 3, "timed_steps": 3}  # a record before window_steps_min: the mean steps per window
    assert stability.quality(old) == stability.SMOKE
    assert stability.record_quality({"train_timing": {"repeats": 3, "timed_steps": 30}}) == stability.MEASURED
    assert stability.record_quality({}) is None  # nothing to tell from


def test_peak_probes_that_disagree_make_the_peak_unstable():
    assert stability.peak_probe_problem([1.0e11, 1.15e11]) is None
    assert stability.peak_probe_problem([1.0e11]) is None
    assert stability.peak_probe_problem([7.61e10, 9.85e10]) == (
        "the best two of the peak-FLOP/s probes disagree by 29 % (7.61e+10, 9.85e+10 FLOP/s; > 20 %)"
    )
    # A disturbed probe is only ever slower: the two best agreeing is a stable peak.
    assert stability.peak_probe_problem([1.94e11, 1.11e11, 2.0e11]) is None


def test_a_trial_is_judged_into_its_record_fields():
    loaded = {**STEADY, "other_cpu_share_mean": 0.48}
    assert stability.judge_trial(STEADY, loaded, [1e11, 1e11]) == {
        "timing_quality": "measured",
        "unstable": {"infer_images_per_sec": "other processes took 48 % of the CPU while timed (> 15 %)"},
    }
    quick = {"repeats": 1, "window_steps_min": 1}
    assert stability.judge_trial(quick, quick, [1e11, 1e11]) == {"timing_quality": "smoke", "unstable": {}}


def _timed(trial_id, mode, infer, seed=0, quality="measured", **extra):
    """A measured record of a ResNet at batch 16 with its inference images/s."""
    return {
        "trial_id": trial_id,
        "backbone": "resnet_v2_50",
        "mode": mode,
        "batch_size": 16,
        "dataset": "digits",
        "seed": seed,
        "status": "ok",
        "weights": "tfhub:x",
        "device": "CPU:x",
        "budget": "cpu",
        "module_format": "tf2-savedmodel",
        "test_accuracy": 0.9,
        "train_images_per_sec": 5.0 if mode == "transfer" else 2.0,
        "infer_images_per_sec": infer,
        "peak_memory_bytes": 2**30,
        "timing_quality": quality,
        "unstable": {},
        **extra,
    }


def test_inference_that_disagrees_with_the_same_forward_pass_elsewhere_is_unstable():
    # The case: transfer's inference far below fine-tuning's, the same forward pass.
    records = [
        _timed("t", "transfer", 7.1),
        _timed("f0", "finetune", 15.1, seed=0),
        _timed("f1", "finetune", 16.0, seed=1),
        _timed("f2", "finetune", 17.2, seed=2),
    ]
    assert stability.inconsistent(records) == {
        "t": {
            "infer_images_per_sec": "inference 7.1 images/s is 54 % below the median 15.6 of 4 trials timing the "
            "same computation (> 25 %)"
        }
    }
    judged = stability.judged(records)
    assert "infer_images_per_sec" in judged[0]["unstable"] and records[0]["unstable"] == {}  # the read record stays


def test_a_pair_that_disagrees_marks_both_and_other_computations_are_apart():
    pair = [_timed("a", "transfer", 10.0), _timed("b", "finetune", 13.0)]
    found = stability.inconsistent(pair)
    assert set(found) == {"a", "b"}
    assert found["a"]["infer_images_per_sec"] == (
        "inference 10.0 images/s against 13.0 in b, the same computation (ratio 1.30 > 1.25)"
    )
    assert stability.inconsistent([_timed("a", "transfer", 10.0), _timed("b", "finetune", 12.0)]) == {}
    apart = [
        _timed("a", "transfer", 10.0),
        _timed("b", "finetune", 30.0, batch_size=32),  # another batch size
        _timed("c", "finetune", 30.0, converted_from="/tf1"),  # a TF1 module's conversion: another implementation
        _timed("d", "finetune", 30.0, quality="smoke"),  # no measurement
        _timed("e", "finetune", 30.0, unstable={"infer_images_per_sec": "spread"}),  # unstable already
    ]
    assert stability.inconsistent(apart) == {}


def test_training_is_compared_across_seeds_of_one_mode():
    seeds = [_timed(f"s{s}", "finetune", 15.0, seed=s, train_images_per_sec=t) for s, t in enumerate((2.0, 2.1, 1.0))]
    found = stability.inconsistent(seeds)
    assert (
        list(found) == ["s2"]
        and "training 1.0 images/s is 50 % below the median 2.0" in found["s2"]["train_images_per_sec"]
    )


# ------------------------------------------------------------ the marks


def _console() -> Console:
    return Console(file=io.StringIO(), width=250, color_system=None)


LOADED = "other processes took 48 % of the CPU while timed (> 15 %)"


def test_an_unstable_figure_is_marked_with_its_reason_and_advice_in_every_table():
    records = [
        _timed("loaded", "transfer", 20.0, unstable={"train_images_per_sec": LOADED}),
        _timed("quiet", "finetune", 21.0),
    ]
    run = RunContents(Path("run"), records=records, env={"command": "tlbench run --all"}, warnings=[])
    report = render_markdown(run)
    train = next(c for c in columns.COLUMNS if c.header == "train img/s")
    mfu = next(c for c in columns.COLUMNS if c.header == "train MFU")
    assert train.cell(records[0]) == "5.0 !" and train.cell(records[1]) == "2.0"
    assert mfu.cell({**records[1], "train_mfu": 0.25, "unstable": {"peak_flops_per_sec": "x"}}) == "25.0% !"
    assert "| 5.0 ! |" in report and "| 2.0 |" in report
    assert "## Stability of the timed figures" in report
    assert f"- `loaded`: training images/s: {LOADED}" in report
    assert f"**Unstable figures**: {stability.ADVICE} (`tlbench run --all`)." in report
    assert "training speed of 1 configuration(s) is unstable" in report  # the recommendation's warning

    console = _console()
    print_table(run, console)
    out = console.file.getvalue()
    assert "5.0 !" in out and f"unstable: loaded: training images/s: {LOADED}" in out and stability.ADVICE in out


def test_inconsistent_inference_found_at_report_time_is_marked():
    records = [_timed("t", "transfer", 7.1), _timed("f", "finetune", 16.0)]
    report = render_markdown(RunContents(Path("run"), records=records, env={}, warnings=[]))
    assert "| 7.1 ! |" in report and "| 16.0 ! |" in report
    assert "- `t`: inference images/s: inference 7.1 images/s against 16.0 in f" in report


def test_smoke_figures_are_labelled_and_explained():
    records = [_timed("q", "transfer", 20.0, quality="smoke")]
    run = RunContents(Path("run"), records=records, env={}, warnings=[])
    report = render_markdown(run)
    assert "| 5.0 (smoke) | 20.0 (smoke) |" in report
    assert f"**Smoke figures** in 1 trial(s): {stability.SMOKE_NOTE}." in report
    assert "5.0 (smoke) training images/s" in report  # the recommendation's prose too
    assert "**Unstable figures**" not in report  # a smoke figure is never called unstable
    console = _console()
    print_table(run, console)
    assert f"(smoke): {stability.SMOKE_NOTE}" in console.file.getvalue()


def test_compare_gives_a_slowdown_of_an_unstable_figure_its_own_verdict_not_a_regression():
    before = [measured("resnet", "transfer", 32, 0, 0.9, 8.0, 2**30)]
    after = [{**measured("resnet", "transfer", 32, 0, 0.9, 6.0, 2**30), "unstable": {"train_images_per_sec": LOADED}}]
    (change,) = compare(before, after)
    assert change.regressions == ("inference -25.0% images/s (> 10% slower)",)  # inference is stable
    assert change.unstable == ("training -25.0% images/s, unstable in run B: not judged",)
    assert change.why_unstable == {"train_images_per_sec": f"run B: seed 0: {LOADED}"}
    assert columns.Column("x", "train", figures=columns.TRAIN).cell(change.row).endswith(" !")

    only_unstable = [{**after[0], "infer_images_per_sec": 16.0}]
    (change,) = compare(before, only_unstable)
    assert change.regressions == () and change.row["status"] == "unstable"
    console = _console()
    a, b = (RunContents(Path(n), records=r, env={}, warnings=[]) for n, r in (("a", before), ("b", only_unstable)))
    assert print_comparison(a, b, Thresholds(), console) == 0  # unstable: a warning, not a failure
    out = console.file.getvalue()
    assert f"unstable: resnet transfer batch 32: training images/s: run B: seed 0: {LOADED}" in out
    assert "1 configuration(s) with unstable images/s (marked !)" in out and "no regression" in out


def test_compare_does_not_judge_the_speed_of_smoke_figures():
    before = [{**measured("resnet", "transfer", 32, 0, 0.9, 8.0, 2**30), "timing_quality": "smoke"}]
    after = [{**measured("resnet", "transfer", 32, 0, 0.9, 4.0, 2**30), "timing_quality": "smoke"}]
    (change,) = compare(before, after)
    assert change.regressions == () and change.unstable == ()
    assert change.notes == (
        "training -50.0% images/s, smoke figures: not judged",
        "inference -50.0% images/s, smoke figures: not judged",
    )
    assert columns.Column("x", "train", figures=columns.TRAIN).cell(change.row).endswith(" (smoke)")


@pytest.mark.parametrize("figure", ["train_images_per_sec", "peak_flops_per_sec"])
def test_the_mfu_cell_follows_both_figures_it_divides(figure):
    mfu = next(c for c in columns.COLUMNS if c.header == "train MFU")
    assert mfu.cell({"train_mfu": 0.5, "unstable": {figure: "why"}}) == "50.0% !"
    assert mfu.cell({"train_mfu": 0.5, "unstable": {"infer_images_per_sec": "why"}}) == "50.0%"


def test_the_live_progress_line_marks_the_figures_too():
    from tlbench.driver.runner import progress_line

    trial = {"trial_id": "t", "status": "ok", "train_images_per_sec": 3.0, "infer_images_per_sec": 4.0}
    assert "train 3.0 img/s (smoke)  infer 4.0 img/s (smoke)" in progress_line(
        {**trial, "timing_quality": "smoke"}, 1, 1
    )
    unstable = {**trial, "timing_quality": "measured", "unstable": {"infer_images_per_sec": LOADED}}
    assert "train 3.0 img/s  infer 4.0 img/s [yellow]![/]" in progress_line(unstable, 1, 1)
