"""The search protocol: early stopping on validation loss, the probed start
kept when fine-tuning doesn't improve on it, learning rates scaled by batch."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tlbench.plan import REFERENCE_BATCH_SIZE, scaled_learning_rate
from tlbench.worker.training import Evaluation, _search, evaluate


class _Split:
    """Four feature vectors, all of class 0."""

    def batches(self, batch_size, *, shuffle_seed=None):
        return [(tf.zeros([4, 16]), tf.zeros([4], tf.int32))]


def _scripted_predict(losses):
    """Logits whose cross-entropy on class 0 is the next of `losses`, one per
    evaluation: log(1 + e^-a) = L for logits (a, 0)."""
    script = iter(losses)

    def predict(features):
        a = -math.log(math.expm1(next(script)))
        return tf.tile([[a, 0.0]], [features.shape[0], 1])

    return predict


@pytest.fixture(scope="module")
def classifier(tiny_module):
    from tlbench.worker.model import Classifier

    return Classifier(tiny_module, 32, 2, mode="transfer")


def _run(classifier, losses, *, start_evaluation=None, epochs=10, patience=2, learning_rates=(1e-3,), halving=False):
    predict = _scripted_predict(losses)
    return _search(
        classifier,
        classifier.model.get_weights(),
        lambda shuffle_seed: 0.0,  # an epoch: its mean training loss
        lambda: evaluate(predict, _Split().batches(4)),
        classifier.head,
        batch_size=4,
        learning_rates=learning_rates,
        epochs=epochs,
        patience=patience,
        seed=0,
        seconds_before=0.0,
        start_evaluation=start_evaluation,
        halving=halving,
    )


def test_early_stopping_keeps_the_lowest_validation_loss(classifier):
    search = _run(classifier, [1.0, 0.5, 0.7, 0.6, 0.4, 0.3])
    candidate = search.best
    assert candidate["kept_epoch"] == 2 and candidate["epochs_run"] == 4 and candidate["stopped_early"]
    assert [round(p["val_loss"], 6) for p in candidate["val_curve"]] == [1.0, 0.5, 0.7, 0.6]
    assert search.val.loss == pytest.approx(0.5)


def test_a_run_that_keeps_improving_runs_every_epoch(classifier):
    candidate = _run(classifier, [0.9, 0.8, 0.7], epochs=3).best
    assert candidate["kept_epoch"] == 3 and candidate["epochs_run"] == 3 and not candidate["stopped_early"]


def test_the_probed_start_is_epoch_0_and_is_kept_when_fine_tuning_does_worse(classifier):
    start = Evaluation(loss=0.3, accuracy=1.0)
    candidate = _run(classifier, [0.4, 0.35, 0.2], start_evaluation=start).best
    assert candidate["kept_epoch"] == 0 and candidate["epochs_run"] == 2
    assert [p["epoch"] for p in candidate["val_curve"]] == [0, 1, 2]
    assert candidate["val_curve"][0]["train_loss"] is None


def test_the_kept_weights_are_those_of_the_kept_epoch(classifier):
    classifier.head.set_weights([np.zeros((16, 2), np.float32), np.zeros(2, np.float32)])
    moving = iter(range(1, 100))

    def epoch(shuffle_seed):  # each epoch moves the bias, so each epoch's weights differ
        classifier.head.layers[0].bias.assign(tf.fill([2], float(next(moving))))
        return 0.0

    predict = _scripted_predict([0.9, 0.4, 0.6, 0.7])
    search = _search(
        classifier,
        classifier.model.get_weights(),
        epoch,
        lambda: evaluate(predict, _Split().batches(4)),
        classifier.head,
        batch_size=4,
        learning_rates=(1e-3,),
        epochs=10,
        patience=2,
        seed=0,
        seconds_before=0.0,
    )
    assert search.best["kept_epoch"] == 2
    assert np.array_equal(search.weights[1], [2.0, 2.0])  # the bias the second epoch left


def test_learning_rates_scale_with_the_square_root_of_the_batch_size():
    assert scaled_learning_rate(1e-3, REFERENCE_BATCH_SIZE) == pytest.approx(1e-3)
    assert scaled_learning_rate(1e-3, 4 * REFERENCE_BATCH_SIZE) == pytest.approx(2e-3)
    assert scaled_learning_rate(1e-3, REFERENCE_BATCH_SIZE // 4) == pytest.approx(5e-4)


def test_successive_halving_keeps_the_best_half_after_one_epoch(classifier):
    # Evaluations in order: each rate's first epoch, then the survivors', rate by rate.
    losses = [0.5, 0.9, 0.6, 0.8, 0.4, 0.3, 0.7, 0.65, 0.2]
    search = _run(classifier, losses, epochs=3, learning_rates=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), halving=True)
    curves = [[round(p["val_loss"], 6) for p in c["val_curve"]] for c in search.candidates]
    # Epoch 1: 0.5 0.9 0.6 0.8 0.4; the best two of five (0.4, 0.5) go on, in order: 1e-4, then 1.0.
    assert curves == [[0.5, 0.3, 0.7], [0.9], [0.6], [0.8], [0.4, 0.65, 0.2]]
    assert [c["stopped_at_rung"] for c in search.candidates] == [False, True, True, True, False]
    assert [c["epochs_run"] for c in search.candidates] == [3, 1, 1, 1, 3]
    assert search.best["base_learning_rate"] == 1.0 and search.val.loss == pytest.approx(0.2)
    # Of three rates, the best one goes on; one rate alone is no search to halve.
    three = _run(classifier, [0.5, 0.4, 0.6, 0.3, 0.35], epochs=3, learning_rates=(1e-4, 1e-3, 1e-2), halving=True)
    assert [c["stopped_at_rung"] for c in three.candidates] == [True, False, True]
    alone = _run(classifier, [0.5, 0.4, 0.3], epochs=3, learning_rates=(1e-4,), halving=True)
    assert alone.candidates[0]["epochs_run"] == 3 and not alone.candidates[0]["stopped_at_rung"]


def test_a_rate_paused_at_the_rung_goes_on_as_if_never_paused(tiny_module):
    """The survivors' curves are those each would have run alone: the
    optimizer's slots and step count are kept across the pause."""
    from tlbench.worker.model import Classifier

    classifier = Classifier(tiny_module, 32, 3, mode="finetune")
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(48, 32, 32, 3)), tf.float32)
    labels = tf.constant(rng.integers(0, 3, 48), tf.int32)
    start = classifier.model.get_weights()

    def search(rates, halving):
        def epoch(shuffle_seed):
            order = np.random.default_rng(shuffle_seed).permutation(48)
            batches = [order[at : at + 8] for at in range(0, 48, 8)]
            return float(np.mean([classifier.train_step(tf.gather(images, b), tf.gather(labels, b)) for b in batches]))

        return _search(
            classifier,
            start,
            epoch,
            lambda: evaluate(classifier.predict, [(images, labels)]),
            classifier.model,
            batch_size=8,
            learning_rates=rates,
            epochs=4,
            patience=4,
            seed=1,
            seconds_before=0.0,
            halving=halving,
        )

    halved = search((3e-2, 1e-6, 1e-2), halving=True)
    survivors = [i for i, c in enumerate(halved.candidates) if not c["stopped_at_rung"]]
    assert len(survivors) == 1 and survivors != [1]  # the best of three goes on; 1e-6 barely moved
    for index, rate in ((i, (3e-2, 1e-6, 1e-2)[i]) for i in survivors):
        alone = search((rate,), halving=False).candidates[0]["val_curve"]
        paused = halved.candidates[index]["val_curve"]
        assert [p["val_loss"] for p in paused] == pytest.approx([p["val_loss"] for p in alone], rel=1e-6)
        assert [p["train_loss"] for p in paused] == pytest.approx([p["train_loss"] for p in alone], rel=1e-6)
