"""A library loop's ``history.csv``: one row of numbers per epoch, rewritten atomically.

The numbers a frame, the curves and the diagnosis read (accuracies, balanced accuracy,
macro-F1, per-class recall, losses) are computed here from the labels and probabilities the
loop hands over; the loop's own numbers (``metrics``) are added or take precedence.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core import atomic, evaluation
from latentlapse.core.runs import HISTORY
from latentlapse.core.timelapse.runfiles import read_table
from latentlapse.core.timelapse.styles import safe_name


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (the cross-entropy a classifier minimises)."""
    if len(y) == 0:
        return math.nan
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))


def scores(epoch: int, class_names: Sequence[str], y_tr: np.ndarray, p_tr: np.ndarray, y_va: np.ndarray,
           p_va: np.ndarray, metrics: Mapping[str, float] | None) -> dict[str, float]:
    """The epoch's history row (without ``epoch``)."""
    n = len(class_names)
    train, val = evaluation.scores(y_tr, p_tr.argmax(axis=1), n), evaluation.scores(y_va, p_va.argmax(axis=1), n)
    recall = evaluation.per_class(evaluation.confusion(y_va, p_va.argmax(axis=1), n))["recall"]
    row = {"train_loss": log_loss(y_tr, p_tr), "train_acc": train["acc"], "train_balanced_acc": train["balanced_acc"],
           "val_loss": log_loss(y_va, p_va), "val_acc": val["acc"], "val_balanced_acc": val["balanced_acc"],
           "val_macro_f1": val["macro_f1"]}
    row.update({f"val_recall_{safe_name(name)}": float(r) for name, r in zip(class_names, recall)})
    for key, value in (metrics or {}).items():
        row[str(key)] = float(value)
    return row


def csv_text(rows: list[dict[str, float]]) -> str:
    """Rows as CSV; columns in first-seen order, a missing cell left empty."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_cell(row.get(c, math.nan)) for c in columns))
    return "\n".join(lines) + "\n"


def add(rows: list[dict[str, float]], row: dict[str, float]) -> list[dict[str, float]]:
    """``rows`` plus ``row``, replacing a row of the same epoch."""
    return [r for r in rows if int(r["epoch"]) != int(row["epoch"])] + [row]


def write(run_dir: str | os.PathLike, rows: list[dict[str, float]]) -> None:
    """Rewrite ``history.csv`` with ``rows`` (atomically)."""
    atomic.write_text(Path(run_dir) / HISTORY, csv_text(rows))


def truncate(run_dir: str | os.PathLike, epoch: int) -> list[dict[str, float]]:
    """The history up to ``epoch`` (a resumed run's checkpoint), rewritten; the rows kept."""
    rows = [r for r in read_table(Path(run_dir) / HISTORY) if int(r["epoch"]) <= epoch]
    if rows:
        atomic.write_text(Path(run_dir) / HISTORY, csv_text(rows))
    return rows


def _cell(value: float) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return "" if math.isnan(value) else f"{value:.6g}"
