"""Bad input: one clear line on stderr and exit status 2, never a traceback."""

import json
import subprocess
import sys

import pytest

from tlbench import results
from tlbench.cli import main


def _module_dir(tmp_path):
    module = tmp_path / "module"
    module.mkdir()
    (module / "saved_model.pb").write_bytes(b"")
    return module


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "say a command"),
        (["rn"], "unknown command 'rn': did you mean 'run'?"),
        (["run"], "say what to run"),
        (["run", "--all", "--backbone", "resnet_v2_50"], "--all runs the default grid"),
        (["run", "--backbone", "resnet50"], "unknown backbone 'resnet50': did you mean 'resnet_v2_50'?"),
        (["run", "--mode", "finetuning"], "unknown mode 'finetuning': did you mean 'finetune'?"),
        (["run", "--batch-size", "0"], "between 1 and 4096, got 0"),
        (["run", "--batch-size", "-8"], "between 1 and 4096, got -8"),
        (["run", "--batch-size", "1e9"], "whole number, got '1e9'"),
        (["run", "--batch-size", "16.5"], "whole number, got '16.5'"),
        (["run", "--batch-size", "100000"], "between 1 and 4096, got 100000"),
        (["run", "--all", "--seed", "x"], "seed must be a whole number"),
        (["run", "--all", "--seeds", "0"], "seeds must be between 1 and 100, got 0"),
        (["run", "--all", "--split-seed", "-1"], "seed must be between 0 and 2147483647, got -1"),
        (["run", "--all", "--train-size", "0"], "train size must be 1 or more, got 0"),
        (["run", "--all", "--train-size", "5"], "--train-size 5 is less than the 10 classes of 'digits'"),
        (["run", "--all", "--batch-norm-momentum", "1"], "momentum must be between 0 and 1 (exclusive), got 1"),
        (["run", "--all", "--batch-norm-momentum", "high"], "momentum must be a number, got 'high'"),
        (["run", "--all", "--dataset", "tfds:"], "tfds:NAME needs a name"),
        (["run", "--all", "--weights", "pretrained"], "invalid choice: 'pretrained'"),
        (["run", "--all", "--batch-norm", "frozn"], "invalid choice: 'frozn'"),
        (["run", "--backbone", "inception_v3", "--mode", "last_block"], "'inception_v3' does not have"),
        (["run", "--mode", "last_blok"], "did you mean 'last_block'?"),
        (["run", "--all", "--module", "resnet_v2_50"], "--module takes NAME=PATH_OR_URL"),
        (["run", "--all", "--module", "resnet=/tmp"], "unknown backbone 'resnet'"),
        (["run", "--all", "--module", "resnet_v2_50=/no/such/dir"], "is not a directory"),
        (["run", "--all", "--module", "resnet_v2_50={tmp}"], "holds no saved_model.pb"),
        (["run", "--all", "--dataset", "cifar"], "neither 'digits' nor an existing folder; give 'digits'"),
        (["run", "--all", "--dataset", "digit"], "did you mean 'digits'?"),
        (["run", "--all", "--out", "{file}"], "is a file"),
        (["run", "--all", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "--all", "--address", "127.0.0.1:9", "--out", "{tmp}/runs"], "nothing answers there"),
        (["report", "{tmp}"], "not a tlbench run folder"),
        (["report", "{tmp}", "--memory-budget", "lots"], "memory budget must be a size such as 4GiB"),
        (["report", "{tmp}", "--min-accuracy", "90"], "min accuracy must be between 0 and 1, got 90"),
        (["report", "{tmp}", "--min-throughput", "-5"], "min throughput must be more than 0, got -5"),
        (["report", "{tmp}", "--min-throughput", "nan"], "min throughput must be a finite number"),
        (["compare", "{tmp}"], "the following arguments are required: RUN_B"),
        (["compare", "{tmp}", "{tmp}/absent"], "not a tlbench run folder"),
        (["compare", "{run}", "{run}", "--slowdown", "2"], "slowdown must be between 0 and 1, got 2"),
        (["run", "--resume", "{tmp}"], "not a tlbench run folder"),
        (["run", "--resume", "{tmp}/absent"], "does not exist"),
        (["run", "--resume", "{tmp}", "--all"], "--resume keeps the grid and settings of that run; drop --all"),
        (["run", "--resume", "{tmp}", "--quick"], "--resume keeps the grid and settings of that run; drop --quick"),
        (["run", "--resume", "{tmp}", "--xla", "--mixed-precision"], "drop --xla, --mixed-precision"),
        (["run", "--resume", "{tmp}", "--seeds", "3", "--train-size", "99"], "drop --seeds, --train-size"),
        (["run", "--resume", "{run}"], "env.json has no run plan"),
        (["run", "--all", "--seed", "2147483647", "--seeds", "2"], "goes past the largest seed, 2147483647"),
        (["report", "{tmp}", "--memory-budget", "1e400"], "memory budget must be a finite size"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / results.ENV).write_text("{}")
    argv = [a.format(tmp=tmp_path, file=tmp_path / "file", run=tmp_path / "old-run") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tlbench: error: ")
    assert message in err


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
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "resnet_v2_50" in out and "12.5" in out and "0.500" in out
    assert (run_dir / results.REPORT_MD).read_text().count("resnet_v2_50") == 1
