"""`--device-memory` in a trial's process: where TensorFlow ran ops before
the trial, the size can't take effect, and the trial says so instead of
running on a device of another size. (A trial past the size, in its own
process as `run` starts it: tests/system/test_end_to_end.py.)"""

import os

from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
from tlbench.worker.trial import run_trial

MIB = 2**20


def test_device_memory_cannot_take_effect_after_tensorflow_ran_ops(tiny_module, monkeypatch):
    import tensorflow as tf

    from tlbench.device_memory import CPU_LIMIT_VARIABLE

    tf.zeros(1)  # this process's CPU allocator exists now, with its limit
    gpus = tf.config.list_physical_devices("GPU")
    monkeypatch.setenv(CPU_LIMIT_VARIABLE, "4096")
    source = ModuleSource("local", tiny_module)
    spec = TrialSpec("mobilenet_v2_035_128", "transfer", 8, "digits", 0, BUDGETS["quick"], source, device_memory=MIB)
    record = run_trial(spec)
    if gpus:  # a GPU: the logical device can't be made either once TensorFlow has initialised it
        assert record["status"] == "error"
        return
    assert record["status"] == "error" and "--device-memory can't take effect" in record["error"]
    assert record["device_memory_bytes"] == MIB and record["device_memory_emulated"] is True
    assert os.environ[CPU_LIMIT_VARIABLE] == "4096"  # put back: this process's children keep their limit
