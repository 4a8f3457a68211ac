"""Training with a hyperparameter search on the validation split, and evaluation.

The protocol, the same for every trial:

1. Linear probe. The head trains on backbone features computed once per split
   (the backbone runs in inference mode, so its features don't change between
   epochs: this equals training the model on the images with the backbone
   frozen, at a fraction of the cost). Each base learning rate of the transfer
   range trains from the same start; an epoch (its batches in an order drawn
   from the seed) is one graph call.
2. Modes that train backbone variables (last_block, last_stage, finetune):
   from the probed head, the head and the backbone variables the mode trains
   (model.Classifier) train on the images, with the backbone's BatchNorm in
   the run's policy, once per base learning rate of the fine-tuning range. Starting from a trained head rather than a random one
   keeps the first large gradients from distorting the pretrained features
   (LP-FT, Kumar et al. 2022).

Every learning rate is scaled to the batch size (plan.scaled_learning_rate).
A run at one learning rate evaluates validation after every epoch, stops after
`patience` epochs without a lower validation loss and keeps the weights of the
lowest; in fine-tuning the probed start is epoch 0 and may be kept. The
learning rate whose kept weights have the best validation accuracy (ties:
lower loss) is chosen. The test split is never seen here.

Time to accuracy: the training seconds (feature pass and probe included,
evaluation excluded) until the validation accuracy of the kept weights was
first reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tlbench.plan import Budget, scaled_learning_rate
from tlbench.registry import trains_backbone
from tlbench.worker.model import Classifier
from tlbench.worker.pipeline import SplitPipeline


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float  # fraction in [0, 1]


@dataclass(frozen=True)
class Search:
    """One stage's learning-rate search."""

    candidates: list  # per learning rate: the kept epoch's figures and the validation curve
    chosen: int  # index into candidates
    weights: list  # the chosen candidate's kept weights (of the variables the stage trains)
    val: Evaluation  # the chosen candidate's kept weights on validation

    @property
    def best(self) -> dict:
        return self.candidates[self.chosen]


@dataclass(frozen=True)
class SearchResult:
    learning_rate: float  # the chosen one, as trained with (scaled to the batch size)
    base_learning_rate: float  # the chosen one at the reference batch size
    kept_epoch: int  # the chosen learning rate's kept epoch (finetune: 0 = the probed start)
    candidates: list  # the final stage's search (finetune: the fine-tuning one)
    probe_candidates: list  # the linear probe's search (transfer: the same as candidates)
    train: Evaluation  # chosen model on the training split (inference mode)
    val: Evaluation
    feature_seconds: float  # computing the cached features once
    time_to_accuracy_seconds: float


def evaluate(predict, batches) -> Evaluation:
    """Loss and accuracy of `predict` (inputs -> logits) over (inputs, labels) batches."""
    total_loss, correct, count = 0.0, 0, 0
    for inputs, labels in batches:
        logits = predict(inputs)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        total_loss += float(tf.reduce_sum(losses))
        correct += int(np.sum(np.argmax(logits, axis=-1) == np.asarray(labels)))
        count += len(labels)
    return Evaluation(loss=total_loss / count, accuracy=correct / count)


class FeatureSplit:
    """A split's backbone features, computed once."""

    def __init__(self, classifier: Classifier, split: SplitPipeline, batch_size: int):
        features = [classifier.extract_features(x) for x, _ in split.batches(batch_size)]
        self.size = split.size
        self.features = tf.concat(features, axis=0)
        self.labels = tf.cast(split.labels, tf.int32)

    def batches(self, batch_size: int):
        return tf.data.Dataset.from_tensor_slices((self.features, self.labels)).batch(batch_size)

    def order(self, shuffle_seed: int) -> np.ndarray:
        """An epoch's order of the examples: a permutation drawn from `shuffle_seed`."""
        return np.random.default_rng(shuffle_seed).permutation(self.size).astype(np.int32)


