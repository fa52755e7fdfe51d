"""What the training loop takes in and hands out: its arrays and options, the numbers each epoch
gives its callbacks, the callback hooks, and the history rows written to ``history.csv``.

Kept apart from :mod:`latentlapse.xray.training` (the loop itself) so that callbacks and the
experiment code can name these types without reading the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from latentlapse.xray.data.balance import Augmenter

if TYPE_CHECKING:
    from latentlapse.xray.training import Trainer


@dataclass(frozen=True)
class FitData:
    """Arrays for one fit: the (oversampled) rows trained on, the original training split
    evaluated unaugmented, and the validation split.

    With an ``augmenter`` (how ``train_X`` was made from the training split) the trainer
    re-draws the training rows before every epoch after the first, from its ``augment_generator``:
    fresh copies and some mildly re-drawn originals, so no noise pattern is seen twice.
    """

    train_X: np.ndarray
    train_y: np.ndarray
    eval_X: np.ndarray
    eval_y: np.ndarray
    val_X: np.ndarray
    val_y: np.ndarray
    augmenter: Augmenter | None = None


@dataclass(frozen=True)
class FitOptions:
    epochs: int
    batch_size: int
    n_classes: int
    class_names: tuple[str, ...]
    sampler: str = "shuffle"
    patience: int | None = None
    sample_weights: np.ndarray | None = None
    select_by: str = "val_balanced_acc"  # "val_loss" or "last": what picks best.pt and drives --patience
    log_epochs: bool = True  # False: no line per epoch (a refit's validation rows are training rows)


@dataclass
class EpochResult:
    """What callbacks see after each epoch (arrays are the loop's own; copy before keeping)."""

    epoch: int
    total_epochs: int
    scores: dict[str, float]
    train_features: np.ndarray
    train_pred: np.ndarray
    val_features: np.ndarray
    val_pred: np.ndarray
    val_proba: np.ndarray
    is_last: bool
    train_proba: np.ndarray | None = None
    train_logits: np.ndarray | None = None
    val_logits: np.ndarray | None = None


class Callback:
    """No-op hooks; a callback overrides the ones it needs."""

    def on_train_start(self, trainer: "Trainer") -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", result: EpochResult) -> None:
        pass

    def on_train_end(self, trainer: "Trainer", status: str) -> None:
        pass


@dataclass
class History:
    """One row of numbers per epoch, written to ``history.csv``."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def to_csv(self) -> str:
        if not self.rows:
            return ""
        columns = list(self.rows[0])
        lines = [",".join(columns)]
        for row in self.rows:
            lines.append(",".join(_format_number(row[c]) for c in columns))
        return "\n".join(lines) + "\n"


def _format_number(value: float) -> str:
    """A cell of ``history.csv``: NaN (a class's recall without support) left empty, as the
    library's history writes it."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return "" if np.isnan(value) else f"{value:.6g}"
