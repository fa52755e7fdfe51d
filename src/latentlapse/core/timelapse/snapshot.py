"""What the training loop hands to the worker: plain numpy copies, nothing that references torch.

A :class:`TimelapseSpec` is sent once per run; a :class:`Snapshot` per visualised epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TimelapseSpec:
    """The run-wide facts every frame needs: where to write, the classes, the fixed sample."""

    run_dir: str
    class_names: tuple[str, ...]
    colors: tuple[str, ...]
    markers: tuple[str, ...]
    method: str
    total_epochs: int
    seed: int
    train_ids: np.ndarray
    val_ids: np.ndarray
    train_labels: np.ndarray
    val_labels: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    """One visualised epoch: latent features of the fixed sample and the epoch's numbers.

    Attributes
    ----------
    epoch : 1-based epoch number.
    train_features, val_features : (n, d) float32 penultimate-layer features of the fixed
        training and validation samples, rows in the order of the spec's ids.
    val_pred : (n_val_sample,) int predicted class of each validation sample point.
    train_pred : (n_train_sample,) int predicted class of each training sample point, the argmax
        of the full-precision probabilities (as the dynamics record it); None when not recorded.
    train_proba, val_proba : (n, n_classes) float32 class probabilities of the training and
        validation sample at this epoch (for the report's explorer); None when not recorded.
    val_true_all, val_pred_all : true and predicted class of every validation source (the
        error count and per-class recall use the full split, not the sample).
    scores : the epoch's numbers: ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss``,
        ``val_balanced_acc``, ``val_macro_f1``, ``lr``.
    epoch_end : wall-clock time (``time.time()``) the epoch ended; the frame's lag is measured
        from it to its PNG on disk (NaN: unknown).
    score_inputs : ``(train_labels, train_proba, val_labels, val_proba, metrics)`` of every
        source, from which the worker computes ``scores`` (:func:`with_scores`), so the training
        loop does not; None when ``scores`` is given.
    """

    epoch: int
    train_features: np.ndarray
    val_features: np.ndarray
    val_pred: np.ndarray
    val_true_all: np.ndarray
    val_pred_all: np.ndarray
    scores: dict[str, float] = field(default_factory=dict)
    train_proba: np.ndarray | None = None
    train_pred: np.ndarray | None = None
    val_proba: np.ndarray | None = None
    epoch_end: float = math.nan
    score_inputs: tuple | None = None


def with_scores(snapshot: Snapshot, class_names: tuple[str, ...]) -> Snapshot:
    """``snapshot`` with its ``scores`` computed from its ``score_inputs`` (in the worker)."""
    if snapshot.score_inputs is None:
        return snapshot
    from latentlapse.core.timelapse.history_file import scores

    y_tr, p_tr, y_va, p_va, metrics = snapshot.score_inputs
    return replace(snapshot, scores=scores(snapshot.epoch, class_names, y_tr, p_tr, y_va, p_va, metrics), score_inputs=None)


def frame_snapshot(epoch: int, entry: Any, f_tr: Any, f_va: Any, sources: dict) -> Snapshot:
    """A frame's snapshot: copies of the fixed sample's features (fancy indexing copies) and the
    epoch's arrays (``entry``, a logged epoch), from which the worker computes the epoch's scores
    (the loop does not wait for them). ``sources``: the run's labels and sample positions."""
    tr, va = sources["train_pos"], sources["val_pos"]
    p_tr, p_va = entry.p_tr, entry.p_va
    val_pred_all = p_va.argmax(axis=1)
    return Snapshot(epoch=epoch, train_features=np.asarray(f_tr)[tr], val_features=np.asarray(f_va)[va],
                    val_pred=val_pred_all[va], val_true_all=sources["y_va"].copy(), val_pred_all=val_pred_all,
                    train_proba=p_tr[tr].astype(np.float32), train_pred=p_tr[tr].argmax(axis=1),
                    val_proba=p_va[va].astype(np.float32),
                    epoch_end=time.time(), score_inputs=(entry.y_tr, p_tr, entry.y_va, p_va, entry.metrics))
