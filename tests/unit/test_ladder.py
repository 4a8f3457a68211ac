"""Does fine-tuning pay? The ladder of trainable depth in the report, on
hand-made records whose figures the tests work out on their own."""

import io
import json
import statistics
from pathlib import Path

import pytest
from records import MIB, trial
from rich.console import Console

from tlbench.reports import ladder as ladder_module
from reporting import ladders, print_table, render_markdown, write_report

from tlbench.reports.ladder import LADDER_COLUMNS, table_rows
from tlbench.reports.ladder import verdict
from tlbench.results import RunContents, read_run

BATCH = 16
BACKBONE_VARIABLES = 158

# Per rung of "mobilenet", per seed: (val, test, train img/s, step memory per image MiB, kept_epoch).
# Predicted memory per image (MiB) and the backbone variables each rung trains are the same for both seeds.
RUNGS = {
    "transfer": {
        "seeds": [(0.80, 0.79, 400.0, 0.5, 4), (0.82, 0.81, 420.0, 0.53125, 6)],
        "predicted": 0.25,
        "trained": 0,
        "first": None,
    },
    "last_block": {
        "seeds": [(0.86, 0.85, 200.0, 2.0, 0), (0.88, 0.87, 210.0, 1.75, 3)],
        "predicted": 1.5,
        "trained": 12,
        "first": "MobilenetV2/expanded_conv_16/expand",
    },
    "finetune": {
        "seeds": [(0.87, 0.86, 50.0, 10.0, 0), (0.89, 0.88, 54.0, 9.0, 0)],
        "predicted": 9.0,
        "trained": BACKBONE_VARIABLES,
        "first": "MobilenetV2/Conv",
    },
}


def _record(backbone, mode, seed, batch=BATCH, weights="tfhub:mobilenet", **figures):
    """A rung's trial at `batch`, its BatchNorm frozen (the default policy)."""
    return trial(backbone, mode, batch, seed, weights=weights, batch_norm="frozen", **figures)


def _ladder_records(backbone="mobilenet", weights="tfhub:mobilenet", rungs=RUNGS):
    records = []
    for mode, rung in rungs.items():
        for seed, (val, test, speed, step_mib, kept) in enumerate(rung["seeds"]):
            trains = mode != "transfer"
            records.append(
                _record(
                    backbone,
                    mode,
                    seed,
                    weights=weights,
                    val_accuracy=val,
                    test_accuracy=test,
                    train_images_per_sec=speed,
                    infer_images_per_sec=2 * speed,
                    peak_memory_bytes=int(100 * MIB + BATCH * step_mib * MIB),
                    activation_memory_bytes=int(BATCH * step_mib * MIB),
                    predicted_activation_bytes=int(BATCH * rung["predicted"] * MIB),
                    kept_epoch=kept,
                    trained_backbone_variables=rung["trained"],
                    backbone_variables=BACKBONE_VARIABLES if trains else None,
                    trained_first_layer=rung["first"],
                    trained_last_layer="MobilenetV2/Conv_1" if trains else None,
                    learning_rate=1e-4 if trains else 1e-3,
                )
            )
    return records


# The same backbone at batch 32: transfer ran, finetune ran out of memory. One rung measured there, three at
# batch 16: the ladder is shown at 16.
OTHER_BATCH = [
    _record("mobilenet", "transfer", 0, batch=32, val_accuracy=0.8, test_accuracy=0.8, train_images_per_sec=500.0),
    _record("mobilenet", "finetune", 0, batch=32, status="oom", error="ResourceExhaustedError: x"),
]
RECORDS = _ladder_records() + OTHER_BATCH


def _figures(mode):
    """A rung's figures worked out here: validation mean and std, step memory per image (the largest over seeds),
    median training images/s."""
    seeds = RUNGS[mode]["seeds"]
    vals = [s[0] for s in seeds]
    return {
        "val": statistics.mean(vals),
        "std": statistics.stdev(vals),
        "memory": max(s[3] for s in seeds),
        "speed": statistics.median(s[2] for s in seeds),
    }


