"""Class priors: move calibrated probabilities to the population being classified.

Bayes' rule with known priors (Saerens, Latinne & Decaestecker 2002, eq. 2.4): if a model's
posteriors p_s(k|x) hold for a population with class priors pi_s, the posteriors for a
population with priors pi_t are

    p_t(k|x) = (pi_t[k] / pi_s[k]) p_s(k|x) / sum_j (pi_t[j] / pi_s[j]) p_s(j|x).

After calibration (:mod:`latentlapse.xray.calibration`) the model's priors pi_s are the class
frequencies of the training data before oversampling. ``--priors train`` keeps them (the
accuracy operating point on a population like the training set), ``balanced`` makes every
class equally likely a priori (the balanced-accuracy operating point: no class is favoured for
being common), ``A=0.66,B=0.25,...`` gives the expected mix of the sky to classify, and
``model`` re-weights nothing: the probabilities as the model gives them (calibrated, that is
``train``; with ``--uncalibrated``, the raw network's own output).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latentlapse.core.errors import UsageError


def reweight(proba: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Posteriors under priors ``target`` from posteriors ``proba`` under priors ``source``; a
    class of source prior 0 (no training source) keeps probability 0: the model knows nothing of
    it, and dividing by its prior made every source NaN and that class the prediction."""
    source = np.asarray(source, dtype=np.float64)
    ratio = np.divide(np.asarray(target, dtype=np.float64), source, out=np.zeros(len(source)), where=source > 0)
    weighted = np.asarray(proba, dtype=np.float64) * ratio
    return weighted / weighted.sum(axis=1, keepdims=True)


def parse(text: str, class_names: Sequence[str], train_priors: np.ndarray,
          model_priors: np.ndarray | None = None) -> tuple[str, np.ndarray]:
    """``train``, ``balanced``, ``model`` or ``NAME=VALUE,...`` -> (a label for reports, the
    prior vector); ``model`` gives back ``model_priors``, the priors the probabilities already hold.

    Every class must be named once with a positive value; the values are normalised to sum 1,
    so counts work as well as fractions. Keywords and class names are matched in any case, as
    labels are.
    """
    names = list(class_names)
    keyword = text.strip().lower()
    if keyword == "model" and model_priors is not None:
        return "model", np.asarray(model_priors, dtype=np.float64)
    if keyword == "train":
        return "train", np.asarray(train_priors, dtype=np.float64)
    if keyword == "balanced":
        return "balanced", np.full(len(names), 1.0 / len(names))
    by_case = {n.lower(): n for n in names}
    values: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        given, sep, value = part.rpartition("=")
        if not sep or not given:
            raise UsageError(f"--priors {text!r}: expected train, balanced, model or NAME=VALUE,... (e.g. "
                             f"{names[0]}=0.6,...), got {part!r}")
        name = by_case.get(given.strip().lower())
        if name is None:
            raise UsageError(f"--priors: unknown class {given!r}; the model's classes are {', '.join(names)}")
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--priors: {name}={value!r} is not a number") from None
        if not np.isfinite(number) or number <= 0:
            raise UsageError(f"--priors: {name}={value} must be a finite positive number (a class with prior 0 could never be predicted)")
        if name in values:
            raise UsageError(f"--priors: class {name!r} is given twice")
        values[name] = number
    absent = [n for n in names if n not in values]
    if absent:
        raise UsageError(f"--priors: give a prior for every class; missing {', '.join(absent)}")
    vector = np.array([values[n] for n in names])
    return "custom", vector / vector.sum()


def describe(label: str, priors: np.ndarray, class_names: Sequence[str]) -> str:
    """``balanced (AGN 0.25, ...)`` for logs and reports."""
    shown = "model, not re-weighted" if label == "model" else label
    return f"{shown} (" + ", ".join(f"{n} {p:.3f}" for n, p in zip(class_names, priors)) + ")"
