"""From a checkpoint's logits to the probabilities a user asked for: calibrated (or raw) and
re-weighted to the chosen class priors. ``predict`` and ``evaluate`` both go through here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from latentlapse.xray import priors as priors_mod
from latentlapse.xray.calibration import Calibration, softmax
from latentlapse.core.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_PRIORS = "balanced"


@dataclass(frozen=True)
class OperatingPoint:
    """Calibration, the priors the (calibrated or raw) model holds, and the priors wanted."""

    calibration: Calibration | None
    source: np.ndarray
    target: np.ndarray
    label: str
    class_names: tuple[str, ...]

    def proba(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities of ``logits`` at this operating point."""
        base = softmax(np.asarray(logits, dtype=np.float64)) if self.calibration is None else self.calibration.apply(logits)
        return base if self.label == "model" else priors_mod.reweight(base, self.source, self.target)

    def describe(self) -> str:
        cal = "uncalibrated" if self.calibration is None else f"calibrated (T = {self.calibration.temperature:.3f})"
        return f"{cal}, priors {priors_mod.describe(self.label, self.target, self.class_names)}"


def stored_priors(payload: dict) -> dict[str, np.ndarray]:
    """The checkpoint's ``train`` (class frequencies before oversampling) and ``model`` (what
    the raw network was trained to believe, after oversampling and loss weights) priors."""
    stored = payload.get("priors") or {}
    n = payload["model_spec"]["n_classes"]
    uniform = np.full(n, 1.0 / n)
    return {key: np.asarray(stored.get(key, uniform), dtype=np.float64) for key in ("train", "model")}


def from_checkpoint(payload: dict, priors: str = DEFAULT_PRIORS, uncalibrated: bool = False) -> OperatingPoint:
    """The operating point of ``--priors`` / ``--uncalibrated`` for a loaded checkpoint.

    A checkpoint without a fitted calibration (an older run, or ``last.pt`` mid-run) is used raw.
    The raw network's probabilities hold the priors it was trained to (``model``: the training
    frequencies after oversampling and class weights), the calibrated ones the training
    frequencies (``train``); ``--priors model`` keeps whichever they hold, so
    ``--uncalibrated --priors model`` is the network's own softmax, unchanged.
    """
    names = tuple(payload["class_names"])
    stored = stored_priors(payload)
    calibration = None if uncalibrated or not payload.get("calibration") else Calibration.from_dict(payload["calibration"])
    if "priors" not in payload and priors.strip().lower() == "train":
        raise UsageError("--priors train needs the training class frequencies, which this checkpoint does not "
                         "record (written by an older latentlapse); give them as NAME=VALUE,...")
    source = stored["model"] if calibration is None else stored["train"]
    label, target = priors_mod.parse(priors, names, stored["train"], model_priors=source)
    untrained = [name for name, p in zip(names, stored["train"]) if p <= 0]
    if untrained:
        log.warning("the model had no training source of %s: %s probability is 0 at any --priors",
                    ", ".join(untrained), "its" if len(untrained) == 1 else "their")
    return OperatingPoint(calibration, source, target, label, names)


def both_points(calibration: Calibration, train_priors: Sequence[float], class_names: Sequence[str]) -> dict[str, OperatingPoint]:
    """The two operating points a run reports: balanced priors and the training frequencies."""
    train = np.asarray(train_priors, dtype=np.float64)
    names = tuple(class_names)
    n = len(names)
    return {
        "balanced": OperatingPoint(calibration, train, np.full(n, 1.0 / n), "balanced", names),
        "train": OperatingPoint(calibration, train, train, "train", names),
    }