def _times(ratio):
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×"


def _step(lower, upper, kept=""):
    a, b = _figures(lower), _figures(upper)
    return (
        f"{lower} → {upper}: {100 * (b['val'] - a['val']):+.1f} points of validation accuracy "
        f"({a['val']:.3f} → {b['val']:.3f}{kept}) for {_times(b['memory'] / a['memory'])} the step memory per "
        f"image and {_times(b['speed'] / a['speed'])} the training images/s"
    )


def test_the_ladder_has_a_row_per_rung_in_depth_order_at_the_batch_size_with_most_rungs():
    (found,) = ladders(RECORDS)
    assert found.batch_size == BATCH and found.other_batch_sizes == (32,)
    assert [r.mode for r in found.rungs] == ["transfer", "last_block", "finetune"]
    rows = {row["mode"]: {c.header: c.cell(row) for c in LADDER_COLUMNS} for row in table_rows([found])}
    assert list(rows) == ["transfer", "last_block", "finetune"]
    for mode, cells in rows.items():
        f = _figures(mode)
        assert cells["val acc mean ± std"] == f"{f['val']:.3f} ± {f['std']:.3f}"
        tests = [s[1] for s in RUNGS[mode]["seeds"]]
        assert cells["test acc mean ± std"] == f"{statistics.mean(tests):.3f} ± {statistics.stdev(tests):.3f}"
        assert cells["train img/s"] == f"{f['speed']:,.1f}"
        assert cells["seeds"] == "2" and cells["batch"] == str(BATCH)
    assert rows["transfer"]["backbone vars trained"] == f"0 of {BACKBONE_VARIABLES}"
    assert rows["last_block"]["backbone vars trained"] == f"12 of {BACKBONE_VARIABLES}"
    assert rows["finetune"]["backbone vars trained"] == f"{BACKBONE_VARIABLES} of {BACKBONE_VARIABLES}"
    assert rows["last_block"]["trains from layer"] == "MobilenetV2/expanded_conv_16/expand"
    assert rows["transfer"]["trains from layer"] == "-"
    # Step memory per image: measured (the largest over seeds) and predicted, in MiB.
    assert [rows[m]["step mem/img MiB"] for m in rows] == ["0.53", "2.00", "10.0"]
    assert [rows[m]["pred/img MiB"] for m in rows] == ["0.25", "1.50", "9.00"]


def test_rows_where_fine_tuning_kept_the_probes_start_are_marked_with_the_count():
    (found,) = ladders(RECORDS)
    kept = {row["mode"]: LADDER_COLUMNS[-1].cell(row) for row in table_rows([found])}
    assert kept == {"transfer": "-", "last_block": "1/2 seeds", "finetune": "2/2 seeds"}
    rungs = {r.mode: r for r in found.rungs}
    assert rungs["finetune"].mostly_kept_probe and not rungs["last_block"].mostly_kept_probe


def test_the_verdict_gives_each_step_s_gain_and_costs_and_takes_the_shallowest_rung_within_noise():
    (found,) = ladders(RECORDS)
    text = verdict(found)
    assert text.startswith(f"**mobilenet** (batch {BATCH}; the run also has batch 32): ")
    assert _step("transfer", "last_block", "; fine-tuning kept the probe's start in 1/2 seeds") in text
    assert _step("last_block", "finetune", "; fine-tuning kept the probe's start in 2/2 seeds") in text
    # finetune is 1 point above last_block, within last_block's and finetune's std (1.4 points): take last_block.
    last_block, finetune = _figures("last_block"), _figures("finetune")
    assert finetune["val"] - last_block["val"] <= max(last_block["std"], finetune["std"])
    assert (
        f"Take **last_block**: the shallowest rung within noise of the most accurate ({last_block['val']:.3f} "
        f"against finetune's {finetune['val']:.3f} validation accuracy)"
    ) in text


