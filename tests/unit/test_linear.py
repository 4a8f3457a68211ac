"""LogME and the ridge probe (tlbench/linear.py), numpy only: LogME's closed
form against the evidence computed directly, at its maximum; the ranking it
gives features that carry the labels against noise; the ridge probe's
choice by validation."""

import numpy as np
import pytest

from tlbench.linear import _evidence, evidence_at, logme, ridge_probe


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
