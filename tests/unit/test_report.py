import io
from pathlib import Path

import pytest
from rich.console import Console

from tlbench.reports import columns
from reporting import build, print_table, render_markdown, write_report
from tlbench.results import RunContents

RECORDS = [
    {
        "trial_id": "resnet_v2_50-finetune-bs16-digits-seed0",
        "backbone": "resnet_v2_50",
        "mode": "finetune",
        "batch_size": 16,
        "dataset": "digits",
        "status": "ok",
        "val_accuracy": 0.875,
        "test_accuracy": 0.8125,
        "train_images_per_sec": 7.25,
        "infer_images_per_sec": 26.5,
        "peak_memory_bytes": 3 * 2**30,
        "weights": "standin:random-init",
        "seconds": 61.2,
    },
    {
        "trial_id": "mobilenet_v2_035_128-transfer-bs16-digits-seed0",
        "backbone": "mobilenet_v2_035_128",
        "mode": "transfer",
        "batch_size": 16,
        "dataset": "digits",
        "status": "oom",
        "error": "ResourceExhaustedError: x",
        "weights": "local:/m",
        "seconds": 3.0,
    },
]


def _rich_text(records) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(columns.rich_table(records))
    return console.file.getvalue()


def test_terminal_and_markdown_tables_come_from_one_column_list():
    text, markdown = _rich_text(RECORDS), columns.markdown_table(RECORDS)
    header_row = markdown.splitlines()[0]
    assert header_row == "| " + " | ".join(c.header for c in columns.COLUMNS) + " |"
    for column in columns.COLUMNS:
        assert column.header in text
        for record in RECORDS:
            cell = column.cell(record)
            assert cell in text and cell in markdown
    assert "3.0 GiB" in markdown and "0.812" in markdown and "standin" in markdown
    assert markdown.count("\n") == 2 + len(RECORDS)


def test_missing_values_render_as_a_dash():
    assert columns.COLUMNS[4].cell({}) == columns.MISSING


def test_report_warns_about_stand_ins_and_lists_failures():
    run = RunContents(Path("20261128T000000Z-h-cpu"), records=RECORDS, env={"host": "h"}, warnings=["line 3 cut"])
    report = render_markdown(run)
    assert "# tlbench run 20261128T000000Z-h-cpu" in report
    assert "**Stand-in weights** for resnet_v2_50" in report
    assert "`mobilenet_v2_035_128-transfer-bs16-digits-seed0`: oom: ResourceExhaustedError: x" in report
    assert "- line 3 cut" in report
    assert columns.markdown_table(RECORDS) in report


def _memory_record(backbone, mode, batch_size, peak, step, predicted_per_image):
    return {
        "trial_id": f"{backbone}-{mode}-bs{batch_size}",
        "backbone": backbone,
        "mode": mode,
        "batch_size": batch_size,
        "device": "CPU:x",
        "status": "ok",
        "peak_memory_bytes": peak,
        "activation_memory_bytes": step,
        "predicted_activation_bytes_per_image": predicted_per_image,
    }


