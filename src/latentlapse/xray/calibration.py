"""Probability calibration: bias-corrected temperature scaling and the scores that judge it.

A network trained with oversampling and focal loss is over- or under-confident, and its class
priors are those of the re-balanced training set. At the end of a run we fit, on held-out rows
(the validation split, never trained on), a temperature ``T`` and one bias per class:
``p = softmax(z / T + b)`` — *bias-corrected temperature scaling* (BCTS, Alexandari, Kundaje &
Shrikumar 2020, "Maximum likelihood with bias-corrected calibration is hard-to-beat at label
shift adaptation"). The temperature fixes the confidence; the biases move the priors to the
held-out rows' class frequencies (the natural training frequencies: the split is stratified),
which is what :mod:`latentlapse.xray.priors` then re-weights from. With one parameter per class and
a weak L2 pull of the biases to 0 it cannot overfit a few hundred rows the way a full matrix
would. The temperature alone never changes the predicted class; the biases can.

Scores, all on numpy arrays: top-label ECE with 15 equal-width confidence bins (Guo et al.
2017), class-wise ECE (Kull et al. 2019), the multi-class Brier score and the NLL (both via
scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

N_BINS = 15
BIAS_L2 = 1e-3  # per row: keeps the per-class biases finite when a class is absent from the rows


@dataclass(frozen=True)
class Calibration:
    """A fitted ``softmax(logits / temperature + bias)``, stored in the checkpoint as plain values."""

    temperature: float
    bias: tuple[float, ...]
    method: str = "bias-corrected temperature scaling"

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities of ``logits`` (rows)."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature + np.asarray(self.bias))

    def to_dict(self) -> dict:
        return {"method": self.method, "temperature": self.temperature, "bias": list(self.bias)}

    @classmethod
    def from_dict(cls, values: dict) -> "Calibration":
        return cls(temperature=float(values["temperature"]), bias=tuple(float(b) for b in values["bias"]),
                   method=str(values.get("method", cls.method)))


def softmax(z: np.ndarray) -> np.ndarray:
    from scipy.special import softmax as _softmax

    return _softmax(np.asarray(z, dtype=np.float64), axis=1)


def fit(logits: np.ndarray, y: np.ndarray, *, bias: bool = True) -> Calibration:
    """Fit temperature (and per-class biases) by minimising the NLL of ``y`` with L-BFGS.

    The temperature is optimised as log T, so it stays positive; ``bias=False`` gives plain
    temperature scaling (Guo et al. 2017).
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, k = z.shape
    onehot = np.eye(k)[y]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, b = np.exp(-theta[0]), (theta[1:] if bias else np.zeros(k))
        scaled = z * inv_t + b
        logp = log_softmax(scaled, axis=1)
        residual = np.exp(logp) - onehot  # d NLL / d scaled, per row
        value = -np.sum(logp[np.arange(n), y]) / n + BIAS_L2 * np.sum(b**2)
        grad_t = -np.sum(residual * z) * inv_t / n
        grad = [grad_t]
        if bias:
            grad.extend(residual.sum(axis=0) / n + 2 * BIAS_L2 * b)
        return value, np.asarray(grad)

    start = np.zeros(1 + (k if bias else 0))
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      bounds=[(-4.0, 4.0)] + [(None, None)] * (k if bias else 0))
    theta = result.x
    b = theta[1:] - theta[1:].mean() if bias else np.zeros(k)  # softmax ignores a common shift
    return Calibration(temperature=float(np.exp(theta[0])), bias=tuple(float(v) for v in b),
                       method="bias-corrected temperature scaling" if bias else "temperature scaling")


def ece(proba: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label expected calibration error: |accuracy - confidence| per equal-width confidence
    bin, weighted by the bin's share of rows."""
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    return _binned_gap(confidence, correct, n_bins)


def ece_floor(proba: np.ndarray, generator: np.random.Generator, draws: int = 50, n_bins: int = N_BINS) -> float:
    """The ECE a perfectly calibrated model with these probabilities would still measure on this
    many rows: the mean over ``draws`` of the ECE when each row is right with probability equal
    to its confidence. The binned estimate is biased upwards by sampling noise; on a CV fold of
    ~600 sources at 93 % accuracy this floor is ~0.02, so per-fold ECE is read against it."""
    confidence = np.asarray(proba, dtype=np.float64).max(axis=1)
    gaps = [_binned_gap(confidence, (generator.random(len(confidence)) < confidence).astype(np.float64), n_bins)
            for _ in range(draws)]
    return float(np.mean(gaps))


def classwise_ece(proba: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Per class k: the ECE of p_k as a probability that a source is of class k (one-vs-rest)."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    return np.array([_binned_gap(proba[:, k], (y == k).astype(np.float64), n_bins) for k in range(proba.shape[1])])


def _binned_gap(score: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    if len(score) == 0:
        return float("nan")
    # bins (0, 1/15], (1/15, 2/15], ...: a confidence of exactly 1 falls in the last bin
    index = np.clip(np.ceil(score * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    weight = np.bincount(index, minlength=n_bins)
    gap = np.abs(np.bincount(index, outcome, n_bins) - np.bincount(index, score, n_bins))
    return float(gap.sum() / weight.sum())


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per confidence bin: mean confidence, accuracy and row count (NaN in empty bins)."""
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "confidence": np.bincount(index, confidence, n_bins) / count,
            "accuracy": np.bincount(index, correct, n_bins) / count,
            "count": count,
        }


def _normalised(proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)  # float32 rows sum to 1 only to ~1e-7


def nll(proba: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Mean negative log-likelihood of the true classes (scikit-learn's ``log_loss``)."""
    from sklearn.metrics import log_loss

    return float(log_loss(y, _normalised(proba), labels=list(range(n_classes))))


def scores(proba: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> dict[str, object]:
    """ECE (15 bins, top-label), class-wise ECE (per class and mean), Brier score and NLL."""
    from sklearn.metrics import brier_score_loss

    proba = _normalised(proba)
    per_class = classwise_ece(proba, y)
    return {
        "ece": ece(proba, y),
        "classwise_ece": {name: float(v) for name, v in zip(class_names, per_class)},
        "classwise_ece_mean": float(per_class.mean()),
        "brier": float(brier_score_loss(y, proba, labels=list(range(len(class_names))))),
        "nll": nll(proba, y, len(class_names)),
    }


def before_after(logits: np.ndarray, y: np.ndarray, calibration: Calibration, class_names: Sequence[str],
                 evaluated_on: str) -> dict[str, object]:
    """The calibration block of ``final_metrics.json``: the fitted parameters and the scores of
    the raw and calibrated probabilities of the same rows."""
    return {
        **calibration.to_dict(),
        "evaluated_on": evaluated_on,
        "n_bins": N_BINS,
        "calibrated_at_priors": "train",
        "before": scores(softmax(np.asarray(logits, dtype=np.float64)), y, class_names),
        "after": scores(calibration.apply(logits), y, class_names),
    }
