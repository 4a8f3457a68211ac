"""Training with a hyperparameter search on the validation split, and evaluation.

The protocol, the same for every trial:

1. Linear probe. The head is fitted on backbone features computed once per
   split (the backbone runs in inference mode, so its features are those of
   training the model on the images with the backbone frozen): multinomial
   logistic regression, the head's own model and loss, by L-BFGS at each L2
   penalty of the budget's path (linear.logistic_path); the penalty is
   chosen on validation. A convex problem: every seed and batch size gets
   the same probe.
2. Modes that train backbone variables (last_block, last_stage, finetune):
   from the probed head, the head and the backbone variables the mode trains
   (model.Classifier) train on the images, with the backbone's BatchNorm in
   the run's policy, once per base learning rate of the fine-tuning range
   (Adam). Starting from a trained head rather than a random one keeps the
   first large gradients from distorting the pretrained features (LP-FT,
   Kumar et al. 2022). Successive halving: every rate trains one epoch, the
   best half by validation loss (rounded down) go on, the rest stop there. last_block and
   last_stage with BatchNorm frozen train on the activations at the first
   trained layer, computed once per split (boundary.py): the same steps
   without the frozen part's forward pass in each.

Every learning rate is scaled to the batch size (plan.scaled_learning_rate).
A run at one learning rate evaluates validation after every epoch, stops after
`patience` epochs without a lower validation loss and keeps the weights of the
lowest; the probed start is epoch 0 and may be kept. The candidate (penalty,
or learning rate) whose kept weights have the best validation accuracy (ties:
lower loss, then the earlier) is chosen. The test split is never seen here.

Time to accuracy: the training seconds (feature pass and probe included,
evaluation excluded) until the validation accuracy of the kept weights was
first reached.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tlbench.plan import Budget, scaled_learning_rate
from tlbench.registry import trains_backbone
from tlbench.worker.boundary import Activations, Split, TopTrainer
from tlbench.worker.model import Classifier
from tlbench.worker.pipeline import SplitPipeline, untuned


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
    probe_penalty: float  # the linear probe's chosen L2 penalty
    probe_candidates: list  # the probe's fit at each penalty
    learning_rate: float | None  # fine-tuning's chosen one, as trained with (scaled to the batch size); transfer: None
    base_learning_rate: float | None  # the same at the reference batch size
    kept_epoch: int | None  # its kept epoch (0 = the probed start); transfer: None
    candidates: list  # fine-tuning's learning-rate search; transfer: none
    train: Evaluation  # chosen model on the training split (inference mode)
    val: Evaluation
    feature_seconds: float  # computing the cached features once
    time_to_accuracy_seconds: float
    probed: bool  # the chosen weights are the probe's on the frozen backbone (transfer, or fine-tuning kept epoch 0)
    probe_shared: bool = False  # the probe's path was fitted once for the backbone's trials (frozen.py)


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
    """A split's backbone features, computed once: `extract` (inputs ->
    features) over the split's batches (images, or boundary activations)."""

    def __init__(self, extract, split, batch_size: int, features: np.ndarray | None = None):
        """`features`: computed already (frozen.py), in the split's order."""
        if features is None:
            features = tf.concat([extract(x) for x, _ in split.batches(batch_size)], axis=0)
        self.features = tf.convert_to_tensor(features)
        self.labels = tf.cast(split.labels, tf.int32)

    def batches(self, batch_size: int):
        return untuned(tf.data.Dataset.from_tensor_slices((self.features, self.labels)).batch(batch_size))


