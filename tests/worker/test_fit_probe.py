"""`--batch-size max`'s worker side for real: a probe in a fresh process on
an emulated device (the CPU allocator's limit) fits a small batch and ends
"oom" from TensorFlow's own error at a large one; the prediction it starts
from comes from the graph. (The search around them:
tests/system/test_max_batch.py.)"""

import json
import os
import subprocess
import sys

from tlbench.device_memory import EMULATION_ENV
from tlbench.plan import BUDGETS, ModuleSource, TrialSpec

MIB = 2**20
DEVICE = 384 * MIB  # MobileNet V2 0.35/128 transfer fits batch 110 here, fine-tuning 34 (measured)

PROBE = """
import json, sys
from tlbench import data
from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
from tlbench.worker.fit_probe import probe
module, batch, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = TrialSpec("mobilenet_v2_035_128", "transfer", batch, "digits", 0, BUDGETS["quick"],
                 ModuleSource("standin", module), device_memory=device)
print(json.dumps(probe(spec, data.open_dataset("digits"))))
"""


def _standin() -> str:
    from tlbench.registry import get_backbone
    from tlbench.worker.weights import export_standin

    return str(export_standin(get_backbone("mobilenet_v2_035_128")))


def _probe_in_fresh_process(module: str, batch: int) -> dict:
    done = subprocess.run(  # a worker process as run_trials starts one for an emulated device
        [sys.executable, "-c", PROBE, module, str(batch), str(DEVICE)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **EMULATION_ENV},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_probe_fits_a_small_batch_and_runs_out_of_memory_at_a_large_one():
    module = _standin()
    small, large = _probe_in_fresh_process(module, 8), _probe_in_fresh_process(module, 512)
    assert small["status"] == "ok" and small["batch_size"] == 8 and small["error"] is None
    assert 8 * MIB < small["peak_memory_bytes"] < DEVICE  # the model, the images, the steps
    assert large["status"] == "oom" and large["peak_memory_bytes"] is None
    assert large["error"].startswith("ResourceExhaustedError: OOM when allocating") and "\n" not in large["error"]
    assert small["seconds"] > 0 and large["trial_id"].endswith("-transfer-bs512-digits-seed0")


def test_the_search_starts_from_the_graphs_largest_batch_for_the_device():
    from tlbench import data
    from tlbench.worker.fit_probe import predict

    spec = TrialSpec(
        "mobilenet_v2_035_128", "finetune", 1, "digits", 0, BUDGETS["quick"], ModuleSource("standin", _standin())
    )
    predicted = predict(spec, data.open_dataset("digits"))
    assert predicted["trial_id"] == spec.trial_id and predicted["device_memory_bytes"] > 0
    assert 1 <= predicted["max_batch_size_predicted"] < 2**16