def test_a_deeper_rung_beyond_noise_is_taken_and_a_deeper_rung_below_the_probe_is_not():
    better = {**RUNGS, "finetune": {**RUNGS["finetune"], "seeds": [(0.95, 0.9, 50.0, 10.0, 2), (0.96, 0.9, 54, 9, 3)]}}
    (found,) = ladders(_ladder_records(rungs=better))
    assert "Take **finetune**: the most accurate rung (0.955 validation accuracy), beyond noise" in verdict(found)

    worse = {mode: {**rung, "seeds": [(0.9 - 0.05 * i, 0.8, *s[2:]) for s in rung["seeds"]]} for i, (mode, rung) in
             enumerate(RUNGS.items())}  # fmt: skip
    (found,) = ladders(_ladder_records(rungs=worse))
    text = verdict(found)
    assert "transfer → last_block: -5.0 points of validation accuracy (0.900 → 0.850;" in text
    assert "Take **transfer**: it is the most accurate rung (0.900 validation accuracy)" in text


def test_stand_in_weights_get_costs_only_and_no_accuracy():
    records = _ladder_records(backbone="resnet", weights="standin:random-init")
    (found,) = ladders(records)
    text = verdict(found)
    assert "the accuracy comparison needs pretrained weights" in text
    assert "points" not in text and "Take" not in text and "validation accuracy (" not in text
    t, lb = _figures("transfer"), _figures("last_block")
    assert (
        f"transfer → last_block: {_times(lb['memory'] / t['memory'])} the step memory per image and "
        f"{_times(lb['speed'] / t['speed'])} the training images/s"
    ) in text
    rows = [{c.header: c.cell(row) for c in LADDER_COLUMNS} for row in table_rows([found])]
    assert {row["val acc mean ± std"] for row in rows} == {"stand-in"}
    assert {row["test acc mean ± std"] for row in rows} == {"stand-in"}
    assert rows[1]["step mem/img MiB"] == "2.00"  # the costs hold


def test_a_rung_out_of_memory_at_the_shown_batch_size_is_listed_and_left_out_of_the_steps():
    records = [
        *_ladder_records(rungs={m: RUNGS[m] for m in ("transfer", "last_block")}),
        _record("mobilenet", "finetune", 0, status="oom", error="ResourceExhaustedError: x"),
        _record("mobilenet", "finetune", 1, status="oom", error="ResourceExhaustedError: x"),
    ]
    (found,) = ladders(records)
    rows = {row["mode"]: {c.header: c.cell(row) for c in LADDER_COLUMNS} for row in table_rows([found])}
    assert rows["finetune"]["seeds"] == "0 of 2 ok (2 oom)" and rows["finetune"]["val acc mean ± std"] == "-"
    text = verdict(found)
    assert f"No result for finetune at batch {BATCH}: 2 oom of 2 trials." in text
    assert "last_block → finetune" not in text and "transfer → last_block: +6.0 points" in text


def test_ties_in_rungs_go_to_the_largest_batch_size():
    records = [
        _record("m", mode, 0, batch=batch, val_accuracy=0.9, test_accuracy=0.9, train_images_per_sec=10.0)
        for batch in (8, 32)
        for mode in ("transfer", "finetune")
    ]
    (found,) = ladders(records)
    assert found.batch_size == 32 and found.other_batch_sizes == (8,)
    assert "One seed on some rung" in verdict(found)


def test_a_run_with_only_transfer_says_there_is_one_rung(tmp_path):
    records = [r for r in RECORDS if r["mode"] == "transfer"]
    report = render_markdown(RunContents(Path("run"), records=records, env={}, warnings=[]))
    section = report.split("## Does fine-tuning pay?", 1)[1].split("\n## ", 1)[0]
    assert "Only one rung of the ladder ran per backbone (transfer): there is nothing to compare." in section
    assert "| mode |" not in section and "Take" not in section
    written = write_report(read_run(_written_run(tmp_path, records)))
    assert "ladder.png" not in written


