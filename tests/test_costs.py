"""Model costs: counted once from the graph, then read from the cache."""

import pytest


@pytest.fixture(scope="module")
def classifier(tiny_module):
    from tlbench.worker.model import Classifier

    return Classifier(tiny_module, 32, 10, mode="finetune")


def test_costs_are_counted_once_and_cached_per_module_and_mode(classifier, tiny_module, tmp_path, monkeypatch):
    from tlbench.worker import costs

    monkeypatch.setenv("TLBENCH_CACHE_DIR", str(tmp_path))
    first = costs.trial_costs(classifier, "finetune", tiny_module)
    assert len(list(costs.cache_dir().glob("*.json"))) == 1
    assert costs.trial_costs(classifier, "finetune", tiny_module) == first
    assert first["train_flops_per_image"] == 3 * first["forward_flops_per_image"]
    costs.trial_costs(classifier, "transfer", tiny_module)
    assert len(list(costs.cache_dir().glob("*.json"))) == 2  # another mode, another entry
    (next(costs.cache_dir().glob("*.json"))).write_text("{cut")  # a damaged entry is counted again
    assert costs.trial_costs(classifier, "finetune", tiny_module) == first


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
