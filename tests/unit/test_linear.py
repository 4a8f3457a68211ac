"""LogME, the ridge probe and the logistic probe (tlbench/linear.py), numpy
only: LogME's closed form against the evidence computed directly, at its
maximum; the ranking it gives features that carry the labels against noise;
the ridge probe's choice by validation; the logistic probe's gradient, its
fit against scikit-learn's and its indifference to the features' scale."""

import numpy as np
import pytest

from tlbench.linear import (
    PROBE_PENALTIES,
    _evidence,
    _penalised_cross_entropy,
    evidence_at,
    logistic_path,
    logme,
    ridge_probe,
)


def _data(n: int, d: int, informative: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, d))
    return informative * centres[labels] + rng.normal(size=(n, d)), labels


@pytest.mark.parametrize("n, d", [(40, 10), (12, 30)], ids=["more images than features", "fewer"])
def test_the_closed_form_is_the_direct_evidence_at_its_maximum(n, d):
    features, labels = _data(n, d, 1.0)
    y = (labels == 1).astype(float)
    u, s, _ = np.linalg.svd(features, full_matrices=False)
    value, alpha, beta = _evidence(u.T @ y, float(y @ y), s**2, n, d, 100, 1e-9)
    assert value == pytest.approx(evidence_at(features, y, alpha, beta), rel=1e-8)
    for da, db in ((1.1, 1), (0.9, 1), (1, 1.1), (1, 0.9)):  # a maximum: no neighbour does better
        assert evidence_at(features, y, alpha * da, beta * db) <= value + 1e-9


def test_logme_ranks_features_that_carry_the_labels_above_noise():
    clear, labels = _data(200, 32, 2.0)
    faint, _ = _data(200, 32, 0.3)
    noise = np.random.default_rng(1).normal(size=(200, 32))
    assert logme(clear, labels) > logme(faint, labels) > logme(noise, labels)


def test_the_ridge_probe_chooses_its_penalty_by_validation():
    features, labels = _data(300, 20, 1.5)
    probe = ridge_probe(features[:200], labels[:200], features[200:], labels[200:])
    assert probe.val_accuracy == max(probe.accuracies) > 0.8
    noise = np.random.default_rng(2).normal(size=(300, 20))
    assert ridge_probe(noise[:200], labels[:200], noise[200:], labels[200:]).val_accuracy < 0.6


def test_the_logistic_probes_gradient_is_the_losss():
    features, labels = _data(20, 6, 1.0)
    onehot = np.eye(3)[labels]
    params = np.random.default_rng(1).normal(size=(6 + 1) * 3)
    _, gradient = _penalised_cross_entropy(params, features, onehot, 0.3)
    step = 1e-6
    numeric = [
        (
            _penalised_cross_entropy(params + step * e, features, onehot, 0.3)[0]
            - _penalised_cross_entropy(params - step * e, features, onehot, 0.3)[0]
        )
        / (2 * step)
        for e in np.eye(len(params))
    ]
    assert gradient == pytest.approx(numeric, abs=1e-6)


def test_the_logistic_probe_fits_what_scikit_learn_fits():
    """The same model (multinomial, L2 on the weights only): scikit-learn's
    C = 1 / (penalty x images) on the standardised features (each feature
    to unit variance; a constant one left as it is)."""
    from sklearn.linear_model import LogisticRegression

    features, labels = _data(90, 12, 0.7)
    features[:, 3] = 0.25  # a dead feature: constant
    features[:, 5] *= 1000.0  # and one of another scale
    fit = logistic_path(features, labels, 3, (0.05,), max_iterations=2000)[0]
    scale = np.where(features.std(axis=0) > 0, features.std(axis=0), 1.0)
    standardised = (features - features.mean(axis=0)) / scale
    theirs = LogisticRegression(C=1 / (0.05 * len(labels)), tol=1e-10, max_iter=5000).fit(standardised, labels)
    ours = features @ fit.kernel + fit.bias
    assert np.argmax(ours, axis=1) == pytest.approx(theirs.predict(standardised))
    assert fit.kernel * scale[:, None] == pytest.approx(theirs.coef_.T, abs=1e-4)
    assert fit.converged and fit.penalty == 0.05


def test_the_logistic_probe_does_not_care_about_the_features_scale():
    """A stand-in's features can be 1e-11 (a random MobileNet): the fit is
    made on standardised features, the same path at any scale."""
    features, labels = _data(60, 8, 1.0)
    path = logistic_path(features, labels, 3)
    tiny = logistic_path(features * 1e-11, labels, 3)
    assert [f.penalty for f in path] == list(PROBE_PENALTIES) and PROBE_PENALTIES[:3] == (100.0, 30.0, 10.0)
    for a, b in zip(path, tiny):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
        assert features @ a.kernel + a.bias == pytest.approx(features * 1e-11 @ b.kernel + b.bias, rel=1e-4, abs=1e-6)
    # Weaker penalties fit the training images better.
    losses = [f.train_loss for f in path]
    assert losses == sorted(losses, reverse=True)
