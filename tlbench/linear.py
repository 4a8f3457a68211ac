"""Linear models on a backbone's features, closed form from one SVD (numpy,
no TensorFlow): LogME, the evidence a backbone's features give a Bayesian
linear model of the labels, and a ridge probe swept over its
regularisation. They rank backbones before anything trains (the run's
early answer, `screen`).

LogME (You, Liu, Wang and Long, ICML 2021): for each class, the one-vs-rest
target y is modelled as y = F w + noise, w ~ N(0, 1/alpha), noise ~ N(0,
1/beta); alpha and beta are set by the fixed-point iteration that maximises
the evidence p(y | F), and LogME is the maximised log evidence per image,
averaged over the classes. Higher means features from which the labels
follow more linearly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

RIDGE_PENALTIES = tuple(10.0**k for k in range(-4, 5))  # relative to the mean squared singular value


def logme(features: np.ndarray, labels: np.ndarray, *, iterations: int = 100, tolerance: float = 1e-6) -> float:
    """LogME of `features` (N x D) for integer `labels` (N)."""
    f = np.asarray(features, np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2  # eigenvalues of F^T F (the rest of its D are 0)
    evidences = []
    for label in np.unique(labels):
        y = (np.asarray(labels) == label).astype(np.float64)
        evidences.append(_evidence(u.T @ y, float(y @ y), sigma, n, d, iterations, tolerance)[0] / n)
    return float(np.mean(evidences))


def evidence_at(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) computed directly, y ~ N(0, F F^T / alpha + I / beta):
    a check on `logme`'s closed form (N x N, for small N)."""
    f, y = np.asarray(features, np.float64), np.asarray(target, np.float64)
    covariance = f @ f.T / alpha + np.eye(len(y)) / beta
    _, log_det = np.linalg.slogdet(covariance)
    return float(-0.5 * (y @ np.linalg.solve(covariance, y) + log_det + len(y) * np.log(2 * np.pi)))


def _evidence(z, y_squared, sigma, n, d, iterations, tolerance) -> tuple[float, float, float]:
    """(log evidence, alpha, beta) maximised for one target whose projection
    on the features' left singular vectors is z."""
    alpha, beta = 1.0, 1.0
    for _ in range(iterations):
        gamma, weight_squared, residual_squared = _terms(z, y_squared, sigma, alpha, beta)
        new_alpha = gamma / max(weight_squared, 1e-12)
        new_beta = max(n - gamma, 1e-12) / max(residual_squared, 1e-12)
        converged = abs(new_alpha / new_beta - alpha / beta) <= tolerance * alpha / beta
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    _, weight_squared, residual_squared = _terms(z, y_squared, sigma, alpha, beta)
    log_det = float(np.sum(np.log(alpha + beta * sigma))) + (d - len(sigma)) * np.log(alpha)
    value = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - log_det / 2
        - beta / 2 * residual_squared
        - alpha / 2 * weight_squared
        - n / 2 * np.log(2 * np.pi)
    )
    return float(value), alpha, beta


def _terms(z, y_squared, sigma, alpha, beta) -> tuple[float, float, float]:
    """At (alpha, beta): the effective number of parameters gamma, |m|^2 of
    the posterior mean weights and |y - F m|^2, from the singular values."""
    denominator = alpha + beta * sigma
    gamma = float(np.sum(beta * sigma / denominator))
    weight_squared = float(np.sum((beta * np.sqrt(sigma) * z / denominator) ** 2))
    residual_squared = y_squared - float(z @ z) + float(np.sum((alpha * z / denominator) ** 2))
    return gamma, weight_squared, residual_squared


@dataclass(frozen=True)
class RidgeProbe:
    val_accuracy: float  # of the penalty chosen
    penalty: float  # relative to the mean squared singular value of the centred training features
    accuracies: tuple  # validation accuracy at each of RIDGE_PENALTIES


