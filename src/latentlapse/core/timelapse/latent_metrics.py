"""The numbers behind each frame, measured in the model's feature space rather than on the 2-D map.

t-SNE and UMAP distort distances and cluster sizes, so spread, centroid distances, silhouette and
nearest-neighbour statistics are computed on the penultimate-layer features; the map itself is
judged only by its trustworthiness and by how far points moved since the previous frame. One
flat dict per frame becomes one row of ``latent_metrics.csv`` (columns: :func:`metric_columns`,
then :data:`FRAME_LAG`, which the worker measures once the frame's PNG is on disk).

Class names in column names are the scheme's short names (``HM/LM`` -> ``HM_LM``). A class that
is absent from a sample gives NaN in its columns, never an error.

Silhouette, trustworthiness and the k-NN statistics cost time (the first two also memory) that
grows with the square of the points: for samples above ``METRIC_SAMPLE_MAX`` points they are
computed on a fixed random subsample (drawn from the run's seed, the same points every frame).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latentlapse.core import rng
from latentlapse.core.timelapse.styles import safe_name
from latentlapse.core.timelapse.projection import Layout, displacement, single_threaded
from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec

KNN_K = 5
TRUST_NEIGHBORS = 10
# Above this many points the quadratic metrics use a fixed subsample: silhouette and
# trustworthiness of 5,000 points take about a second each on one core, and sklearn's
# trustworthiness holds two n x n matrices (50,000 points: 40 GB).
METRIC_SAMPLE_MAX = 5000
# k-NN distances are computed this many entries at a time (float64: 128 MB) and fully sorted up to
# this many reference points; larger reference sets (large maps) go to scikit-learn's search.
_KNN_CHUNK = 2**24
_KNN_FULL_SORT_MAX = 4096
_NAN = float("nan")


FRAME_LAG = "frame_lag_s"  # seconds from the epoch's end to its PNG on disk, added by the worker


def metric_columns(class_short_names: Sequence[str]) -> list[str]:
    """The fixed CSV header, in order, for classes with these short names."""
    names = list(class_short_names)
    columns = [
        "epoch", "val_acc", "val_errors", "val_total", "silhouette", "knn_acc",
        "trustworthiness", "displacement", "spread_ratio", "spread_mean",
    ]
    columns += [f"spread_{c}" for c in names]
    columns += [f"dist_{a}__{b}" for i, a in enumerate(names) for b in names[i + 1:]]
    columns += [f"recall_{c}" for c in names]
    columns += [f"knn_to_{c}__{d}" for c in names for d in names]
    return columns


def frame_metrics(
    snapshot: Snapshot, spec: TimelapseSpec, layout: Layout, previous: Layout | None
) -> dict[str, float]:
    """One frame's row: accuracy and errors, cluster geometry, neighbourhoods, map quality.

    Parameters
    ----------
    snapshot : the epoch's features (fixed samples) and predictions (sample and full split).
    spec : the run's classes and the samples' true labels.
    layout : this frame's 2-D map (for trustworthiness and displacement).
    previous : the previous frame's map, or None on the first frame (displacement is NaN).

    Returns
    -------
    dict
        Keys exactly :func:`metric_columns` of the classes' short names, in that order.
    """
    names = [safe_name(name) for name in spec.class_names]
    n_classes = len(names)
    train = np.asarray(snapshot.train_features, dtype=np.float64)
    val = np.asarray(snapshot.val_features, dtype=np.float64)
    train_labels = np.asarray(spec.train_labels)
    val_labels = np.asarray(spec.val_labels)

    row: dict[str, float] = {"epoch": int(snapshot.epoch)}
    row.update(_full_validation(snapshot))
    t, v = metric_subsamples(len(train), len(val), spec.seed)
    val_labels = val_labels[v]
    with single_threaded():
        knn_pred = knn_predict(train, train_labels, val[v], n_classes)
        row["silhouette"] = _silhouette(train[t], train_labels[t])
        row["trustworthiness"] = _trustworthiness(train[t], layout.train_xy[t])
    row["knn_acc"] = float(np.mean(knn_pred == val_labels)) if len(val_labels) else _NAN
    row["displacement"] = displacement(previous, layout) if previous is not None else _NAN

    spreads, centroids = class_geometry(train, train_labels, n_classes)
    distances = [
        float(np.linalg.norm(centroids[a] - centroids[b]))
        for a in range(n_classes) for b in range(a + 1, n_classes)
    ]
    row["spread_ratio"] = _ratio(_nanmean(spreads), _nanmean(distances))
    row["spread_mean"] = _nanmean(spreads)
    row.update({f"spread_{c}": float(s) for c, s in zip(names, spreads)})
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    row.update({f"dist_{a}__{b}": d for (a, b), d in zip(pairs, distances)})
    row.update(_recalls(snapshot, names))
    row.update(_knn_to(knn_pred, val_labels, names))
    return {column: row[column] for column in metric_columns(names)}


def metric_subsamples(n_train: int, n_val: int, seed: int) -> tuple[np.ndarray | slice, np.ndarray | slice]:
    """The training and validation points the quadratic metrics use: all of them up to
    ``METRIC_SAMPLE_MAX``, else that many in index order, drawn from the seed's ``metrics``
    stream (so every frame of a run uses the same points)."""
    generator = rng.generator(seed, "metrics")
    picks = []
    for n in (n_train, n_val):
        if n <= METRIC_SAMPLE_MAX:
            picks.append(slice(None))
        else:
            picks.append(np.sort(generator.choice(n, METRIC_SAMPLE_MAX, replace=False)))
    return picks[0], picks[1]


def class_geometry(
    features: np.ndarray, labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: mean distance of its points to its centroid, and the centroid (NaN if absent)."""
    spreads = np.full(n_classes, np.nan)
    centroids = np.full((n_classes, features.shape[1]), np.nan)
    for c in range(n_classes):
        members = features[labels == c]
        if len(members):
            centroids[c] = members.mean(axis=0)
            spreads[c] = np.linalg.norm(members - centroids[c], axis=1).mean()
    return spreads, centroids


