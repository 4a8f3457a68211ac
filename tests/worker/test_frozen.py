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
        # Every image, not the first; relative: the stand-in's features are about 1e-10.
        assert np.abs(own - result["features"][name]).max() <= frozen.TOLERANCE * np.abs(own).max(), name
    assert len(result["activations"]["last_block"]["train"]) == setup.train.size
    assert result["feature_images_per_sec"] > 0 and np.isfinite(result["logme"])
    # What the early answer predicts the trials' time from: the start-up and load before the first pass,
    # and the share of a pass above the boundary, timed there itself (the cut the features came through).
    assert 0 < result["setup_seconds"] < result["seconds"]
    assert set(result["top_share"]) == {"last_block"} and 0 < result["top_share"]["last_block"] < 1


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
    # last_block trains the block above the boundary on the shared activations, from the probe chosen on the
    # shared path: the features came through that same part on those activations; nothing is fitted again.
    last_block = run_trial(_spec("last_block", module), images, frozen=result)
    assert last_block["status"] == "ok", last_block["error"]
    assert last_block["frozen_inputs"]["activations_shared"] and last_block["frozen_inputs"]["probe_shared"]
    assert [c["train_loss"] for c in last_block["probe_search"]] == [fit.train_loss for fit in fits]
    assert last_block["accuracy_path"] == "boundary"


def test_a_trial_refuses_shared_inputs_that_are_not_its_own_even_at_a_stand_ins_scale(shared):
    """The check compares a trial's first images with the shared arrays,
    scaled to the features: at about 1e-10, an absolute 1e-4 would take
    another image's features (here the split's rows reversed)."""
    from tlbench.worker import frozen
    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.trial import load

    module, images, result = shared
    setup = load(_spec("transfer", module), images)
    assert np.abs(result["features"]["train"]).max() < 1e-4  # the scale at which the absolute check said nothing
    use, note = frozen.usable(result, setup.classifier, setup.train)
    assert use is not None and use["probe"] is result["probe"] and note == ""
    reversed_rows = {**result, "features": {name: f[::-1] for name, f in result["features"].items()}}
    use, note = frozen.usable(reversed_rows, setup.classifier, setup.train)
    assert use is None and "differ from the trial's own" in note

    partial = load(_spec("last_block", module), images)
    split, path = accuracy_path(partial.classifier, partial.module_path, MOBILENET, partial.train, partial.val)
    layer = path["boundary_layer"]
    use, note = frozen.usable(result, partial.classifier, partial.train, split, layer)
    assert use["activations"] is result["activations"]["last_block"] and note == ""
    cached = result["activations"]["last_block"]
    swapped = {**result, "activations": {"last_block": {**cached, "train": cached["train"][::-1]}}}
    use, note = frozen.usable(swapped, partial.classifier, partial.train, split, layer)
    assert use["activations"] is None and "activations differ" in note