def fit_and_select(
    classifier: Classifier,
    train: SplitPipeline,
    val: SplitPipeline,
    *,
    mode: str,
    batch_size: int,
    budget: Budget,
    seed: int,
) -> SearchResult:
    """The protocol of this module. Each stage, "transfer" (the probe) and
    "finetune" (backbone variables train), takes the budget's learning rates, most epochs and patience
    for that mode."""

    def stage(name: str) -> dict:
        return {
            "learning_rates": budget.learning_rates[name],
            "epochs": budget.epochs(name),
            "patience": budget.patience[name],
        }

    started = time.perf_counter()
    train_features, val_features = (
        FeatureSplit(classifier, train, batch_size),
        FeatureSplit(classifier, val, batch_size),
    )
    feature_seconds = time.perf_counter() - started

    def probe_epoch(shuffle_seed: int) -> float:
        order = train_features.order(shuffle_seed)
        return float(classifier.head_train_epoch(train_features.features, train_features.labels, order, batch_size))

    def images_epoch(shuffle_seed: int) -> float:
        return float(
            np.mean(
                [float(classifier.train_step(x, y)) for x, y in train.batches(batch_size, shuffle_seed=shuffle_seed)]
            )
        )

    start = classifier.model.get_weights()
    probe = _search(
        classifier,
        start,
        probe_epoch,
        lambda: evaluate(classifier.predict_from_features, [(val_features.features, val_features.labels)]),
        classifier.head,
        batch_size=batch_size,
        seed=seed,
        seconds_before=feature_seconds,
        **stage("transfer"),
    )
    classifier.model.set_weights(start)
    classifier.head.set_weights(probe.weights)
    final, predict, evaluated_train = probe, classifier.predict_from_features, train_features
    if trains_backbone(mode):
        final = _search(
            classifier,
            classifier.model.get_weights(),
            images_epoch,
            lambda: evaluate(classifier.predict, val.batches(batch_size)),
            classifier.model,
            batch_size=batch_size,
            seed=seed,
            seconds_before=probe.best["val_curve"][-1]["train_seconds"],
            start_evaluation=probe.val,
            **stage("finetune"),
        )
        classifier.model.set_weights(final.weights)
        predict, evaluated_train = classifier.predict, train
    return SearchResult(
        learning_rate=final.best["learning_rate"],
        base_learning_rate=final.best["base_learning_rate"],
        kept_epoch=final.best["kept_epoch"],
        candidates=final.candidates,
        probe_candidates=probe.candidates,
        train=evaluate(predict, evaluated_train.batches(batch_size)),
        val=final.val,
        feature_seconds=feature_seconds,
        time_to_accuracy_seconds=final.best["time_to_accuracy_seconds"],
    )


def _search(
    classifier: Classifier,
    start: list,
    train_epoch,
    evaluate_val,
    trained,
    *,
    batch_size: int,
    learning_rates,
    epochs: int,
    patience: int,
    seed: int,
    seconds_before: float,
    start_evaluation: Evaluation | None = None,
) -> Search:
    """Train `trained` (a layer or model) from the model weights `start`, once
    per base learning rate: `train_epoch(shuffle_seed)` runs an epoch and
    returns its mean training loss, `evaluate_val()` evaluates validation; with early stopping on validation
    loss. `start_evaluation`: the start's validation figures, when the start
    itself may be kept (epoch 0)."""
    candidates, best, best_key = [], None, None
    for base in learning_rates:
        learning_rate = scaled_learning_rate(base, batch_size)
        classifier.restart(learning_rate, start)
        curve, seconds, kept = [], seconds_before, None
        if start_evaluation is not None:
            curve.append(_point(0, seconds, None, start_evaluation))
            kept = (0, start_evaluation, trained.get_weights())
        for epoch in range(1, epochs + 1):
            began = time.perf_counter()
            train_loss = train_epoch(seed * 1000 + epoch)
            seconds += time.perf_counter() - began
            result = evaluate_val()
            curve.append(_point(epoch, seconds, train_loss, result))
            if kept is None or result.loss < kept[1].loss:
                kept = (epoch, result, trained.get_weights())
            elif epoch - kept[0] >= patience:
                break  # early stopping: no lower validation loss for `patience` epochs
        kept_epoch, kept_result, kept_weights = kept
        candidates.append(
            {
                "base_learning_rate": base,
                "learning_rate": learning_rate,
                "kept_epoch": kept_epoch,
                "epochs_run": curve[-1]["epoch"],
                "stopped_early": curve[-1]["epoch"] < epochs,
                "val_accuracy": kept_result.accuracy,
                "val_loss": kept_result.loss,
                "time_to_accuracy_seconds": next(
                    point["train_seconds"] for point in curve if point["val_accuracy"] >= kept_result.accuracy
                ),
                "val_curve": curve,
            }
        )
        key = (kept_result.accuracy, -kept_result.loss)
        if best_key is None or key > best_key:
            best_key, best = key, (len(candidates) - 1, kept_weights, kept_result)
    chosen, weights, val_result = best
    return Search(candidates=candidates, chosen=chosen, weights=weights, val=val_result)


def _point(epoch: int, seconds: float, train_loss: float | None, result: Evaluation) -> dict:
    return {
        "epoch": epoch,
        "train_seconds": seconds,
        "train_loss": train_loss,  # training mode, mean over the epoch; None for the start
        "val_accuracy": result.accuracy,
        "val_loss": result.loss,
    }
