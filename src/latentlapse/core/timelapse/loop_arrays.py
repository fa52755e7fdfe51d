"""What a loop hands to :class:`~latentlapse.core.timelapse.live.Timelapse`, checked at the boundary:
one line naming the split and the shape when something does not fit; the epoch numbering and the
source order the loop must keep."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def as_array(x: Any, dtype: Any = None) -> np.ndarray:
    """``x`` as a numpy array; a tensor is detached (and brought to the CPU) first."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)


def labels(y: Any, name: str = "labels") -> np.ndarray:
    """Class indices as a flat int64 array: shape (n,) or (n, 1), whole numbers."""
    y = as_array(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name}: labels must be class indices of shape (n,), got {y.shape} "
                         f"(one-hot rows? give their argmax)")
    if y.dtype.kind == "f" and len(y) and not np.array_equal(y, np.round(y)):
        raise ValueError(f"{name}: labels must be whole class indices, got {y[y != np.round(y)][0]!r}")
    return y.astype(np.int64)


def split_arrays(split: tuple, name: str, n_classes: int,
                 values: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(features, labels, proba)`` as arrays, one row per label; proba has a column per class.
    ``values``: also check that proba holds probabilities (:func:`check_proba`); ``log_epoch``
    does so on the first epoch, and the writer thread on every epoch, off the loop (in a real
    loop the sum over every row cost log_epoch a fifth more)."""
    if len(split) != 3:
        raise ValueError(f"{name}: give (features, labels, proba), got {len(split)} items")
    features, y, given = split
    given = as_array(given)
    y, proba = labels(y, name), np.asarray(given, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y):
        raise ValueError(f"{name}: proba must be (n, n_classes) with one row per label; got {proba.shape} for {len(y)} labels")
    if not len(y):
        raise ValueError(f"{name}: no sources; each split needs at least one")
    if proba.shape[1] != n_classes:
        raise ValueError(f"{name}: proba has {proba.shape[1]} columns for {n_classes} class names; give one per class")
    if values:
        check_proba(name, given)
    if features is not None:
        features = as_array(features)
        if features.ndim != 2 or len(features) != len(y):
            raise ValueError(f"{name}: features must be (n, d) with one row per label; got {features.shape}")
    return features, y, proba


def probe_positions(n: int, count: int = 256) -> np.ndarray:
    """Up to ``count`` positions spread evenly over ``n`` rows (the same for the same ``n``)."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64)) if n else np.zeros(0, dtype=np.int64)


def check_proba(name: str, proba: np.ndarray) -> None:
    """ValueError unless ``proba`` holds probabilities: one flat sum, which NaN or infinity,
    logits or scores of another scale all move off the number of rows."""
    if not abs(float(proba.sum()) - len(proba)) <= 1e-3 * len(proba):
        _refuse_proba(name, np.asarray(proba, dtype=np.float64))


def _refuse_proba(name: str, proba: np.ndarray) -> None:
    """The ValueError for probabilities that are not: a row with NaN or infinity, else the sums."""
    sums = proba.sum(axis=1)
    finite = np.isfinite(proba).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name}: proba row {int(np.flatnonzero(~finite)[0])} holds NaN or infinity")
    raise ValueError(f"{name}: proba rows must be probabilities summing to 1 (sums {sums.min():.4g} to "
                     f"{sums.max():.4g}, values {proba.min():.4g} to {proba.max():.4g}); apply softmax to logits")


def source_ids(ids: Any, n_train: int, n_val: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(train_ids, val_ids)`` as strings, checked against the split sizes; None when not given
    (then :func:`ids_at` names sources ``train0``, ``val0``, ...)."""
    if ids is None:
        return None
    train_ids, val_ids = (np.asarray(part).astype(str) for part in ids)
    if len(train_ids) != n_train or len(val_ids) != n_val:
        raise ValueError(f"ids: {len(train_ids)} training and {len(val_ids)} validation ids for {n_train} and {n_val} sources")
    return train_ids, val_ids


def ids_at(ids: tuple[np.ndarray, np.ndarray] | None, train_pos: np.ndarray, val_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the sources at ``train_pos`` and ``val_pos`` (only those are made when the loop gave none)."""
    if ids is not None:
        return ids[0][train_pos], ids[1][val_pos]
    return (np.array([f"train{i}" for i in train_pos], dtype=str), np.array([f"val{i}" for i in val_pos], dtype=str))


def sample_inputs(inputs: Any, sources: dict, train_ids, val_ids) -> dict:
    """The explorer's input rows of the frame sample, from full-split inputs."""
    if not isinstance(inputs, Mapping):
        train_X, val_X = inputs
        inputs = dict(kind="features", train_X=train_X, val_X=val_X,
                      feature_names=[f"x{i}" for i in range(np.asarray(train_X).shape[1])])
    tr, va = sources["train_pos"], sources["val_pos"]
    train_X, val_X = np.asarray(inputs["train_X"]), np.asarray(inputs["val_X"])
    nan = math.nan
    counts_tr = np.asarray(inputs.get("train_counts", np.full(len(train_X), nan)))
    counts_va = np.asarray(inputs.get("val_counts", np.full(len(val_X), nan)))
    return dict(kind=inputs.get("kind", "features"), train_ids=train_ids, val_ids=val_ids,
                train_X=train_X[tr], val_X=val_X[va], train_counts=counts_tr[tr], val_counts=counts_va[va],
                energy=inputs.get("energy"), feature_names=inputs.get("feature_names", ()))


def check_epoch(epoch: Any, logged: int, total: int) -> int:
    """The epoch as an int: 1 to ``total``, each logged once, in increasing order (``logged``:
    the last one logged)."""
    number = int(epoch)
    if number != epoch or not 1 <= number <= total:
        raise ValueError(f"epoch {epoch!r}: epochs are numbered 1 to {total} (the epochs given to Timelapse); "
                         f"a loop counting from 0 logs epoch + 1")
    if number <= logged:
        raise ValueError(f"epoch {number} after epoch {logged}: log each epoch once, in increasing order")
    return number


def source_probe(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions :func:`check_same_sources` compares, and the labels found there."""
    probe = probe_positions(len(y))
    return probe, y[probe]


def check_same_sources(epoch: int, y_tr: np.ndarray, y_va: np.ndarray, sources: dict) -> None:
    """The same sources in the same order every epoch: the sample and the dynamics are positions.
    The labels are compared at up to 256 fixed positions: a shuffled loader moves nearly all."""
    for name, y, first, (probe, expected) in (("train", y_tr, sources["y_tr"], sources["probe_tr"]),
                                              ("val", y_va, sources["y_va"], sources["probe_va"])):
        if len(y) != len(first) or not (y[probe] == expected).all():
            seen = f"{len(y)} sources" if len(y) != len(first) else "the labels in another order"
            raise ValueError(f"{name}: {seen} at epoch {epoch}, not those of the first epoch logged ({len(first)}); "
                             f"log the same sources in the same order every epoch (a loader without shuffling)")


def starting_as_spawned_child() -> bool:
    """Whether this process is a spawned child still importing the parent's script (the flag
    multiprocessing itself checks before refusing to start a process from there)."""
    import multiprocessing

    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))