def knn_predict(
    train: np.ndarray, train_labels: np.ndarray, query: np.ndarray, n_classes: int, k: int = KNN_K
) -> np.ndarray:
    """Majority class among each query point's ``k`` nearest training points (Euclidean).

    A tie goes to the tied class whose member is nearest, so the vote is deterministic.
    Returns -1 for every query point when there are no training points.
    """
    if len(train) == 0 or len(query) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    k = min(k, len(train))
    if len(train) > _KNN_FULL_SORT_MAX and k < len(train):
        # scikit-learn's chunked search (a BLAS product, then the k smallest of each row in
        # Cython): 0.5 CPU s for 5,000 queries among 20,000 points, numpy's argpartition 2.8-3.6 s
        from sklearn.neighbors import NearestNeighbors

        nearest = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(train).kneighbors(
            query, return_distance=False)
        return majority_vote(train_labels[nearest], n_classes)
    train_norms = np.sum(train**2, axis=1)[None, :]
    rows = max(1, _KNN_CHUNK // len(train))
    nearest = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), rows):
        chunk = query[start:start + rows]
        squared = np.sum(chunk**2, axis=1)[:, None] + train_norms - 2.0 * chunk @ train.T
        nearest[start:start + rows] = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return majority_vote(train_labels[nearest], n_classes)


def majority_vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The majority class of each row of neighbours' labels (nearest first); a tie goes to the
    tied class whose member is nearest, so the vote is deterministic."""
    k = neighbour_labels.shape[1]
    score = np.empty((len(neighbour_labels), n_classes))
    for c in range(n_classes):
        is_c = neighbour_labels == c
        nearest_rank = np.where(is_c.any(axis=1), is_c.argmax(axis=1), k)
        score[:, c] = is_c.sum(axis=1) * (k + 1) - nearest_rank  # more votes win, then the nearer member
    return np.argmax(score, axis=1).astype(np.int64)


def share_matrix(majority: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``share[c, d]``: fraction of class c's points whose k-NN majority is d (rows sum to 1;
    a row of NaN for a class without points)."""
    share = np.full((n_classes, n_classes), np.nan)
    for c in range(n_classes):
        members = labels == c
        if members.any():
            share[c] = np.mean(majority[members, None] == np.arange(n_classes), axis=0)  # -1 (no vote) counts nowhere
    return share


def _full_validation(snapshot: Snapshot) -> dict[str, float]:
    """Accuracy, error count and total on the whole validation split (not the sample)."""
    true = np.asarray(snapshot.val_true_all)
    pred = np.asarray(snapshot.val_pred_all)
    total = int(len(true))
    errors = int(np.sum(true != pred))
    computed = (total - errors) / total if total else _NAN
    val_acc = float(snapshot.scores.get("val_acc", computed))
    return {"val_acc": val_acc, "val_errors": errors, "val_total": total}


def _recalls(snapshot: Snapshot, names: list[str]) -> dict[str, float]:
    """Per-class recall on the full validation split; NaN for a class with no sources there."""
    true = np.asarray(snapshot.val_true_all)
    pred = np.asarray(snapshot.val_pred_all)
    out = {}
    for c, name in enumerate(names):
        members = true == c
        out[f"recall_{name}"] = float(np.mean(pred[members] == c)) if members.any() else _NAN
    return out


def _knn_to(knn_pred: np.ndarray, val_labels: np.ndarray, names: list[str]) -> dict[str, float]:
    """Fraction of class c's validation points whose k-NN majority among training points is d.

    Each row c sums to 1; a high off-diagonal value is a minority class embedded in another
    class's cluster. NaN for every d when c has no validation points in the sample.
    """
    share = share_matrix(knn_pred, val_labels, len(names))
    return {f"knn_to_{name_c}__{name_d}": float(share[c, d])
            for c, name_c in enumerate(names) for d, name_d in enumerate(names)}


def _silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the training sample by true class; NaN when it is undefined (one class)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels > len(labels) - 1:
        return _NAN
    return float(silhouette_score(features, labels))


def _trustworthiness(features: np.ndarray, xy: np.ndarray) -> float:
    """How well the 2-D map keeps feature-space neighbours (sklearn, 10 neighbours or fewer)."""
    from sklearn.manifold import trustworthiness

    n_neighbors = min(TRUST_NEIGHBORS, (len(features) - 1) // 2)
    if n_neighbors < 1 or len(xy) != len(features):
        return _NAN
    return float(trustworthiness(features, xy, n_neighbors=n_neighbors))


def _nanmean(values) -> float:
    """Mean of the finite values, NaN when there are none (without numpy's empty-slice warning)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else _NAN


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is zero."""
    if not np.isfinite(numerator) or not np.isfinite(denominator) or denominator == 0:
        return _NAN
    return numerator / denominator