def ridge_probe(train: np.ndarray, train_labels, val: np.ndarray, val_labels) -> RidgeProbe:
    """A linear classifier by ridge regression onto one-hot labels, one SVD
    for every penalty of RIDGE_PENALTIES, the penalty chosen by validation
    accuracy (ties: the larger, the simpler model)."""
    x, x_val = np.asarray(train, np.float64), np.asarray(val, np.float64)
    mean = x.mean(axis=0)
    classes = np.unique(train_labels)
    onehot = (np.asarray(train_labels)[:, None] == classes[None, :]).astype(np.float64)
    target_mean = onehot.mean(axis=0)
    u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    scale = float(np.mean(s**2)) or 1.0
    projected = u.T @ (onehot - target_mean)
    accuracies = []
    for penalty in RIDGE_PENALTIES:
        weights = vt.T @ ((s / (s**2 + penalty * scale))[:, None] * projected)
        predicted = classes[np.argmax((x_val - mean) @ weights + target_mean, axis=1)]
        accuracies.append(float(np.mean(predicted == np.asarray(val_labels))))
    best = max(range(len(accuracies)), key=lambda i: (accuracies[i], i))
    return RidgeProbe(accuracies[best], RIDGE_PENALTIES[best], tuple(accuracies))


# The linear probe's L2 penalties (on the mean cross-entropy, each feature standardised), strongest first,
# half a decade apart: a regularisation path, each fit starting from the one before. On Google's MobileNet
# V2 0.35/128 and the bundled digits the chosen one was 3e-4 to 1e-3.
PROBE_PENALTIES = tuple(float(f"{10.0 ** (k / 2):.0e}") for k in range(4, -13, -1))  # 1e2, 3e1, ..., 1e-6
PROBE_MAX_ITERATIONS = 500  # L-BFGS iterations per penalty


@dataclass(frozen=True)
class LogisticFit:
    penalty: float
    kernel: np.ndarray  # features x classes, on the features as given
    bias: np.ndarray  # classes
    train_loss: float  # mean cross-entropy on the training features, without the penalty
    iterations: int
    converged: bool
    seconds: float


def logistic_path(
    features: np.ndarray, labels, num_classes: int, penalties=PROBE_PENALTIES, *, max_iterations=PROBE_MAX_ITERATIONS
) -> list[LogisticFit]:
    """Multinomial logistic regression on `features` (the head's model and
    loss: a dense layer, softmax cross-entropy) with an L2 penalty on the
    weights, fitted by L-BFGS (scipy) at each of `penalties` in the order
    given, each fit starting from the one before. Each feature is centred and
    scaled to unit variance for the fit (a constant one is left as it is), so
    that one penalty grid suits every backbone and every feature is
    penalised alike; the weights returned act on the features as given.
    A convex problem: the same features give the same fits, whatever the seed.

    BLAS runs on one thread here: the products are small, and two threads
    made each iteration 5-7x slower on 2 cores (threads handing off work).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _path(features, labels, num_classes, penalties, max_iterations)


def _path(features, labels, num_classes: int, penalties, max_iterations: int) -> list[LogisticFit]:
    from scipy.optimize import minimize

    x = np.asarray(features, np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12 * scale.max(initial=0.0), scale, 1.0)
    z = (x - mean) / scale
    onehot = np.eye(num_classes)[np.asarray(labels)]
    params = np.zeros((z.shape[1] + 1) * num_classes)
    fits = []
    for penalty in penalties:
        started = time.perf_counter()
        result = minimize(
            _penalised_cross_entropy,
            params,
            args=(z, onehot, penalty),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iterations},
        )
        params = result.x
        weights, bias = _unpacked(params, z.shape[1], num_classes)
        kernel = weights / scale[:, None]
        fits.append(
            LogisticFit(
                penalty=penalty,
                kernel=kernel,
                bias=bias - mean @ kernel,
                train_loss=_penalised_cross_entropy(params, z, onehot, 0.0)[0],
                iterations=int(result.nit),
                converged=bool(result.success),
                seconds=time.perf_counter() - started,
            )
        )
    return fits


def _unpacked(params: np.ndarray, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    return params[: dim * classes].reshape(dim, classes), params[dim * classes :]


def _penalised_cross_entropy(params, z, onehot, penalty) -> tuple[float, np.ndarray]:
    """The mean softmax cross-entropy plus penalty/2 |W|^2, and its gradient."""
    weights, bias = _unpacked(params, z.shape[1], onehot.shape[1])
    logits = z @ weights + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -float(np.sum(onehot * log_probs)) / len(z) + 0.5 * penalty * float(np.sum(weights * weights))
    residual = (np.exp(log_probs) - onehot) / len(z)
    gradient = np.concatenate([(z.T @ residual + penalty * weights).ravel(), residual.sum(axis=0)])
    return loss, gradient
