"""Partial fine-tuning on cached boundary activations: the same steps as
through the whole frozen backbone, for a converted ResNet V2 and the real
MobileNet V2 module converted; the whole search the same on either path;
and the modules it can't cut keep training on images."""

from __future__ import annotations

import numpy as np
import pytest

from tlbench import data
from tlbench.registry import get_backbone

MOBILENET = get_backbone("mobilenet_v2_035_128")
RESNET = get_backbone("resnet_v2_50")


def _images(size: int, count: int, start: int = 0):
    from tlbench.worker.pipeline import SplitPipeline

    images = data.open_dataset(data.EMBEDDED)
    return SplitPipeline(images, np.arange(start, start + count), size)


@pytest.fixture(scope="module")
def converted_mobilenet(shared_module) -> str:
    from tlbench.worker.convert import export_converted

    return str(export_converted(shared_module, MOBILENET, 0.99)[0])


@pytest.fixture(scope="module")
def converted_resnet(tmp_path_factory) -> str:
    from slim_resnet import write_slim_resnet_v2_module

    from tlbench.worker.convert import export_converted

    module = tmp_path_factory.mktemp("slim") / "resnet_v2_50"
    write_slim_resnet_v2_module(module, scope="resnet_v2_50", blocks=(3, 4, 6, 3))
    return str(export_converted(str(module), RESNET, 0.99)[0])


def _split(module: str, backbone, mode: str = "last_block"):
    from tlbench.worker.boundary import split_backbone
    from tlbench.worker.model import Classifier

    classifier = Classifier(module, backbone.image_size, 10, mode, ladder=backbone.ladder)
    images, _ = next(iter(_images(backbone.image_size, 4).batches(4)))
    split, why_not = split_backbone(classifier, module, backbone, images)
    return classifier, split, why_not


@pytest.mark.parametrize("which", ["mobilenet", "resnet"])
def test_the_last_block_trains_the_same_on_activations_as_through_the_backbone(request, which):
    """Three Adam steps each way from the same weights: the same losses and
    the same trained weights, within float tolerance."""
    import tensorflow as tf

    from tlbench.worker.boundary import TopTrainer

    module, backbone = {
        "mobilenet": (request.getfixturevalue("converted_mobilenet"), MOBILENET),
        "resnet": (request.getfixturevalue("converted_resnet"), RESNET),
    }[which]
    classifier, split, why_not = _split(module, backbone)
    assert split is not None, why_not
    assert split.layer == {"mobilenet": "block_16_expand", "resnet": "conv5_block3_preact_bn"}[which]
    batches = list(_images(backbone.image_size, 12).batches(4))
    start = classifier.model.get_weights()

    classifier.restart(1e-3, start)
    through = [float(classifier.train_step(x, tf.cast(y, tf.int32))) for x, y in batches]
    trained_through = [v.numpy() for v in classifier.trained_variables]

    classifier.restart(1e-3, start)  # the backbone and the head as they were
    trainer = TopTrainer(classifier, split)
    trainer.restart(1e-3, trainer.model.get_weights())
    on_activations = [float(trainer.train_step(split.bottom(x), tf.cast(y, tf.int32))) for x, y in batches]
    trainer.copy_to_classifier()

    assert on_activations == pytest.approx(through, rel=1e-5, abs=1e-6)
    assert through[0] != pytest.approx(through[-1], rel=1e-3)  # the weights did move
    # Adam divides each step by the gradient's running RMS: a weight whose gradient is float noise takes
    # steps of up to the learning rate either way (seen: 1.5e-5 and 5.2e-5 apart, one weight of 18,816 and
    # of 143,360). So: all but one in 10,000 weights of each variable alike, none further apart than three
    # such steps each way could take them.
    for before, after in zip(trained_through, classifier.trained_variables, strict=True):
        apart = ~np.isclose(after.numpy(), before, rtol=1e-4, atol=1e-5)
        assert apart.mean() <= 1e-4 and np.abs(after.numpy() - before).max() <= 2 * 3 * 1e-3, after.name


def test_the_search_on_activations_is_the_search_on_images(converted_mobilenet):
    """fit_and_select both ways, the same batches in the same order: every
    learning rate's curve within float tolerance, the same choice."""
    from tlbench.plan import Budget
    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.training import fit_and_select

    budget = Budget(
        name="t",
        max_train_images=None,
        max_eval_images=None,
        finetune_epochs=2,
        learning_rates={"finetune": (1e-4, 1e-3, 3e-3)},
    )
    results = {}
    for path in ("images", "boundary"):
        classifier, _, _ = _split(converted_mobilenet, MOBILENET)
        train, val = _images(128, 24), _images(128, 16, start=24)
        split, fields = accuracy_path(classifier, converted_mobilenet, MOBILENET, train, val)
        assert fields["accuracy_path"] == "boundary" and fields["boundary_layer"] == "block_16_expand"
        results[path] = fit_and_select(
            classifier, train, val, mode="last_block", batch_size=8, budget=budget, seed=0,
            split=split if path == "boundary" else None,
        )  # fmt: skip
    images, boundary = results["images"], results["boundary"]
    assert boundary.base_learning_rate == images.base_learning_rate and boundary.kept_epoch == images.kept_epoch
    for ours, theirs in zip(boundary.candidates, images.candidates, strict=True):
        assert [p["val_loss"] for p in ours["val_curve"]] == pytest.approx(
            [p["val_loss"] for p in theirs["val_curve"]], rel=1e-4
        )
    assert boundary.train.accuracy == images.train.accuracy
    assert boundary.val.loss == pytest.approx(images.val.loss, rel=1e-4)