def test_backbones_with_one_rung_beside_a_full_ladder_are_named():
    records = RECORDS + [_record("inception", "transfer", 0, val_accuracy=0.7, test_accuracy=0.7)]
    report = render_markdown(RunContents(Path("run"), records=records))
    assert "Only one rung of the ladder ran for inception (transfer): nothing to compare there." in report
    assert "- **mobilenet** (batch 16; the run also has batch 32): transfer → last_block: +6.0 points" in report


def test_no_ladder_section_without_results():
    failed = [_record("m", "finetune", 0, status="oom")]
    assert "Does fine-tuning pay?" not in render_markdown(RunContents(Path("run"), records=failed))


def _written_run(tmp_path, records):
    run = tmp_path / "20261128T000000Z-h-cpu"
    run.mkdir()
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "env.json").write_text(json.dumps({"host": "h", "plan": {"protocol": {"batch_norm": "frozen"}}}))
    return run


def test_the_report_has_the_section_with_table_verdicts_and_plot(tmp_path):
    import base64

    records = RECORDS + _ladder_records(backbone="resnet", weights="standin:random-init")
    run = read_run(_written_run(tmp_path, records))
    written = write_report(run)
    png = (run.run_dir / "ladder.png").read_bytes()
    assert written["ladder.png"] == run.run_dir / "ladder.png"
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    markdown, page = written["report.md"].read_text(), written["report.html"].read_text()
    assert "## Does fine-tuning pay?" in markdown and "<h2>Does fine-tuning pay?</h2>" in page
    section = markdown.split("## Does fine-tuning pay?", 1)[1].split("\n## ", 1)[0]
    header = "| " + " | ".join(c.header for c in LADDER_COLUMNS) + " |"
    assert header in section and section.count("| mobilenet |") == 3 and section.count("| resnet |") == 3
    assert "](ladder.png)" in section
    assert base64.b64encode(png).decode() in page
    assert "Take <strong>last_block</strong>" in page
    assert "- **resnet** (batch 16): transfer → last_block: 3.8× the step memory per image" in section
    assert "The backbone's BatchNorm while it trained: frozen." in section
    assert "the backbone's BatchNorm while it trains: frozen." in markdown  # the protocol
    assert "In 2 of 4 last_block, 4 of 4 finetune trials no fine-tuning epoch" in markdown


def test_the_terminal_prints_the_ladder():

    text = io.StringIO()
    print_table(RunContents(Path("run"), records=RECORDS), Console(file=text, width=250, color_system=None))
    out = text.getvalue()
    assert "Does fine-tuning pay?" in out and "Take last_block:" in out and "**" not in out


@pytest.mark.parametrize("mode", ["last_block", "last_stage"])
def test_the_other_plots_and_tables_take_the_new_modes(tmp_path, mode):
    from tlbench.reports.plots import MODE_MARKER, MODE_STYLE

    assert mode in MODE_STYLE and mode in MODE_MARKER
    records = _ladder_records(rungs={"transfer": RUNGS["transfer"], mode: RUNGS["last_block"]})
    records += [{**r, "batch_size": 32, "trial_id": r["trial_id"] + "-32"} for r in records]
    written = write_report(read_run(_written_run(tmp_path, records)))
    assert {"memory.png", "throughput.png", "accuracy_vs_throughput.png", "ladder.png"} <= set(written)
    assert f"| mobilenet | {mode} |" in written["report.md"].read_text()


def test_the_noise_rule_is_stated_where_it_is_used():
    from tlbench.reports import rules

    assert "0.5 points" in rules.RUNGS_NOISE_RULE and rules.NOISE_POINTS == 0.005
    assert "0.5 points" in rules.ONE_SEED_RUNGS
