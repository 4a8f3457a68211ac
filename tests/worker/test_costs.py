"""Model costs: counted once from the graph, then read from the cache."""

import pytest


@pytest.fixture(scope="module")
def classifier(tiny_module):
    from tlbench.worker.model import Classifier

    return Classifier(tiny_module, 32, 10, mode="finetune")


def test_costs_are_counted_once_and_cached_per_module_and_mode(classifier, tiny_module, tmp_path, monkeypatch):
    from tlbench.worker import costs

    monkeypatch.setenv("TLBENCH_CACHE_DIR", str(tmp_path))
    first = costs.trial_costs(classifier, "finetune", tiny_module, "eigen")
    assert len(list(costs.cache_dir().glob("*.json"))) == 1
    assert costs.trial_costs(classifier, "finetune", tiny_module, "eigen") == first
    assert first["train_flops_per_image"] == 3 * first["forward_flops_per_image"]
    # A training step holds at least what it keeps for the backward pass, the
    # images aside (they are the caller's); an inference step holds less.
    peaks = costs.predicted_peaks(first, 8, timed_batch_bytes=0)
    resident = first["weight_bytes"] + first["optimizer_slot_bytes"]
    kept = first["predicted_activation_bytes_per_image"] - 32 * 32 * 3 * 4
    assert peaks["predicted_peak_memory_bytes"] > resident + 8 * kept
    assert resident < peaks["predicted_infer_peak_memory_bytes"] < peaks["predicted_peak_memory_bytes"]
    costs.trial_costs(classifier, "transfer", tiny_module, "eigen")
    assert len(list(costs.cache_dir().glob("*.json"))) == 2  # another mode, another entry
    (next(costs.cache_dir().glob("*.json"))).write_text("{cut")  # a damaged entry is counted again
    assert costs.trial_costs(classifier, "finetune", tiny_module, "eigen") == first


def test_backbone_flops_of_an_architecture_match_its_hub_module(shared_module):
    """MobileNet V2 0.35/128 as the stand-in architecture and as Google's real
    module: the same network, up to the module's own input scaling (a Mul and
    a Sub per input value, where the stand-in has its own x * 2 - 1)."""
    import tensorflow_hub as hub

    from tlbench.worker import costs, graphcost

    architecture = costs.backbone_flops("mobilenet_v2_035_128")
    assert costs.backbone_flops("mobilenet_v2_035_128") == architecture  # from the cache
    module = graphcost.forward_flops_per_image(hub.KerasLayer(shared_module), 128)
    assert abs(module - architecture) <= 2 * 128 * 128 * 3
    assert 30e6 < architecture < 60e6  # about 20 M multiply-adds, as published


def test_the_refusal_goes_by_the_predicted_peak_not_the_kept_activations():
    import psutil

    from tlbench.worker import costs

    huge = psutil.virtual_memory().available // 8  # per image: 16 images don't fit
    cost = {
        "weight_bytes": 2**20,
        "gradient_bytes": 2**10,
        "optimizer_slot_bytes": 2**11,
        # a transfer step keeps little for its backward pass ...
        "predicted_activation_bytes_per_image": 4,
        "predicted_activation_bytes_per_batch": 0,
        # ... but its forward pass's working set can be large
        "predicted_train_step_peak_lines": [[0, 2**20], [huge, 0]],
        "predicted_infer_step_peak_lines": [[1000, 0]],
    }
    peaks = costs.predicted_peaks(cost, 16, timed_batch_bytes=3 * 2**20)
    resident = 2**20 + 2**11 + 3 * 2**20  # weights, Adam slots, timed batches
    assert peaks == {
        "predicted_train_step_peak_bytes_per_image": huge,
        "predicted_train_step_peak_bytes_per_batch": 0,
        "predicted_infer_step_peak_bytes_per_image": 1000,
        "predicted_infer_step_peak_bytes_per_batch": 0,
        "predicted_peak_memory_bytes": resident + 16 * huge,
        "predicted_infer_peak_memory_bytes": resident + 16 * 1000,
    }
    with pytest.raises(
        costs.PredictedOutOfMemory, match=r"predicted .* GiB for training at batch 16 \(an allocator peak of"
    ):
        costs.refuse_if_too_big(peaks["predicted_peak_memory_bytes"], 16, cached_bytes=0, runtime_bytes=0)
    fits = costs.predicted_peaks(cost, 1, 0)["predicted_peak_memory_bytes"]
    costs.refuse_if_too_big(fits, 1, cached_bytes=0, runtime_bytes=None)
    # The runtime beside the allocator counts: a peak that fits alone is refused
    # when the runtime's overhead leaves no room for it.
    room = psutil.virtual_memory().available + psutil.Process().memory_info().rss
    with pytest.raises(costs.PredictedOutOfMemory, match=r"GiB of runtime beside the allocator"):
        costs.refuse_if_too_big(fits, 1, cached_bytes=0, runtime_bytes=room)


def test_a_module_is_known_by_its_content_not_its_folder(tiny_module, tmp_path):
    """A copy (prefetch's into TFHUB_CACHE_DIR, say) shares the original's
    counts and conversion; other weights or another graph get a key of their own."""
    import shutil

    from tlbench.worker.costs import module_identity_key

    copy = shutil.copytree(tiny_module, tmp_path / "copy")
    assert module_identity_key(str(copy)) == module_identity_key(tiny_module)
    index = copy / "variables" / "variables.index"
    index.write_bytes(index.read_bytes() + b"\0")
    reweighted = module_identity_key(str(copy))
    assert reweighted != module_identity_key(tiny_module)
    graph = copy / "saved_model.pb"
    graph.write_bytes(graph.read_bytes() + b"\0")
    assert module_identity_key(str(copy)) not in (reweighted, module_identity_key(tiny_module))


def test_eigens_convolution_gradients_add_their_working_buffer_to_the_step_peak(
    classifier, tiny_module, tmp_path, monkeypatch
):
    """Counted for Eigen's CPU kernels only, as a per-batch term: oneDNN's
    buffers are outside TensorFlow's allocator."""
    from tlbench.worker import costs
    from tlbench.worker.liveness import StepPeak

    monkeypatch.setenv("TLBENCH_CACHE_DIR", str(tmp_path))
    eigen = costs.trial_costs(classifier, "finetune", tiny_module, "eigen")
    onednn = costs.trial_costs(classifier, "finetune", tiny_module, "onednn")
    assert len(list(costs.cache_dir().glob("*.json"))) == 2  # one count per kind of kernels
    scratch = eigen["predicted_kernel_scratch_bytes"]
    assert onednn["predicted_kernel_scratch_bytes"] == 0 < scratch <= 32 * 2**20
    for batch in (1, 8, 64):
        added = StepPeak(tuple(map(tuple, eigen["predicted_train_step_peak_lines"]))).at(batch) - StepPeak(
            tuple(map(tuple, onednn["predicted_train_step_peak_lines"]))
        ).at(batch)
        assert 0 < added <= scratch
    assert eigen["predicted_infer_step_peak_lines"] == onednn["predicted_infer_step_peak_lines"]
