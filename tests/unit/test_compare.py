"""`compare RUN_A RUN_B`: changes per configuration, regressions marked, and the
exit status CI can use."""

import json
from pathlib import Path

import pytest
from records import MIB, measured, seeds

from tlbench import results
from tlbench.cli import main
from reporting import compare

from tlbench.reports.compare import Thresholds
from tlbench.run_env import ENV_KEY

BEFORE = [
    *seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 8.0, 2600 * MIB),
    *seeds("mobilenet", "transfer", 32, (0.90, 0.91, 0.92), 560.0, 300 * MIB),
    measured("mobilenet", "finetune", 32, 0, 0.9, 90.0, 900 * MIB),
]


def _run(folder, records):
    folder.mkdir()
    (folder / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(folder)


def test_identical_runs_have_no_regression(tmp_path, capsys):
    assert all(not c.regressions for c in compare(BEFORE, BEFORE))
    a, b = _run(tmp_path / "a", BEFORE), _run(tmp_path / "b", BEFORE)
    assert main(["compare", a, b]) == 0
    assert "no regression in 3 configuration(s)" in capsys.readouterr().out


def test_planted_regressions_are_marked_and_exit_1(tmp_path, capsys):
    after = [
        *seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 6.0, 2600 * MIB),  # 25 % slower
        *seeds("mobilenet", "transfer", 32, (0.80, 0.81, 0.82), 560.0, 400 * MIB),  # less accurate, heavier
        measured("mobilenet", "finetune", 32, 0, None, None, None, status="oom"),  # now out of memory
    ]
    changes = {(c.backbone, c.mode): c for c in compare(BEFORE, after)}
    assert changes["resnet", "transfer"].regressions == (
        "training -25.0% images/s (> 10% slower)",
        "inference -25.0% images/s (> 10% slower)",
    )
    assert changes["mobilenet", "transfer"].regressions == (
        "accuracy -0.100 (> 0.02)",
        "peak memory +33.3% (> 10% more)",
    )
    assert changes["mobilenet", "finetune"].regressions == ("was ok, now oom",)
    a, b = _run(tmp_path / "a", BEFORE), _run(tmp_path / "b", after)
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "3 regression(s) of 3 configuration(s)" in out and "0.910 -> 0.810 (-0.100)" in out


def test_thresholds_and_noise_decide_what_is_a_regression():
    noisy = seeds("mobilenet", "transfer", 32, (0.80, 0.90, 1.00), 560.0, 300 * MIB)  # mean 0.90, std 0.10
    a_bit_lower = seeds("mobilenet", "transfer", 32, (0.77, 0.87, 0.97), 520.0, 320 * MIB)
    (change,) = compare(noisy, a_bit_lower)
    assert change.regressions == () and change.notes == ("accuracy -0.030, within the seeds' noise",)
    (strict,) = compare(noisy, a_bit_lower, Thresholds(slowdown=0.05, memory_growth=0.05))
    assert strict.regressions == (
        "training -7.1% images/s (> 5% slower)",
        "inference -7.1% images/s (> 5% slower)",
        "peak memory +6.7% (> 5% more)",
    )


def test_configurations_in_one_run_only_are_listed_not_failed(tmp_path, capsys):
    a, b = _run(tmp_path / "a", BEFORE), _run(tmp_path / "b", BEFORE[:3])
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "only in run A, not compared: mobilenet finetune batch 32, mobilenet transfer batch 32" in out
    assert "no regression in 1 configuration(s) in both runs; 2 in one run only, not compared" in out


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlbench: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("records", "said"),
    [
        ([], "has no trial record: nothing to compare"),
        (
            [measured("resnet", "transfer", 32, 0, None, None, None, status="oom")],
            "has no trial that ended ok (1 oom): nothing to compare",
        ),
    ],
    ids=["no-record", "no-ok-record"],
)
def test_a_run_without_a_result_is_an_error_either_side(tmp_path, capsys, records, said):
    full, empty = _run(tmp_path / "full", BEFORE), _run(tmp_path / "empty", records)
    assert main(["compare", full, empty]) == 2
    assert _error_line(capsys) == f"tlbench: error: run B '{empty}' {said}"
    assert main(["compare", empty, full]) == 2
    assert _error_line(capsys) == f"tlbench: error: run A '{empty}' {said}"
    assert capsys.readouterr().out == ""  # no table of nothing


def test_runs_with_no_configuration_in_common_are_an_error(tmp_path, capsys):
    a = _run(tmp_path / "a", BEFORE[:3])
    b = _run(tmp_path / "b", seeds("mobilenet", "finetune", 16, (0.9,), 90.0, 900 * MIB))
    assert main(["compare", a, b]) == 2
    assert _error_line(capsys) == (
        f"tlbench: error: no configuration in common: run A '{a}' has resnet transfer batch 32; "
        f"run B '{b}' has mobilenet finetune batch 16"
    )


def test_configurations_without_a_result_in_both_runs_are_no_comparison(tmp_path, capsys):
    oom = measured("mobilenet", "finetune", 32, 0, None, None, None, status="oom")
    a = _run(tmp_path / "a", [*BEFORE[:3], oom])
    b = _run(tmp_path / "b", [*seeds("mobilenet", "transfer", 16, (0.9,), 560.0, 300 * MIB), oom])
    assert main(["compare", a, b]) == 2
    assert "no configuration measured in both runs: mobilenet finetune batch 32 ended without" in _error_line(capsys)