def test_memory_against_batch_size_gives_bytes_per_image():
    from tlbench.reports.configs import memory_slopes

    mib = 2**20
    records = [
        # finetune: 100 MiB fixed + 3 MiB per image, predicted 80% of it; transfer: 100 MiB + 0.25 MiB per image
        *(
            {
                **_memory_record("r", "finetune", n, 100 * mib + 3 * mib * n, 3 * mib * n, 2.5 * mib),
                "predicted_peak_memory_bytes": 0.8 * (100 * mib + 3 * mib * n),
            }
            for n in (8, 16, 32)
        ),
        *(_memory_record("r", "transfer", n, 100 * mib + mib * n // 4, mib * n // 4, 4096) for n in (8, 16)),
        _memory_record("m", "transfer", 8, 50 * mib, mib, 4096),  # one batch size: no line
        {**_memory_record("r", "finetune", 64, 1, 1, 1), "status": "oom"},  # not a measurement
    ]
    slopes = {(s.backbone, s.mode): s for s in memory_slopes(records)}
    assert set(slopes) == {("r", "finetune"), ("r", "transfer")}
    finetune, transfer = slopes["r", "finetune"], slopes["r", "transfer"]
    assert finetune.batch_sizes == (8, 16, 32)
    assert finetune.bytes_per_image == pytest.approx(3 * mib) and finetune.intercept_bytes == pytest.approx(100 * mib)
    assert finetune.step_bytes_per_image == pytest.approx(3 * mib)
    assert finetune.predicted_bytes_per_image == 2.5 * mib
    assert finetune.predicted_peak_bytes_per_image == pytest.approx(2.4 * mib)
    assert finetune.peak_over_predicted == pytest.approx(1.25)
    assert transfer.predicted_peak_bytes_per_image is None and transfer.peak_over_predicted is None  # not recorded
    assert transfer.bytes_per_image == pytest.approx(mib / 4)
    assert transfer.intercept_bytes is None and transfer.intercept_note == "needs 3+ batch sizes"  # two points

    report = render_markdown(RunContents(Path("run"), records=records, env={}, warnings=[]))
    assert "## Memory against batch size" in report
    assert "| r | finetune | CPU:x | 8, 16, 32 | 3.0 MiB | 2.5 MiB | 3.0 MiB | 2.4 MiB | 1.25 | 100.0 MiB |" in report
    assert "| r | transfer | CPU:x | 8, 16 | 256.0 KiB | 4.0 KiB | 256.0 KiB | - | - | needs 3+ batch sizes |" in report


def test_a_negative_fixed_part_is_not_reported():
    from tlbench.reports.configs import memory_slopes

    mib = 2**20
    # Memory growing faster than the batch size: the line's intercept is negative.
    records = [_memory_record("r", "finetune", n, mib * n * n, mib * n * n, mib) for n in (8, 16, 32)]
    (slope,) = memory_slopes(records)
    assert slope.intercept_bytes is None and slope.intercept_note == "fit < 0: not a line"
    assert "fit < 0: not a line" in render_markdown(RunContents(Path("run"), records=records, env={}, warnings=[]))


def test_throughput_cells_show_the_median_and_interquartile_range():
    column = next(c for c in columns.COLUMNS if c.header == "train img/s")
    timing = {"repeats": 3, "images_per_sec_median": 191.68, "images_per_sec_q1": 188.3, "images_per_sec_q3": 197.1}
    assert column.cell({"train_timing": timing}) == "191.7 [188-197]"
    slow = {"repeats": 3, "images_per_sec_median": 7.04, "images_per_sec_q1": 6.93, "images_per_sec_q3": 7.12}
    assert column.cell({"train_timing": slow}) == "7.0 [6.9-7.1]"  # quartiles told apart
    assert column.cell({"train_timing": {**timing, "repeats": 1}}) == "191.7 (smoke)"  # one window: no spread
    assert column.cell({"train_images_per_sec": 7.25}) == "7.2"  # a record of an earlier version
    assert column.cell({}) == columns.MISSING


def _seed_record(backbone, mode, seed, test_accuracy, weights="local:/m", **extra):
    return {
        "trial_id": f"{backbone}-{mode}-bs16-digits-seed{seed}",
        "backbone": backbone,
        "mode": mode,
        "batch_size": 16,
        "seed": seed,
        "status": "ok",
        "weights": weights,
        "test_accuracy": test_accuracy,
        "val_accuracy": test_accuracy,
        **extra,
    }


def test_accuracy_over_seeds_tells_a_win_from_noise():
    from tlbench.reports.configs import configurations

    records = [
        *(_seed_record("a", "transfer", s, acc) for s, acc in enumerate((0.90, 0.92, 0.94))),  # mean 0.92, std 0.02
        *(_seed_record("b", "transfer", s, acc) for s, acc in enumerate((0.89, 0.91, 0.93))),  # 0.01 lower: noise
        *(_seed_record("c", "transfer", s, acc) for s, acc in enumerate((0.70, 0.71, 0.72))),  # far lower
        _seed_record("d", "transfer", 0, 0.60),  # one seed
        {**_seed_record("e", "transfer", 0, 0.99), "status": "oom"},  # not a result
    ]
    spreads = configurations(records)
    assert [(s.backbone, s.verdict) for s in spreads] == [
        ("a", "best"),
        ("b", "within noise of best"),
        ("c", "below best"),
        ("d", "spread unknown (one seed)"),
        ("e", "no result (oom)"),
    ]
    best = spreads[0]
    assert best.seeds == (0, 1, 2) and best.test_mean == pytest.approx(0.92) and best.test_std == pytest.approx(0.02)
    assert spreads[3].test_std is None

    report = render_markdown(RunContents(Path("run"), records=records, env={}, warnings=[]))
    assert "## Accuracy over seeds" in report
    assert "| a | transfer | 16 | local | 3 | 0.920 ± 0.020 | 0.920 ± 0.020 | best | - | - | None |" in report
    assert "| d | transfer | 16 | local | 1 | 0.600 | 0.600 | spread unknown (one seed) |" in report

    text = io.StringIO()

    print_table(RunContents(Path("run"), records=records, env={}, warnings=[]), Console(file=text, width=200))
    assert "Test accuracy over seeds" in text.getvalue() and "within noise of best" in text.getvalue()


def test_single_seed_runs_say_the_spread_is_unknown_and_the_protocol_is_stated():
    env = {
        "request": {"protocol": {"split_seed": 0, "train_size": 64, "batch_norm_momentum": 0.997}},
        "budget": {"learning_rates": {"transfer": [0.001]}, "patience": {"transfer": 5}, "transfer_epochs": 30},
    }
    records = [
        _seed_record("a", "transfer", 0, 0.9, split_sizes={"train": 64}, learning_rate_rule="base x sqrt(b / 32)"),
        _seed_record("a", "finetune", 0, 0.9, kept_epoch=0),
        _seed_record("a", "finetune", 1, 0.9, kept_epoch=2),
    ]
    report = render_markdown(RunContents(Path("run"), records=records, env=env, warnings=[]))
    assert "run with `--seeds 3` or more" not in report  # finetune has two seeds
    assert "split seed 0, training images capped at 64" in report and "base x sqrt(b / 32)" in report
    assert "In 1 of 2 finetune trials no fine-tuning epoch lowered the validation loss" in report
    single = render_markdown(RunContents(Path("run"), records=records[:1], env=env, warnings=[]))
    assert "One seed per configuration" in single and "run with `--seeds 3` or more" in single
    assert "Search on validation (Adam): base learning rates transfer 0.001" in report  # an earlier version's run
    env["budget"] = {"probe_penalties": [10.0, 0.1], "learning_rates": {"finetune": [1e-5]}, "finetune_epochs": 2}
    report = render_markdown(RunContents(Path("run"), records=records, env=env, warnings=[]))
    assert "by L-BFGS at L2 penalties 10, 0.1, the one chosen on validation" in report
    assert "base learning rates finetune 1e-05, scaled to each batch size as base x sqrt(b / 32); at most 2" in report
    assert "Searched where" not in report
    carried = {"batch_size": 32, "trial_id": "a-finetune-bs32-digits-seed0"}
    records.append(_seed_record("a", "finetune", 0, 0.9, **carried, learning_rate_carried_from=records[1]["trial_id"]))
    report = render_markdown(RunContents(Path("run"), records=records, env=env, warnings=[]))
    assert "alone, scaled to their batch size by the same rule: a finetune bs32 (from bs16)." in report


def test_html_table_comes_from_the_same_column_list():
    markup = columns.html_table(RECORDS)
    headers = [column.header for column in columns.COLUMNS]
    assert markup.count("<th>") == len(headers) and all(f"<th>{h}</th>" in markup for h in headers)
    for record in RECORDS:
        for column in columns.COLUMNS:
            assert f">{columns.html.escape(column.cell(record))}</td>" in markup
    assert markup.count('<tr class="failed">') == 1  # the oom trial


def _written_run(tmp_path, records, cut_last_line=False):
    import json

    run = tmp_path / "20261128T000000Z-h-cpu"
    run.mkdir()
    lines = "".join(json.dumps(r) + "\n" for r in records)
    if cut_last_line:
        lines = lines[:-40]  # a crash in the middle of the last write
    (run / "trials.jsonl").write_text(lines)
    (run / "env.json").write_text(json.dumps({"versions": {"tlbench": "0.0.1"}, "host": "h"}))
    return run


def test_report_writes_markdown_html_and_plots_that_show_the_same_tables(tmp_path):
    import base64

    from records import DECIDE_RECORDS

    from tlbench.results import read_run

    run = read_run(_written_run(tmp_path, DECIDE_RECORDS))
    written = write_report(run)
    assert set(written) == {
        "report.md",
        "report.html",
        "memory.png",
        "throughput.png",
        "accuracy_vs_throughput.png",
        "ladder.png",  # transfer and finetune of each backbone: does fine-tuning pay
    }
    markdown, page = (run.run_dir / "report.md").read_text(), (run.run_dir / "report.html").read_text()
    for name in ("memory.png", "throughput.png", "accuracy_vs_throughput.png", "ladder.png"):
        png = (run.run_dir / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        assert f"]({name})" in markdown  # beside report.md
        assert base64.b64encode(png).decode() in page  # inside report.html: no file or network needed
    for title in ("Environment", "Recommendation", "Does fine-tuning pay?", "Trials", "Accuracy over seeds", "Plots"):
        assert f"## {title}" in markdown and f"<h2>{title}</h2>" in page
    assert "Choose resnet (finetune, batch 32) when accuracy comes first" in markdown
    assert "Choose resnet (finetune, batch 32) when accuracy comes first" in page
    assert "http" not in page.replace("http://www.w3.org", "")  # nothing fetched from a network
    assert "written by tlbench 0.0.1" in markdown  # another version's run: a warning, not a failure


def test_a_truncated_trials_file_still_reports_with_a_warning(tmp_path, capsys):
    from tlbench.cli import main

    run = _written_run(tmp_path, RECORDS, cut_last_line=True)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "trials.jsonl line 2 is cut or garbled; skipped" in out
    assert "resnet_v2_50" in (run / "report.md").read_text() and (run / "report.html").exists()


def test_report_constraints_pick_the_best_that_fits_and_exit_1_when_none_does(tmp_path, capsys):
    from records import DECIDE_RECORDS

    from tlbench.cli import main

    run = str(_written_run(tmp_path, DECIDE_RECORDS))
    assert main(["report", run, "--memory-budget", "4GiB", "--min-throughput", "5", "--min-accuracy", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "best that fits: resnet transfer batch 32" in out
    assert "ruled out: resnet finetune batch 32 (tfhub): peak memory 4.9 GiB > 4.0 GiB" in out
    assert main(["report", run, "--memory-budget", "100MiB"]) == 1
    assert "no configuration fits" in capsys.readouterr().out


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_report_on_a_folder_it_cannot_write_prints_the_report_exits_3_and_changes_nothing(tmp_path, capsys, fault):
    """What a run's exit-3 message recommends, on a run folder that is
    read-only or on a full disk: the tables (and the choice) still printed,
    one line on stderr naming what couldn't be written and why, the old
    report's files as they were and no temporary file left."""
    import contextlib
    import json
    import re

    from disks import fill, read_only, small_disk
    from records import DECIDE_RECORDS, measured

    from tlbench.cli import main

    with small_disk(tmp_path / "disk", size="4m") as disk:
        run = _written_run(disk, DECIDE_RECORDS)
        assert main(["report", str(run)]) == 0
        with (run / "trials.jsonl").open("a") as trials:  # a new trial: a new report would differ
            trials.write(json.dumps(measured("effnet", "transfer", 32, 0, 0.5, 40.0, 700 * 2**20)) + "\n")
        before = _snapshot(run)
        assert {"report.md", "report.html", "memory.png", "ladder.png", "trials.csv"} <= set(before)
        if fault == "full":
            fill(disk)
        capsys.readouterr()
        with read_only(disk) if fault == "read-only" else contextlib.nullcontext():
            for constraints in ([], ["--memory-budget", "100MiB"]):  # nothing fits: 3 over 1
                assert main(["report", str(run), *constraints]) == 3
                out, err = capsys.readouterr()
                assert "tlbench run 20261128T000000Z-h-cpu" in out and "effnet" in out  # the table, new trial too
                assert ("no configuration fits" in out) == bool(constraints)
                assert "report: " not in out  # no file was written
                what, why = {
                    "read-only": (f"into {run}", "Read-only file system"),
                    "full": (f"{run}/memory.png", "No space left on device"),  # the first file written
                }[fault]
                assert re.fullmatch(
                    f"tlbench: error: can't write {re.escape(what)} \\({why}\\); the report is printed above, "
                    "its files are as they were\n",
                    err,
                ), err
                assert _snapshot(run) == before


def _snapshot(folder):
    """Every file under `folder` (TensorBoard's event files too), by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_the_end_of_a_run_on_a_read_only_folder_prints_the_tables_before_it_stops(tmp_path):
    from disks import read_only, small_disk
    from records import DECIDE_RECORDS

    from tlbench.driver import runner
    from tlbench.errors import ResultsUnwritable

    with small_disk(tmp_path / "disk") as disk:
        run = _written_run(disk, DECIDE_RECORDS)
        console = Console(file=io.StringIO(), width=200)
        with read_only(disk), pytest.raises(ResultsUnwritable) as stopped:
            runner._report(run, console)
        assert "tlbench run 20261128T000000Z-h-cpu" in console.file.getvalue()  # the table, before the error
        assert str(stopped.value) == (
            f"can't write into {run} (Read-only file system); the tables are above and every record is in "
            f"{run / 'trials.jsonl'}; once the folder can be written, run: python -m tlbench report {run}"
        )
        assert sorted(path.name for path in run.iterdir()) == ["env.json", "trials.jsonl"]


def test_records_of_an_old_version_with_few_fields_still_report(tmp_path):
    from tlbench.results import read_run

    old = [
        {
            "trial_id": f"m-{mode}-bs8",
            "backbone": "m",
            "mode": mode,
            "batch_size": 8,
            "dataset": "digits",
            "status": "ok",
            "test_accuracy": 0.5,
        }
        for mode in ("transfer", "finetune")
    ]
    run = read_run(_written_run(tmp_path, old))
    written = write_report(run)
    assert set(written) == {"report.md", "report.html"}  # no speed or memory: no plots, no recommendation
    markdown = written["report.md"].read_text()
    assert "| m | finetune | 8 | ok | - | 0.500 |" in markdown and "## Recommendation" not in markdown


def test_the_environment_says_when_the_code_had_uncommitted_changes():
    from tlbench.results import RunContents

    for dirty, said in ((True, "git commit: abc123 with uncommitted changes"), (False, "git commit: abc123")):
        env = {"git": {"commit": "abc123", "dirty": dirty}}
        (environment,) = [s for s in build(RunContents(Path("r"), [], env)) if s.title == "Environment"]
        bullets = [line for block in environment.blocks for line in getattr(block, "items", [])]
        assert [line for line in bullets if line.startswith("git")] == [said]
