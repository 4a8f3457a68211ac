"""`screen`'s ranking, table and closing command, on rows as its workers
return them (the whole command: tests/system/test_screen.py)."""

from rich.console import Console

from tlbench import data
from tlbench.driver.request import RunRequest
from tlbench.driver.screen import rank, run_command, screen_table


def _row(backbone, probe, logme, status="ok"):
    if status != "ok":
        return {"backbone": backbone, "status": status, "error": "RuntimeError: no", "weights": "standin:random-init"}
    return {
        "backbone": backbone,
        "status": "ok",
        "ridge_val_accuracy": probe,
        "logme": logme,
        "infer_images_per_sec": 123.4,
        "peak_memory_bytes": 300 * 2**20,
        "weights": "standin:random-init",
    }


def test_the_probe_ranks_then_logme_and_the_failed_come_last():
    rows = [
        _row("inception_v3", 0.0, 0.0, "error"),
        _row("mobilenet_v2_035_128", 0.9, -0.2),
        _row("resnet_v2_50", 0.95, -0.5),
        _row("resnet_v2_101", 0.9, -0.1),
    ]
    assert [r["backbone"] for r in rank(rows)] == [
        "resnet_v2_50",
        "resnet_v2_101",
        "mobilenet_v2_035_128",
        "inception_v3",
    ]


def test_the_closing_command_runs_the_two_best_in_every_mode_both_have():
    request = RunRequest(data.EMBEDDED, weights="standin", modules={"resnet_v2_50": "/m", "resnet_v2_152": "/n"})
    assert run_command(["resnet_v2_50", "mobilenet_v2_035_128"], request) == (
        "python -m tlbench run --backbone resnet_v2_50 mobilenet_v2_035_128 --mode transfer last_block finetune "
        "--weights standin --module resnet_v2_50=/m"
    )
    assert "--mode transfer finetune" in run_command(["inception_v3", "resnet_v2_50"], RunRequest(data.EMBEDDED))


def test_the_table_reads_at_80_columns():
    console = Console(width=80, record=True)
    console.print(screen_table(rank([_row("mobilenet_v2_140_224", 0.9, -0.2), _row("inception_v3", 0, 0, "error")])))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "mobilenet_v2_140_224" in text and "0.900" in text and "failed" in text