def test_what_cant_be_cut_trains_on_images(converted_mobilenet, tmp_path):
    import shutil

    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.model import Classifier
    from tlbench.worker.weights import CONVERTED_STAMP

    train, val = _images(128, 8), _images(128, 8, start=8)
    # The same SavedModel, but not as tlbench exported it: nothing says which architecture made it.
    copy = shutil.copytree(converted_mobilenet, tmp_path / "module", ignore=shutil.ignore_patterns(CONVERTED_STAMP))
    foreign = Classifier(str(copy), 128, 10, "last_block", ladder=MOBILENET.ladder)
    _, fields = accuracy_path(foreign, str(copy), MOBILENET, train, val)
    assert fields["accuracy_path"] == "images" and "didn't export" in fields["accuracy_path_note"]
    for mode, batch_norm in (("finetune", "frozen"), ("last_block", "train")):
        classifier = Classifier(converted_mobilenet, 128, 10, mode, ladder=MOBILENET.ladder, batch_norm=batch_norm)
        _, fields = accuracy_path(classifier, converted_mobilenet, MOBILENET, train, val)
        assert fields["accuracy_path"] == "images" and "changes every epoch" in fields["accuracy_path_note"]
    transfer = Classifier(converted_mobilenet, 128, 10, "transfer")
    assert accuracy_path(transfer, converted_mobilenet, MOBILENET, train, val)[1]["accuracy_path"] == "features"


def test_a_pipelines_order_is_the_order_its_shuffled_batches_come_in():
    pipeline = _images(32, 20)
    for seed in (None, 0, 7):
        labels = np.concatenate([y.numpy() for _, y in pipeline.batches(6, shuffle_seed=seed)])
        assert labels.tolist() == pipeline.labels[pipeline.order(seed)].tolist()
    assert pipeline.order(0).tolist() != pipeline.order(1).tolist() != list(range(20))


def test_a_boundary_search_leaves_nothing_of_the_rebuilt_backbone_behind(converted_mobilenet):
    """The rebuilt backbone and its weights go with the search
    (trial.measure_accuracy collects them before the timed passes measure
    what a step starts from): nothing the classifier keeps refers to them."""
    import gc
    import weakref

    from tlbench.plan import BUDGETS
    from tlbench.worker.boundary import accuracy_path
    from tlbench.worker.training import fit_and_select

    classifier, _, _ = _split(converted_mobilenet, MOBILENET)
    train, val = _images(128, 24), _images(128, 16, start=24)
    split, _ = accuracy_path(classifier, converted_mobilenet, MOBILENET, train, val)
    rebuilt = [weakref.ref(thing) for thing in (split.top, split.bottom, *split.top.variables, *split.bottom.variables)]
    fit_and_select(
        classifier, train, val, mode="last_block", batch_size=8, budget=BUDGETS["quick"], seed=0, split=split
    )
    del split
    gc.collect()
    assert [ref for ref in rebuilt if ref() is not None] == []


ON_TWO_DEVICES = """
import json
import numpy as np
import tlbench  # noqa: F401 - tf-keras before TensorFlow
import tensorflow as tf
import tf_keras as keras

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tlbench import data
from tlbench.worker.boundary import Activations, Split
from tlbench.worker.pipeline import SplitPipeline

images, boundary = keras.Input((16, 16, 3)), keras.Input((14, 14, 4))
bottom = keras.Model(images, keras.layers.Conv2D(4, 3)(images))
top = keras.Model(boundary, keras.layers.GlobalAveragePooling2D()(boundary))
pipeline = SplitPipeline(data.open_dataset(data.EMBEDDED), np.arange(12), 16)
with tf.device("CPU:1"):  # the device the trial trains on, as a GPU would be
    activations = Activations(Split(bottom, top, "trained", 14 * 14 * 4 * 4), pipeline, 4)
    x, y = next(activations.batches(4))
    step = tf.identity(x)  # the caller's step, after the batch came
expected = np.concatenate([bottom(batch, training=False).numpy() for batch, _ in pipeline.batches(4)])
print(json.dumps({
    "values": activations.values.device, "batch": [x.device, y.device], "step": step.device,
    "difference": float(np.abs(activations.values.numpy() - expected).max()),
}))
"""


def test_activations_are_kept_in_host_memory_and_batches_gathered_there_whatever_the_callers_device():
    """In a fresh process with two logical CPUs, CPU:1 standing for a GPU:
    the values and every batch are on CPU:0, the host, and the caller's step
    still runs on its own device (a generator's device scope would hold over
    it). The frozen part runs where Activations is called: it is a
    tf.function called outside any scope of tlbench's."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ON_TWO_DEVICES], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    placed = json.loads(done.stdout.strip().splitlines()[-1])
    assert placed["values"].endswith("CPU:0") and all(d.endswith("CPU:0") for d in placed["batch"]), placed
    assert placed["step"].endswith("CPU:1") and placed["difference"] <= 1e-6, placed
