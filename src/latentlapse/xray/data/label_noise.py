"""Label noise you can measure: flip a known fraction of the labels to another class.

``latentlapse simulate --label_noise F`` uses it to write a data set whose wrong labels are
known (listed in a sidecar CSV), and ``bench/label_noise.py`` to measure how well the training
dynamics find them. Flips are stratified (each class loses its share, largest remainder, so the
total is exactly ``round(F * n)``), every flipped source goes to a different class drawn
uniformly, and all draws come from the ``label_noise`` stream of the seed.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from latentlapse.core.errors import UsageError

MAX_FRACTION = 0.5  # beyond half, the "noise" outvotes the labels of a class


def check_fraction(fraction: float) -> None:
    """Refuse a fraction outside [0, MAX_FRACTION] with one line (usage error, exit 2)."""
    if not 0.0 <= fraction <= MAX_FRACTION:
        raise UsageError(f"--label_noise must be between 0 and {MAX_FRACTION:g} (a fraction of the labels), "
                         f"got {fraction:g}")


def stratified_counts(y: np.ndarray, fraction: float, n_classes: int) -> np.ndarray:
    """Flips per class: ``fraction`` of each class, rounded by largest remainder to ``round(F * n)``."""
    sizes = np.bincount(y, minlength=n_classes)
    quota = fraction * sizes.astype(np.float64)
    counts = np.floor(quota).astype(np.int64)
    left = int(round(fraction * len(y))) - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:max(left, 0)]] += 1
    return np.minimum(counts, sizes)


def flip_labels(y: np.ndarray, fraction: float, n_classes: int,
                generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels with ``round(fraction * len(y))`` of them moved to another class, and the flipped rows.

    Returns ``(noisy, flipped)``: the new class indices (a copy) and the sorted indices of the
    rows that changed. Every flipped row gets a class other than its own, uniformly among the
    other ``n_classes - 1``.
    """
    check_fraction(fraction)
    y = np.asarray(y, dtype=np.int64)
    noisy = y.copy()
    counts = stratified_counts(y, fraction, n_classes)
    chosen = [generator.choice(np.flatnonzero(y == c), size=int(counts[c]), replace=False)
              for c in range(n_classes) if counts[c]]
    flipped = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    shift = generator.integers(1, n_classes, size=len(flipped))  # 1..K-1 classes further on: never itself
    noisy[flipped] = (y[flipped] + shift) % n_classes
    return noisy, flipped


def sidecar_path(out: str | os.PathLike) -> Path:
    """``spectra.txt`` -> ``spectra.label_noise.csv`` (next to the output)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.label_noise.csv")


def sidecar_csv(ids: np.ndarray, original: np.ndarray, noisy: np.ndarray, flipped: np.ndarray) -> str:
    """The flipped sources: id, the label they had and the one they were given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "original_label", "noisy_label"])
    writer.writerows((str(ids[i]), str(original[i]), str(noisy[i])) for i in flipped)
    return buffer.getvalue()


def flip_fine_labels(labels: np.ndarray, fraction: float, n_classes: int,
                     generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fine labels (``AGN``, ``YSO``, ...) flipped to a class of the ``n_classes`` scheme other than
    their own; the new fine label is a member of that class drawn in proportion to how common
    each member is in ``labels`` (unlabelled rows and labels the scheme leaves out are never
    touched). Returns the new labels and the flipped rows."""
    from latentlapse.xray.data.taxonomy import scheme

    chosen = scheme(n_classes)
    codes = chosen.encode(labels)
    rows = np.flatnonzero(codes >= 0)
    noisy_codes, flipped_local = flip_labels(codes[rows], fraction, n_classes, generator)
    flipped = rows[flipped_local]
    noisy = np.array(labels, dtype=object)
    for row, target in zip(flipped, noisy_codes[flipped_local]):
        members = chosen.members[int(target)]
        weights = np.array([np.sum(labels == m) for m in members], dtype=np.float64)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(members), 1.0 / len(members))
        noisy[row] = members[int(generator.choice(len(members), p=weights))]
    return noisy.astype(str), flipped
