"""The command line: exit statuses, signals, `list`, `report`. The table of
bad inputs (one line, exit 2, never a traceback) is tests/test_adversarial.py."""

import json
import signal
import subprocess
import sys

from tlbench import results
from tlbench.cli import main


def _module_dir(tmp_path):
    module = tmp_path / "module"
    module.mkdir()
    (module / "saved_model.pb").write_bytes(b"")
    return module


def test_module_override_accepts_a_saved_model_folder(tmp_path):
    from tlbench.driver.request import parse_module_overrides

    module = _module_dir(tmp_path)
    assert parse_module_overrides([f"mobilenet_v2_035_128={module}"]) == {"mobilenet_v2_035_128": str(module)}
    assert parse_module_overrides(["resnet_v2_50=https://example.org/m/1"]) == {
        "resnet_v2_50": "https://example.org/m/1"
    }


def test_exit_status_and_stderr_of_the_real_command(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tlbench", "run", "--backbone", "resnet50"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlbench: error: unknown backbone 'resnet50'")
    assert "Traceback" not in done.stderr


def test_list_shows_every_backbone_mode_and_the_default_dataset(capsys):
    from tlbench.registry import BACKBONES

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for backbone in BACKBONES:
        assert backbone.name in out and backbone.handle in out
    assert "transfer, last_block, last_stage, finetune" in out and "'digits'" in out
    # FLOPs per image counted from each architecture's graph (in a subprocess:
    # the command itself never imports TensorFlow), e.g. MobileNet V2 0.35/128's
    # 0.038 GFLOPs and ResNet V2 50's 6.97.
    assert "GFLOPs/image" in out and "0.038" in out and "6.974" in out
    assert "FLOPs not counted" not in out


def test_report_reprints_a_saved_run(tmp_path, capsys):
    run_dir = tmp_path / "20261128T000000Z-h-cpu"
    run_dir.mkdir()
    record = {
        "trial_id": "x",
        "backbone": "resnet_v2_50",
        "mode": "transfer",
        "batch_size": 16,
        "dataset": "digits",
        "status": "ok",
        "test_accuracy": 0.5,
        "train_images_per_sec": 12.5,
    }
    results.append_record(run_dir, record)
    (run_dir / results.ENV).write_text(json.dumps({"host": "h"}))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["report", str(run_dir)]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # put back
    out = capsys.readouterr().out
    assert "resnet_v2_50" in out and "12.5" in out and "0.500" in out
    assert (run_dir / results.REPORT_MD).read_text().count("resnet_v2_50") == 1


# `report` stopped by SIGTERM as `kill` sends it, at a known point: as it
# starts reading the run folder.
TERMINATED_IN_REPORT = """
import os, signal, sys
from tlbench import results
from tlbench.cli import main

read_run = results.read_run

def read_run_after_sigterm(run_dir):
    os.kill(os.getpid(), signal.SIGTERM)
    return read_run(run_dir)

results.read_run = read_run_after_sigterm
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_no_run_is_going_exits_143_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / results.ENV).write_text("{}")
    done = subprocess.run(
        [sys.executable, "-c", TERMINATED_IN_REPORT, "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr == "tlbench: terminated\n"
    assert not (run_dir / results.REPORT_MD).exists()  # stopped before it wrote anything
