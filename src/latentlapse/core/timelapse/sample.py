"""The fixed sample every frame draws: stratified, every class present, chosen once per run."""

from __future__ import annotations

import csv
import io
from typing import Sequence

import numpy as np

SAMPLES_FILE = "viz_samples.csv"


def choose_sample(y: np.ndarray, budget: int, n_classes: int, generator: np.random.Generator) -> np.ndarray:
    """Indices of at most ``budget`` rows of ``y``, stratified, every present class included
    (so one row per class where the budget is smaller than the number of classes).

    Classes no larger than a minimum share (a third of an equal split, at least 10 where the
    budget allows) are taken in full; the rest of the budget is shared in proportion to class
    size (largest remainder).
    """
    counts = np.bincount(y, minlength=n_classes)
    if counts.sum() <= budget:
        return np.arange(len(y))
    present = max(int((counts > 0).sum()), 1)
    minimum = max(1, min(10, budget // present), budget // (3 * present))
    quota = np.minimum(counts, minimum)
    left = budget - quota.sum()
    if left > 0:
        spare = counts - quota
        share = left * spare / max(spare.sum(), 1)
        extra = np.floor(share).astype(np.int64)
        remainder = int(left - extra.sum())
        extra[np.argsort(-(share - extra), kind="stable")[:remainder]] += 1
        quota = np.minimum(counts, quota + extra)
    chosen = [
        np.sort(generator.choice(np.flatnonzero(y == c), size=int(quota[c]), replace=False))
        for c in range(n_classes) if quota[c] > 0
    ]
    return np.sort(np.concatenate(chosen))


def samples_csv(class_names: Sequence[str], train_ids: np.ndarray, train_labels: np.ndarray,
                val_ids: np.ndarray, val_labels: np.ndarray) -> str:
    """``viz_samples.csv``: id, split and class name of every point drawn in the frames."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "split", "class"])
    for ids, labels, split in ((train_ids, train_labels, "train"), (val_ids, val_labels, "val")):
        writer.writerows((str(i), split, class_names[int(c)]) for i, c in zip(ids, labels))
    return buffer.getvalue()
