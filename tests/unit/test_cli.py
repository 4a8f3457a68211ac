"""The command line in this process: `--module` overrides, `report` on a saved
run. The table of bad inputs (one line, exit 2, never a traceback) is
tests/unit/test_adversarial.py; `list` (its FLOP counts come from a fresh
process with TensorFlow) is tests/worker/test_list.py; the real command's exit
status and signals are tests/system/test_command.py."""

import json
import signal

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
