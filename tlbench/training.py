"""Training with a learning-rate search on the validation split, and evaluation.

Transfer mode trains the head on backbone features computed once per split:
the backbone is frozen and runs in inference mode, so its features don't change
between epochs and the result equals training the whole model on the images,
at a fraction of the cost. Finetune mode trains the whole model on the images.

Time to accuracy: the training seconds (the feature pass included, evaluation
excluded) the chosen learning rate needed to first reach the validation
accuracy it ended with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tlbench.model import Classifier
from tlbench.pipeline import SplitPipeline


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float  # fraction in [0, 1]


@dataclass(frozen=True)
class SearchResult:
    learning_rate: float  # the candidate with the best validation accuracy
    candidates: list  # per learning rate: val_accuracy, val_loss, train_loss, val_curve
    train: Evaluation  # chosen model on the training split (inference mode)
    val: Evaluation
    feature_seconds: float  # transfer: computing the cached features once; else 0
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
    """A split's backbone features, computed once; batches like SplitPipeline."""

    def __init__(self, classifier: Classifier, split: SplitPipeline, batch_size: int):
        features = [classifier.extract_features(x) for x, _ in split.batches(batch_size)]
        self.size = split.size
        self._data = tf.data.Dataset.from_tensor_slices((tf.concat(features, axis=0), split.labels))

    def batches(self, batch_size: int, *, shuffle_seed: int | None = None):
        data = self._data
        if shuffle_seed is not None:
            data = data.shuffle(self.size, seed=shuffle_seed, reshuffle_each_iteration=True)
        return data.batch(batch_size)


def fit_and_select(
    classifier: Classifier,
    train: SplitPipeline,
    val: SplitPipeline,
    *,
    mode: str,
    batch_size: int,
    learning_rates,
    epochs: int,
    seed: int,
) -> SearchResult:
    """Train from the same start once per learning rate; keep the weights with
    the best validation accuracy (ties: lower validation loss)."""
    feature_seconds = 0.0
    if mode == "transfer":
        started = time.perf_counter()
        train, val = FeatureSplit(classifier, train, batch_size), FeatureSplit(classifier, val, batch_size)
        feature_seconds = time.perf_counter() - started
        step, predict = classifier.head_train_step, classifier.predict_from_features
    else:
        step, predict = classifier.train_step, classifier.predict

    start = classifier.model.get_weights()
    candidates, best, best_key = [], None, None
    for learning_rate in learning_rates:
        classifier.restart(learning_rate, start)
        curve, train_seconds = [], feature_seconds
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            losses = [float(step(x, y)) for x, y in train.batches(batch_size, shuffle_seed=seed)]
            train_seconds += time.perf_counter() - started
            result = evaluate(predict, val.batches(batch_size))
            curve.append(
                {
                    "epoch": epoch,
                    "train_seconds": train_seconds,
                    "train_loss": float(np.mean(losses)),  # training mode, over the epoch
                    "val_accuracy": result.accuracy,
                    "val_loss": result.loss,
                }
            )
        candidates.append(
            {
                "learning_rate": learning_rate,
                "val_accuracy": result.accuracy,
                "val_loss": result.loss,
                "train_loss": curve[-1]["train_loss"],
                "time_to_accuracy_seconds": _time_to_final_accuracy(curve),
                "val_curve": curve,
            }
        )
        key = (result.accuracy, -result.loss)
        if best_key is None or key > best_key:
            best_key, best = key, (len(candidates) - 1, classifier.model.get_weights(), result)
    chosen, weights, val_result = best
    classifier.model.set_weights(weights)
    return SearchResult(
        learning_rate=candidates[chosen]["learning_rate"],
        candidates=candidates,
        train=evaluate(predict, train.batches(batch_size)),
        val=val_result,
        feature_seconds=feature_seconds,
        time_to_accuracy_seconds=candidates[chosen]["time_to_accuracy_seconds"],
    )


def _time_to_final_accuracy(curve: list) -> float:
    final = curve[-1]["val_accuracy"]
    return next(point["train_seconds"] for point in curve if point["val_accuracy"] >= final)
