import io
from pathlib import Path

from rich.console import Console

from tlbench import columns
from tlbench.report import render_markdown
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
