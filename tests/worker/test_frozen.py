"""The frozen inputs, computed once per backbone (worker/frozen.py), on a
MobileNet V2 stand-in, which tlbench can cut at its last block: the
features come from the cached boundary activations through the part above
them and are the module's own within the check's tolerance, for every image;
the linear probe's path is fitted once on them, and the trials use what
applies to them."""

from __future__ import annotations

import numpy as np
import pytest

from tlbench import data
from tlbench.plan import BUDGETS, ModuleSource, TrialSpec
from tlbench.registry import get_backbone

MOBILENET = get_backbone("mobilenet_v2_035_128")


def _spec(mode: str, module: str) -> TrialSpec:
    return TrialSpec(MOBILENET.name, mode, 8, "digits", 0, BUDGETS["quick"], ModuleSource("standin", module))


@pytest.fixture(scope="module")
def shared():
    """(the stand-in's folder, the dataset, what the frozen-inputs task returns for three modes)."""
    from tlbench.worker import frozen
    from tlbench.worker.weights import export_standin

    module, images = str(export_standin(MOBILENET)), data.open_dataset(data.EMBEDDED)
    return module, images, frozen.compute(_spec("transfer", module), images, ["transfer", "last_block", "finetune"])


def test_the_features_come_from_the_cached_activations_and_are_the_modules_own(shared):
    from tlbench.worker import frozen
    from tlbench.worker.training import FeatureSplit
    from tlbench.worker.trial import load

    module, images, result = shared
    assert "error" not in result, result.get("error")
    assert result["features_via"] == "boundary:block_16_expand" and set(result["activations"]) == {"last_block"}
    setup = load(_spec("transfer", module), images)
    for name, part in (("train", setup.train), ("val", setup.val), ("test", setup.test)):
        own = FeatureSplit(setup.classifier.extract_features, part, 4).features.numpy()
        assert own.shape == result["features"][name].shape
        assert np.abs(own - result["features"][name]).max() <= frozen.TOLERANCE, name  # every image, not the first
    assert len(result["activations"]["last_block"]["train"]) == setup.train.size
    assert result["feature_images_per_sec"] > 0 and np.isfinite(result["logme"])


def test_the_probes_path_is_fitted_once_and_the_trials_use_what_applies_to_them(shared):
    from tlbench.linear import logistic_path
    from tlbench.worker.trial import run_trial

    module, images, result = shared
    fits = result["probe"]["fits"]
    assert [fit.penalty for fit in fits] == list(BUDGETS["quick"].probe_penalties)
    labels = data.capped_splits(images, 0, BUDGETS["quick"].max_train_images, BUDGETS["quick"].max_eval_images)
    own = logistic_path(result["features"]["train"], images.labels[labels.train], images.num_classes, [fits[0].penalty])
    assert np.allclose(own[0].kernel, fits[0].kernel) and own[0].train_loss == pytest.approx(fits[0].train_loss)

    transfer = run_trial(_spec("transfer", module), images, frozen=result)
    assert transfer["status"] == "ok", transfer["error"]
    used = transfer["frozen_inputs"]
    assert used["shared"] and used["probe_shared"] and used["features_via"] == "boundary:block_16_expand"
    assert [c["train_loss"] for c in transfer["probe_search"]] == [fit.train_loss for fit in fits]
    assert transfer["test_inputs"] == "features"
    # last_block trains the block above the boundary on the shared activations; its probe is on its own
    # features of them (the part above the boundary, as it trains), fitted by the trial.
    last_block = run_trial(_spec("last_block", module), images, frozen=result)
    assert last_block["status"] == "ok", last_block["error"]
    assert last_block["frozen_inputs"]["activations_shared"] and not last_block["frozen_inputs"]["probe_shared"]
    assert last_block["accuracy_path"] == "boundary"
