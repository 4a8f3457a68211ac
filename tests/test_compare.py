"""`compare RUN_A RUN_B`: changes per configuration, regressions marked, and the
exit status CI can use."""

import json

from test_decide import MIB, _record, _seeds

from tlbench.cli import main
from tlbench.reports.compare import Thresholds, compare

BEFORE = [
    *_seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 8.0, 2600 * MIB),
    *_seeds("mobilenet", "transfer", 32, (0.90, 0.91, 0.92), 560.0, 300 * MIB),
    _record("mobilenet", "finetune", 32, 0, 0.9, 90.0, 900 * MIB),
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
        *_seeds("resnet", "transfer", 32, (0.93, 0.94, 0.95), 6.0, 2600 * MIB),  # 25 % slower
        *_seeds("mobilenet", "transfer", 32, (0.80, 0.81, 0.82), 560.0, 400 * MIB),  # less accurate, heavier
        _record("mobilenet", "finetune", 32, 0, None, None, None, status="oom"),  # now out of memory
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
    noisy = _seeds("mobilenet", "transfer", 32, (0.80, 0.90, 1.00), 560.0, 300 * MIB)  # mean 0.90, std 0.10
    a_bit_lower = _seeds("mobilenet", "transfer", 32, (0.77, 0.87, 0.97), 520.0, 320 * MIB)
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
    assert "only in run A" in out