def fit_and_select(
    classifier: Classifier,
    train: SplitPipeline,
    val: SplitPipeline,
    *,
    mode: str,
    batch_size: int,
    budget: Budget,
    seed: int,
    split: Split | None = None,
    halving: bool = True,
    shared: dict | None = None,
) -> SearchResult:
    """The protocol of this module: the probe on the budget's penalties, then
    for the modes that train backbone variables the budget's fine-tuning
    learning rates, most epochs and patience. `split` (boundary.split_backbone): a partial mode's search
    runs on the boundary activations, computed once, and its weights are then
    copied into the classifier. `halving`: the fine-tuning stage's successive
    halving (off: every rate runs every epoch, as before it; a benchmark's
    baseline). `shared` (frozen.usable): the features, and the activations
    at the split's boundary, computed once for every trial of the backbone."""

    started = time.perf_counter()
    shared = shared or {}
    # The shared features (checked against this trial's own, frozen.usable) are the probe's, whatever the mode:
    # a partial mode's own would be the part above its boundary on the same activations, the same numbers.
    given = shared.get("features")
    if split is None:
        inputs, extract = (train, val), classifier.extract_features
    else:  # trained on the activations at the boundary: the frozen part runs once
        trainer = TopTrainer(classifier, split)
        activations = shared.get("activations") or {}
        inputs = tuple(
            Activations(split, part, batch_size, activations.get(name))
            for name, part in (("train", train), ("val", val))
        )
        extract = trainer.features
    train_features, val_features = (
        FeatureSplit(extract, part, batch_size, (given or {}).get(name)) for name, part in zip(("train", "val"), inputs)
    )
    feature_seconds = time.perf_counter() - started

    stepped = classifier if split is None else trainer  # what the fine-tuning stage trains

    def finetune_epoch(shuffle_seed: int) -> float:
        batches = inputs[0].batches(batch_size, shuffle_seed=shuffle_seed)
        return float(np.mean([float(stepped.train_step(x, y)) for x, y in batches]))

    # On the shared features, the path fitted once for every trial of the backbone (frozen.py): the same fits.
    fits = _shared_fits(shared.get("probe"), budget.probe_penalties) if given else None
    probe = _probe(
        classifier, train_features, val_features, budget.probe_penalties, seconds_before=feature_seconds, fits=fits
    )
    classifier.head.set_weights(probe.weights)
    final, predict, evaluated_train = None, classifier.predict_from_features, train_features
    if trains_backbone(mode):
        final = _search(
            stepped,
            stepped.model.get_weights(),
            finetune_epoch,
            lambda: evaluate(stepped.predict, inputs[1].batches(batch_size)),
            stepped.model,
            batch_size=batch_size,
            seed=seed,
            seconds_before=probe.candidates[-1]["train_seconds"],  # after the whole path
            start_evaluation=probe.val,
            halving=halving,
            learning_rates=budget.learning_rates["finetune"],
            epochs=budget.finetune_epochs,
            patience=budget.patience["finetune"],
        )
        stepped.model.set_weights(final.weights)
        if split is not None:
            trainer.copy_to_classifier()
        if final.best["kept_epoch"] != 0:  # else the probed start: evaluated on its cached features below
            predict, evaluated_train = stepped.predict, inputs[0]
    chosen = final.best if final is not None else {}
    return SearchResult(
        probe_penalty=probe.best["penalty"],
        probe_candidates=probe.candidates,
        learning_rate=chosen.get("learning_rate"),
        base_learning_rate=chosen.get("base_learning_rate"),
        kept_epoch=chosen.get("kept_epoch"),
        candidates=final.candidates if final is not None else [],
        train=evaluate(predict, evaluated_train.batches(batch_size)),
        val=(final or probe).val,
        feature_seconds=feature_seconds,
        time_to_accuracy_seconds=(final or probe).best["time_to_accuracy_seconds"],
        probed=chosen.get("kept_epoch", 0) == 0,
        probe_shared=fits is not None,
    )


def _shared_fits(probe: dict | None, penalties) -> list | None:
    """The shared path's fits (linear.LogisticFit), where they are at this budget's penalties."""
    if probe is None or tuple(probe["penalties"]) != tuple(penalties):
        return None
    return probe["fits"]


