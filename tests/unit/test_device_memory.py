"""The device's memory: the largest batch that fits by the graph, the report's
device-size table, `--device-memory` as the command line, env.json and the
CPU allocator's limit take it."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records import MIB, trial
from reporting import render_markdown

from tlbench import checks, device_memory
from tlbench.device_memory import COMMON_SIZES, GIB, largest_batch, predicted_device_peak
from tlbench.driver.request import RunPlan, RunRequest
from tlbench.errors import UsageError, described
from tlbench.plan import ModuleSource, Protocol

LINES = st.lists(st.tuples(st.integers(0, 10**8), st.integers(-(10**6), 10**9)), min_size=1, max_size=4)


def _costs(lines, weights=0, slots=0, image_size=128, **fields) -> dict:
    return {
        "predicted_train_step_peak_lines": [list(line) for line in lines],
        "weight_bytes": weights,
        "optimizer_slot_bytes": slots,
        "image_size": image_size,
        **fields,
    }


@given(LINES, st.integers(0, 10**9), st.integers(0, 2 * 10**9), st.integers(1, 300), st.integers(2**20, 2**37))
def test_the_largest_batch_is_the_last_that_fits_by_the_prediction(lines, weights, slots, image_size, device):
    costs = _costs(lines, weights, slots, image_size)
    largest = largest_batch(costs, device)
    assert predicted_device_peak(costs, largest + 1) > device
    if largest:
        assert predicted_device_peak(costs, largest) <= device
    else:
        assert predicted_device_peak(costs, 1) > device


def test_the_largest_batch_by_hand():
    # Weights 100 MiB, slots 200 MiB; 128x128 images (196,612 bytes with the label); the step's peak is the larger
    # of 1 MiB/image + 50 MiB and 2 MiB/image - 10 MiB.
    costs = _costs([(MIB, 50 * MIB), (2 * MIB, -10 * MIB)], 100 * MIB, 200 * MIB)
    per_image = 2 * MIB + 128 * 128 * 3 * 4 + 4
    assert largest_batch(costs, GIB) == (GIB - 300 * MIB + 10 * MIB) // per_image == 335
    assert largest_batch(costs, 300 * MIB) == 0  # the weights and slots fill it: no batch fits


def test_the_report_has_the_largest_batch_for_each_device_size_per_backbone_and_mode():
    lines = [[MIB, 0]]
    common = {"predicted_train_step_peak_lines": lines, "weight_bytes": 0, "optimizer_slot_bytes": 0}
    records = [
        trial("resnet_v2_50", "finetune", 8, 0, image_size=224, **common, device_memory_bytes=2 * GIB),
        trial("resnet_v2_50", "transfer", 8, 0, image_size=224, **{**common, "predicted_train_step_peak_lines": []}),
        trial(
            "mobilenet_v2_035_128", "finetune", 16, 0, image_size=128, **common,
            device_memory_bytes=GIB, device_memory_emulated=True,
        ),
        trial("mobilenet_v2_035_128", "transfer", 16, 0, image_size=128, **common),
    ]  # fmt: skip
    report = render_markdown(records)
    table = report.split("## The largest batch that fits a device")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| backbone | mode | 8 GiB | 16 GiB | 24 GiB | 40 GiB | 80 GiB | this run's device |"
    expected = {
        ("resnet_v2_50", "finetune"): (224, "(2.0 GiB)"),
        ("mobilenet_v2_035_128", "transfer"): (128, None),
        ("mobilenet_v2_035_128", "finetune"): (128, "(1.0 GiB, --device-memory)"),
    }  # resnet_v2_50 transfer has no prediction: no row
    assert [tuple(row.split(" | ")[:2]) for row in rows[1:]] == [
        ("| resnet_v2_50", "finetune"),
        ("| mobilenet_v2_035_128", "transfer"),  # shallowest first
        ("| mobilenet_v2_035_128", "finetune"),
    ]
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
        size, own = expected[(cells[0], cells[1])]
        per_image = MIB + size * size * 3 * 4 + 4
        assert cells[2:7] == [str(device // per_image) for device in COMMON_SIZES]
        device = 2 * GIB if cells[0] == "resnet_v2_50" else GIB
        assert cells[7] == ("-" if own is None else f"{device // per_image} {own}")


def test_device_memory_sizes_are_checked_as_the_command_line_and_env_json_give_them():
    assert checks.device_memory("2GiB") == 2 * GIB and checks.device_memory("1.5 GB") == 1_500_000_000
    assert checks.device_memory(2 * GIB) == 2 * GIB  # as env.json records it
    for bad in ("lots", "0", "512KiB", "-1GiB", 512, 0, True, 1.5e9, None):
        with pytest.raises(UsageError, match="device memory must"):
            checks.device_memory(bad)


def test_the_plan_keeps_the_device_memory_for_resume_and_every_trial():
    request = RunRequest("digits", ("mobilenet_v2_035_128",), ("transfer",), (8, 16), device_memory=2 * GIB)
    plan = request.resolve(0, {"mobilenet_v2_035_128": ModuleSource("standin", "/m")}, {"mobilenet_v2_035_128": 1})
    recorded = json.loads(json.dumps(plan.as_json()))  # as env.json holds it
    again = RunPlan.from_json(recorded, "env.json")
    assert again.device_memory == 2 * GIB and again.protocol == Protocol()
    assert {spec.device_memory for spec in again.grid()} == {2 * GIB}
    older = {key: value for key, value in recorded.items() if key != "device_memory"}
    assert RunPlan.from_json(older, "env.json").device_memory is None  # a run recorded before the flag


def test_the_cpu_allocator_gets_the_device_size_in_whole_mib(monkeypatch):
    monkeypatch.delenv(device_memory.CPU_LIMIT_VARIABLE, raising=False)
    assert device_memory.cpu_allocator_limit() is None
    assert device_memory.limit_cpu_allocator(GIB) == GIB == device_memory.cpu_allocator_limit()
    limit = device_memory.limit_cpu_allocator(GIB + 1)
    assert limit == device_memory.cpu_allocator_limit() == GIB + MIB  # whole MiB, rounded up


def test_an_out_of_memory_error_of_a_compiled_step_is_told_by_its_oom_line():
    class ResourceExhaustedError(Exception):  # TensorFlow's, as a tf.function's step raises it
        pass

    message = (
        "Graph execution error:\n\nDetected at node StatefulPartitionedCall defined at (most recent call last):\n"
        '  File "train.py", line 3, in <module>\n\n  File "model.py", line 9, in train_step\n\n'
        "OOM when allocating tensor with shape[64,64,64,96] and type float on /job:localhost/replica:0/task:0/"
        "device:CPU:0 by allocator cpu\n\t [[{{node conv}}]]\nHint: If you want to see a list of allocated tensors "
        "when OOM happens, add report_tensor_allocations_upon_oom to RunOptions. [Op:__inference_step_123]"
    )
    assert described(ResourceExhaustedError(message)) == (
        "ResourceExhaustedError: OOM when allocating tensor with shape[64,64,64,96] and type float on "
        "/job:localhost/replica:0/task:0/device:CPU:0 by allocator cpu"
    )
    unavailable = "Graph execution error:\n\n<stack traces unavailable>\nOOM when allocating tensor\n\t [[{{node x}}]]"
    assert described(ResourceExhaustedError(unavailable)) == "ResourceExhaustedError: OOM when allocating tensor"
    assert described(ValueError("bad\nvalue")) == "ValueError: bad"  # other errors: their first line