def test_partly_overlapping_runs_list_the_rest_and_exit_by_the_common_ones(tmp_path, capsys):
    extra = seeds("resnet", "finetune", 64, (0.2,), 1.0, 9000 * MIB)  # would be a regression if compared
    a = _run(tmp_path / "a", BEFORE)
    b = _run(tmp_path / "b", [*BEFORE[3:], *extra])  # mobilenet transfer and finetune in both
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "only in run A, not compared: resnet transfer batch 32" in out
    assert "only in run B, not compared: resnet finetune batch 64" in out
    assert "no regression in 2 configuration(s) in both runs; 2 in one run only, not compared" in out
    assert "only in run" not in out.split("only in run A")[0]  # not a row of the table
    assert "0.200" not in out  # the configuration in run B only has no row

    slower = [*seeds("mobilenet", "transfer", 32, (0.90, 0.91, 0.92), 400.0, 300 * MIB), *extra]
    assert main(["compare", a, _run(tmp_path / "slower", slower)]) == 1
    assert "1 regression(s) of 1 configuration(s) in both runs; 3 in one run only" in capsys.readouterr().out


def test_differing_setups_are_said_before_the_table(tmp_path, capsys):
    def setup(records, **fields):
        return [{**r, "budget": "cpu", "split_seed": 0, "batch_norm": "frozen", **fields} for r in records]

    a = _run(tmp_path / "a", setup(BEFORE))
    b = _run(
        tmp_path / "b",
        [
            *setup(BEFORE[:3], dataset="tfds:cats_vs_dogs", budget="quick", device="GPU:y"),
            *setup(BEFORE[3:], dataset="tfds:cats_vs_dogs", budget="quick", weights="standin:random-init"),
        ],
    )
    assert main(["compare", a, b]) == 0  # the same figures: warned, not failed
    out = capsys.readouterr().out
    table = out.index("A: a  ->  B: b")
    warnings = [line for line in out[:table].splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {difference}: the figures do not measure the same thing"
        for difference in (
            "datasets differ: digits in run A, tfds:cats_vs_dogs in run B",
            "budgets differ: cpu in run A, quick in run B",
            "weights differ in 2 of 3 configuration(s): tfhub:x in run A, standin:random-init in run B",
        )
    ]
    # Another machine is what compare is for: a note, not a warning.
    assert "note: devices differ in 1 of 3 configuration(s): CPU:x in run A, GPU:y in run B" in out[:table]


def test_a_setup_older_records_lack_is_read_from_the_runs_plan(tmp_path, capsys):
    a, b = _run(tmp_path / "a", BEFORE), _run(tmp_path / "b", BEFORE)
    for folder, budget, train_size in ((a, "cpu", None), (b, "cpu", 200)):
        plan = {"dataset": "digits", "budget": budget, "protocol": {"split_seed": 0, "train_size": train_size}}
        (tmp_path / folder / results.ENV).write_text(json.dumps({ENV_KEY: plan}))
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "warning: --train-size caps differ: none in run A, 200 in run B" in out
    assert "budgets differ" not in out and "datasets differ" not in out


def test_compare_given_a_file_says_so_in_one_line(tmp_path, capsys):
    a = _run(tmp_path / "a", BEFORE)
    trials = str(tmp_path / "a" / results.TRIALS)
    assert main(["compare", a, trials]) == 2
    line = _error_line(capsys)
    assert trials in line and "is a file, not a run folder" in line


def test_the_comparison_fits_an_80_column_terminal_with_no_cell_cut(tmp_path):
    import io

    from rich.console import Console

    from reporting import print_comparison

    after = [
        *seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 6.0, 2600 * MIB),
        *seeds("mobilenet", "transfer", 32, (0.80, 0.81, 0.82), 560.0, 400 * MIB),
        measured("mobilenet", "finetune", 32, 0, 0.9, 90.0, 900 * MIB),
    ]
    run_a, run_b = (results.read_run(Path(_run(tmp_path / n, r))) for n, r in (("a", BEFORE), ("b", after)))
    console = Console(width=80, file=io.StringIO())
    assert print_comparison(run_a, run_b, Thresholds(), console) == 2
    out = console.file.getvalue()
    assert "…" not in out and max(map(len, out.splitlines())) <= 80
    for cell in ("0.910 -> 0.810 (-0.100)", "8.0 -> 6.0 (-25.0%)", "300.0 MiB -> 400.0 MiB (+33.3%)"):
        assert cell in out  # whole, on one line
    assert "training -25.0% images/s (> 10% slower)" in " ".join(out.split())


def test_seeds_of_one_configuration_on_two_devices_are_compared_device_by_device(tmp_path, capsys):
    # Matched on backbone, mode and batch size alone, the two collapsed into one and the GPU's regression was missed.
    def timed(gpu_speed):
        cpu = [measured("resnet", "transfer", 32, seed, 0.94, 8.0, 2600 * MIB) for seed in (0, 1)]
        gpu = [measured("resnet", "transfer", 32, seed, 0.94, gpu_speed, 2600 * MIB, device="GPU:y") for seed in (2, 3)]
        return [*cpu, *gpu, *BEFORE[3:]]

    changes = [(c.name, c.regressions) for c in compare(timed(80.0), timed(40.0)) if c.backbone == "resnet"]
    assert changes == [
        ("resnet transfer batch 32 (tfhub:x on CPU:x)", ()),
        (
            "resnet transfer batch 32 (tfhub:x on GPU:y)",
            ("training -50.0% images/s (> 10% slower)", "inference -50.0% images/s (> 10% slower)"),
        ),
    ]
    a, b = _run(tmp_path / "a", timed(80.0)), _run(tmp_path / "b", timed(40.0)[2:])  # run B: the GPU only
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "resnet (tfhub:x on GPU:y)  transfer" in out  # the row says which
    assert "only in run A, not compared: resnet transfer batch 32 (tfhub:x on CPU:x)" in out
    assert "1 regression(s) of 3 configuration(s) in both runs; 1 in one run only" in out