def _probe(
    classifier: Classifier,
    train: FeatureSplit,
    val: FeatureSplit,
    penalties,
    *,
    seconds_before: float,
    fits: list | None = None,
) -> Search:
    """The linear probe: the head fitted at each L2 penalty of `penalties`
    (linear.logistic_path; `fits`: fitted already, on these features), each
    fit evaluated on validation through the head itself; the best kept."""
    from tlbench.linear import logistic_path

    if fits is None:
        fits = logistic_path(train.features.numpy(), train.labels.numpy(), classifier.num_classes, penalties)
    candidates, weights, evaluations, seconds = [], [], [], seconds_before
    for fit in fits:
        classifier.head.set_weights([fit.kernel.astype(np.float32), fit.bias.astype(np.float32)])
        result = evaluate(classifier.predict_from_features, [(val.features, val.labels)])
        seconds += fit.seconds
        evaluations.append(result)
        weights.append(classifier.head.get_weights())
        candidates.append(
            {
                "penalty": fit.penalty,
                "val_accuracy": result.accuracy,
                "val_loss": result.loss,
                "train_loss": fit.train_loss,
                "iterations": fit.iterations,
                "converged": fit.converged,
                "fit_seconds": fit.seconds,
                "train_seconds": seconds,  # features and the path's fits so far
            }
        )
    chosen = max(range(len(fits)), key=lambda i: (evaluations[i].accuracy, -evaluations[i].loss, -i))
    for index, candidate in enumerate(candidates):  # the seconds at which each one's accuracy was first reached
        candidate["time_to_accuracy_seconds"] = next(
            c["train_seconds"] for c in candidates[: index + 1] if c["val_accuracy"] >= candidate["val_accuracy"]
        )
    return Search(candidates=candidates, chosen=chosen, weights=weights[chosen], val=evaluations[chosen])


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
    halving: bool = False,
) -> Search:
    """Train `trained` (a layer or model) from the model weights `start`, once
    per base learning rate: `train_epoch(shuffle_seed)` runs an epoch and
    returns its mean training loss, `evaluate_val()` evaluates validation; with early stopping on validation
    loss. `start_evaluation`: the start's validation figures, when the start
    itself may be kept (epoch 0).

    `halving` (successive halving, one rung): every learning rate trains one
    epoch, then the best half by validation loss, rounded down (at least
    one: Jamieson and Talwalkar 2016 keep the best floor(n/2) of n), go on
    from where they were, their optimizer state included; the others stop
    there (`stopped_at_rung`). The search trains fewer epochs and keeps the
    same curve for every rate it ran."""
    runs = [
        _Run(base, scaled_learning_rate(base, batch_size), seconds_before, start_evaluation) for base in learning_rates
    ]
    paused = {}
    for index, run in enumerate(runs):
        classifier.restart(run.learning_rate, start)
        if start_evaluation is not None:
            run.kept = (0, start_evaluation, trained.get_weights())
        run.train(train_epoch, evaluate_val, trained, seed, epochs=1 if halving else epochs, patience=patience)
        if halving and not run.stopped:
            paused[index] = classifier.training_state()
    if halving:
        ranked = sorted(range(len(runs)), key=lambda i: _loss_order(runs[i].curve[-1]["val_loss"]))
        going_on = set(ranked[: max(1, len(runs) // 2)])
        for index, run in enumerate(runs):
            if index not in paused:
                continue
            if index not in going_on:
                run.stopped_at_rung = True
                continue
            classifier.restore_training_state(paused.pop(index))
            run.train(train_epoch, evaluate_val, trained, seed, epochs=epochs, patience=patience)
    candidates = [run.candidate(epochs, halving) for run in runs]
    chosen = max(range(len(runs)), key=lambda i: (runs[i].kept[1].accuracy, -runs[i].kept[1].loss, -i))
    _, val_result, weights = runs[chosen].kept
    return Search(candidates=candidates, chosen=chosen, weights=weights, val=val_result)


def _loss_order(loss: float) -> float:
    return math.inf if math.isnan(loss) else loss  # a diverged rate ranks last


class _Run:
    """One learning rate's training in a search: its curve, and the epoch kept so far."""

    def __init__(self, base: float, learning_rate: float, seconds: float, start: Evaluation | None):
        self.base, self.learning_rate, self.seconds = base, learning_rate, seconds
        self.curve = [] if start is None else [_point(0, seconds, None, start)]
        self.kept = None  # (epoch, Evaluation, weights)
        self.stopped = self.stopped_at_rung = False

    @property
    def epoch(self) -> int:
        return self.curve[-1]["epoch"] if self.curve else 0

    def train(self, train_epoch, evaluate_val, trained, seed: int, *, epochs: int, patience: int) -> None:
        """On from the current epoch up to `epochs`, or until early stopping:
        no lower validation loss for `patience` epochs."""
        while self.epoch < epochs:
            epoch = self.epoch + 1
            began = time.perf_counter()
            train_loss = train_epoch(seed * 1000 + epoch)
            self.seconds += time.perf_counter() - began
            result = evaluate_val()
            self.curve.append(_point(epoch, self.seconds, train_loss, result))
            if self.kept is None or result.loss < self.kept[1].loss:
                self.kept = (epoch, result, trained.get_weights())
            elif epoch - self.kept[0] >= patience:
                self.stopped = True
                return

    def candidate(self, epochs: int, halving: bool) -> dict:
        kept_epoch, kept_result, _ = self.kept
        figures = {
            "base_learning_rate": self.base,
            "learning_rate": self.learning_rate,
            "kept_epoch": kept_epoch,
            "epochs_run": self.epoch,
            "stopped_early": self.epoch < epochs,
            "val_accuracy": kept_result.accuracy,
            "val_loss": kept_result.loss,
            "time_to_accuracy_seconds": next(
                point["train_seconds"] for point in self.curve if point["val_accuracy"] >= kept_result.accuracy
            ),
            "val_curve": self.curve,
        }
        return {**figures, "stopped_at_rung": self.stopped_at_rung} if halving else figures


def _point(epoch: int, seconds: float, train_loss: float | None, result: Evaluation) -> dict:
    return {
        "epoch": epoch,
        "train_seconds": seconds,
        "train_loss": train_loss,  # training mode, mean over the epoch; None for the start
        "val_accuracy": result.accuracy,
        "val_loss": result.loss,
    }
