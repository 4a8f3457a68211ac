"""Micro-benchmarks of the compiled steps a trial is timed with.

For each default backbone x mode at a small batch: one training step (forward,
backward, optimizer) and one inference step, with stand-in weights (same
architecture, random initial weights; speed and memory don't depend on the
values). `extra_info` carries images/s, FLOP/s (FLOPs per image counted from
the graph, as trials record them), peak bytes, the bytes a step adds on top of
what is resident, and how they were measured.

    pytest bench/ --benchmark-only
"""

from __future__ import annotations

import pytest

from tlbench.plan import DEFAULT_MODES
from tlbench.registry import DEFAULT_BACKBONES, get_backbone

BATCH_SIZE = 8


CASES = [(b, m) for b in DEFAULT_BACKBONES for m in DEFAULT_MODES["cpu"]]
UNTIMED_CASE = ("mobilenet_v2_035_128", "transfer")  # the cheapest: CI's untimed pass shows the steps run


@pytest.fixture(scope="module", params=CASES, ids="-".join)
def classifier_and_batch(request):
    import numpy as np
    import tensorflow as tf

    from tlbench.worker.costs import trial_costs
    from tlbench.worker.devices import onednn_enabled
    from tlbench.worker.kernel_scratch import conv_kernels
    from tlbench.worker.model import Classifier
    from tlbench.worker.weights import export_standin

    if request.config.getoption("benchmark_disable") and request.param != UNTIMED_CASE:
        pytest.skip("untimed: one configuration shows that the steps run")
    name, mode = request.param
    backbone = get_backbone(name)
    module = str(export_standin(backbone))
    classifier = Classifier(module, backbone.image_size, 10, mode, ladder=backbone.ladder)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((BATCH_SIZE, backbone.image_size, backbone.image_size, 3), dtype=np.float32))
    labels = tf.constant(rng.integers(0, 10, BATCH_SIZE, dtype=np.int32))
    kernels = conv_kernels("CPU:0", onednn_enabled())  # as a trial on this CPU runs them
    return classifier, images, labels, trial_costs(classifier, mode, module, kernels)


def _run(benchmark, step, flops_per_image: int):
    from tlbench.worker.measure import TensorFlowPeakMemory

    memory = TensorFlowPeakMemory("CPU:0")
    step()  # trace outside the measured rounds
    memory.reset()
    before = memory.in_use()  # this process also holds other benchmarks' models
    benchmark.pedantic(step, rounds=3, warmup_rounds=1, iterations=1)
    peak, method = memory.peak()
    images_per_sec = BATCH_SIZE / benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info.update(
        batch_size=BATCH_SIZE,
        images_per_sec=images_per_sec,
        flops_per_image=flops_per_image,
        flops_per_sec=images_per_sec * flops_per_image if images_per_sec else None,
        peak_memory_bytes=peak,
        step_memory_bytes=peak - before,  # what one step adds on top of what is resident
        memory_method=method,
    )


def test_train_step(benchmark, classifier_and_batch):
    classifier, images, labels, costs = classifier_and_batch
    _run(benchmark, lambda: float(classifier.train_step(images, labels)), costs["train_flops_per_image"])


def test_inference_step(benchmark, classifier_and_batch):
    classifier, images, _, costs = classifier_and_batch
    _run(benchmark, lambda: classifier.predict(images).numpy(), costs["forward_flops_per_image"])
