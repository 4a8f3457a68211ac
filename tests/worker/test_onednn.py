"""A trial records whether TensorFlow ran its oneDNN CPU kernels, which
change a CPU step's speed and allocator peak, as TensorFlow has it in a
fresh process: from TF_ENABLE_ONEDNN_OPTS, else its default for the CPU."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("value, expected", [("1", "True"), ("0", "False")])
def test_onednn_is_what_tensorflow_made_of_the_variable(value, expected):
    code = "from tlbench.worker.devices import onednn_enabled; print(onednn_enabled())"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": value}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == expected
