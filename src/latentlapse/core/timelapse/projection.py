"""2-D maps of the latent features, steady from frame to frame so that the time-lapse can be read.

Each frame is fitted starting from the previous frame's positions, validation points are placed
into the training map, and the result is rotated (or reflected) onto the previous frame and
scaled into a fixed display box. Points therefore move only about as much as the features
changed, and every frame can be drawn with the same axis limits ``±DISPLAY_LIMIT``.

Methods: ``"tsne"`` (openTSNE), ``"umap"`` (umap-learn, an optional extra) and ``"pca"``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from latentlapse.core.timelapse.umap_loader import import_umap

logger = logging.getLogger(__name__)

METHODS = ("tsne", "umap", "pca")
DISPLAY_LIMIT = 1.0
MIN_POINTS = 5

# The display box: the 98th percentile of point radii lands at 85 % of the limit, and the few
# points beyond 97 % are pulled in radially onto that circle (see ``_to_display``).
_RADIUS_PERCENTILE = 98.0
_PERCENTILE_RADIUS = 0.85 * DISPLAY_LIMIT
_MAX_RADIUS = 0.97 * DISPLAY_LIMIT

# t-SNE settings. A first frame is a full fit; later frames continue from the last layout.
_PERPLEXITY = 30.0
_FIRST_EXAGGERATION_ITER = 250
_FIRST_ITER = 500
_WARM_ITER = 75
# Placing validation points: openTSNE's ``transform`` defaults, fewer iterations.
_PLACE_PERPLEXITY = 5.0
_PLACE_ITER = 50

# Up to this many training points the projections get an exact distance matrix computed here
# (n² float64: 134 MB at the limit); from it on, umap-learn switches to approximate neighbours and
# can no longer ``transform`` new points given as precomputed distances, and the matrix would
# grow past the worker's memory budget, so the libraries get the features and search themselves.
_PRECOMPUTED_MAX = 4096

# Large maps (``--viz_*_samples`` in the tens of thousands), measured on one core in CPU seconds
# (bench/frames.py --sizes; synthetic 64-D clusters): 75 warm iterations with Barnes-Hut cost
# 0.55 s at 2,000 points, 0.93 s at 3,000, 4.8 s at 10,000 and 13.7 s at 20,000; with openTSNE's
# FFT-interpolated gradients 0.63, 0.71, 1.3 and 2.0 s. So from _FFT_MIN points on the gradients
# are FFT's. Neighbours: scikit-learn's exact search (what openTSNE's "exact" runs, BLAS on 64-D
# features) took 0.4 / 3.5 / 16.4 s at 5,000 / 20,000 / 50,000 points and openTSNE's Annoy
# 1.7 / 9.4 / 30.8 s: exact search wins up to 50,000 points. Extrapolated (n² against n log n)
# they cross near 100,000, so Annoy's approximate neighbours take over from there.
_FFT_MIN = 3000
_APPROX_NEIGHBORS_MIN = 100_000
# FFT gradients interpolate on a grid of one interval per unit of the layout's extent (openTSNE's
# ``ints_in_interval=1``). A converged map of 20,000 real features spans ~190 units, so 75 warm
# iterations cost 12.4 CPU s, nearly all in numpy's FFTs; two units per interval: 3.5 s, with the
# same trustworthiness (0.9869 against 0.9866) and frame-to-frame displacement (0.078 against
# 0.081); four: 1.6 s but the gradient visibly coarser (KL estimate 0.99 against 0.68).
_FFT_INTS_IN_INTERVAL = 2

# UMAP never settles (its negative sampling keeps points moving): a warm start with the default
# learning rate 1.0 moved points 0.25 of the map's size per frame even for unchanged features;
# 0.1 halves that without loss of trustworthiness on our synthetic sequences.
_UMAP_WARM_EPOCHS = 100
_UMAP_WARM_LEARNING_RATE = 0.1


class ProjectionError(ValueError):
    """The features of a frame cannot be projected (degenerate, non-finite or too few)."""


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous; compare the arrays instead
class ProjectionState:
    """What the next frame's warm start needs: the method and its raw (unscaled) positions."""

    method: str
    train_raw: np.ndarray
    val_raw: np.ndarray


@dataclass(frozen=True, eq=False)
class Layout:
    """One frame's map in display coordinates (centred, aligned, inside ``±DISPLAY_LIMIT``)."""

    train_xy: np.ndarray
    val_xy: np.ndarray
    state: object


def umap_available() -> bool:
    """True when umap-learn is installed; checked without importing it (the import is slow)."""
    return importlib.util.find_spec("umap") is not None


@functools.lru_cache(maxsize=1)
def _warn_umap_missing() -> None:
    """Say once per process that UMAP falls back to t-SNE, and how to get UMAP."""
    logger.warning(
        "UMAP not found, using t-SNE: umap-learn is not installed "
        "(pip install 'latentlapse[umap]')"
    )


def project(
    train_features: np.ndarray,
    val_features: np.ndarray,
    method: str,
    previous: Layout | None,
    seed: int,
) -> Layout:
    """Project one frame's training and validation features to aligned 2-D display coordinates.

    Parameters
    ----------
    train_features, val_features : (n_train, d) and (n_val, d) features of the fixed samples.
    method : ``"tsne"``, ``"umap"`` or ``"pca"``; ``"umap"`` without umap-learn falls back to
        t-SNE with one warning per process.
    previous : the previous frame's layout of the same points, or None for the first frame.
        It is the warm start (when it came from the same method) and the target of alignment.
    seed : fixes the projection's randomness.

    Returns
    -------
    Layout
        ``train_xy`` and ``val_xy`` inside ``±DISPLAY_LIMIT``; ``state`` for the next frame.

    Raises
    ------
    ProjectionError
        Too few points, non-finite or identical features, or a failure inside the library.
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown projection method {method!r}; choose one of {', '.join(METHODS)}"
        )
    train, val = _validated(train_features, val_features)
    if method == "umap" and not umap_available():
        _warn_umap_missing()
        method = "tsne"
    warm = _warm_state(previous, method, len(train), len(val))
    fit = {"tsne": _tsne, "umap": _umap, "pca": _pca}[method]
    try:
        with single_threaded():
            train_raw, val_raw = fit(train, val, warm, seed)
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:
        raise ProjectionError(f"{method} projection failed: {exc}") from exc
    if not (np.isfinite(train_raw).all() and np.isfinite(val_raw).all()):
        raise ProjectionError(f"{method} projection produced non-finite positions")
    same_points = previous is not None and len(previous.train_xy) == len(train)
    reference = previous.train_xy if same_points else None
    train_xy, val_xy = _to_display(train_raw, val_raw, reference)
    return Layout(train_xy, val_xy, ProjectionState(method, train_raw, val_raw))


def displacement(previous: Layout, current: Layout) -> float:
    """Mean distance moved by the same points between two frames, relative to the map's size.

    ``current`` is first rotated/reflected onto ``previous`` using the training points (a no-op
    for layouts that :func:`project` already aligned), then the mean displacement of all points
    (training and validation) is divided by the RMS distance of the current points from their
    centroid. NaN when the two layouts do not hold the same number of points.
    """
    same_points = (previous.train_xy.shape, previous.val_xy.shape) == (
        current.train_xy.shape, current.val_xy.shape
    )
    if not same_points:
        return float("nan")
    old_centre, centre = previous.train_xy.mean(axis=0), current.train_xy.mean(axis=0)
    rotation = procrustes_rotation(current.train_xy - centre, previous.train_xy - old_centre)
    old = np.vstack([previous.train_xy, previous.val_xy]) - old_centre
    new = (np.vstack([current.train_xy, current.val_xy]) - centre) @ rotation
    rms = np.sqrt(np.mean(np.sum((new - new.mean(axis=0)) ** 2, axis=1)))
    if rms == 0:
        return float("nan")
    return float(np.mean(np.linalg.norm(new - old, axis=1)) / rms)


def single_threaded():
    """A context that limits numpy/scikit-learn (BLAS, OpenMP) to one thread.

    The time-lapse runs beside training: multi-threaded neighbour searches on a few hundred
    points gain nothing and, on busy cores, spin-wait — measured 0.11 s single-threaded against
    0.11–0.34 s with default threads for a warm t-SNE frame while another process was busy.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def procrustes_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal 2×2 matrix ``R`` (rotation, possibly with reflection) minimising
    ``||source @ R - target||``; both inputs must already be centred. No scaling or shear."""
    u, _, vt = np.linalg.svd(source.T @ target)
    return u @ vt


def _validated(
    train_features: np.ndarray, val_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The features as conditioned float64 arrays, or a ProjectionError saying what is wrong.

    Conditioning changes no neighbourhood: both arrays are centred on the training mean and
    divided by the largest absolute training value (t-SNE, UMAP and PCA maps do not depend on
    a global shift or scale), so features of any magnitude neither overflow nor underflow.
    One-dimensional features get a zero second column, which leaves all distances unchanged.
    """
    train = np.asarray(train_features, dtype=np.float64)
    val = np.asarray(val_features, dtype=np.float64)
    if train.ndim != 2 or val.ndim != 2 or train.shape[1] != val.shape[1]:
        raise ProjectionError(
            f"features must be two 2-D arrays with the same number of columns, "
            f"got shapes {train.shape} and {val.shape}"
        )
    if len(train) < MIN_POINTS:
        raise ProjectionError(f"too few points to project: {len(train)} training (need {MIN_POINTS})")
    for name, values in (("training", train), ("validation", val)):
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            raise ProjectionError(
                f"{int(bad.sum())} of {len(values)} {name} points have NaN or infinite features"
            )
    if np.all(train == train[0]):
        raise ProjectionError(
            f"all {len(train)} training points have identical features; nothing to project"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        centre = train.mean(axis=0)
        scale = np.abs(train - centre).max()
        train, val = (train - centre) / scale, (val - centre) / scale
    if not (np.isfinite(train).all() and np.isfinite(val).all()):
        raise ProjectionError("features are too large to project (they overflow when centred)")
    if train.shape[1] == 1:
        train, val = np.pad(train, ((0, 0), (0, 1))), np.pad(val, ((0, 0), (0, 1)))
    return train, val


def _warm_state(
    previous: Layout | None, method: str, n_train: int, n_val: int
) -> ProjectionState | None:
    """The previous frame's state when it can seed this frame (same method, same points)."""
    state = previous.state if previous is not None else None
    if not isinstance(state, ProjectionState) or state.method != method:
        return None
    if state.train_raw.shape != (n_train, 2) or state.val_raw.shape != (n_val, 2):
        logger.info("the sample changed size; projecting this frame from scratch")
        return None
    return state


def _tsne(train: np.ndarray, val: np.ndarray, warm: ProjectionState | None, seed: int):
    """openTSNE map of ``train``, with ``val`` placed into it; returns raw positions.

    The first frame is a standard fit from a PCA initialisation (early exaggeration, then the
    normal phase). Later frames *continue* optimising the previous, converged layout under the
    new features' affinities with exaggeration 1. openTSNE's advice to rescale an
    initialisation to a tiny spread applies before an early-exaggeration phase; for a layout
    that is already at equilibrium it makes points wander (measured: about twice the
    frame-to-frame displacement for no gain in trustworthiness), so we do not rescale here.

    Below ``_PRECOMPUTED_MAX`` points, exact distances are computed here (scipy) and given to
    openTSNE as ``metric="precomputed"``: the same affinities (to 1e-17) as its
    ``method="exact"``, whose set-up imports pynndescent and numba only to check they are
    installed — about 1 s and 120 MB in the worker, for nothing. Large maps switch to FFT
    gradients from ``_FFT_MIN`` points and to Annoy's neighbours from ``_APPROX_NEIGHBORS_MIN``.
    """
    from openTSNE import TSNEEmbedding, affinity, initialization

    perplexity = min(_PERPLEXITY, (len(train) - 1) / 3)
    train_input, val_input, metric = _distance_inputs(train, val)
    search = "exact" if len(train) < _APPROX_NEIGHBORS_MIN else "annoy"
    affinities = affinity.PerplexityBasedNN(
        train_input, perplexity=perplexity, n_jobs=1, random_state=seed,
        **({"metric": metric} if metric == "precomputed" else {"method": search}),
    )
    gradients = "fft" if len(train) >= _FFT_MIN else "bh"
    params = dict(random_state=seed, n_jobs=1, negative_gradient_method=gradients)
    if gradients == "fft":
        params["ints_in_interval"] = _FFT_INTS_IN_INTERVAL
    if warm is None:
        init = initialization.pca(train, random_state=seed)
        embedding = TSNEEmbedding(init, affinities, **params)
        embedding.optimize(_FIRST_EXAGGERATION_ITER, exaggeration=12, momentum=0.5, inplace=True)
        embedding.optimize(_FIRST_ITER, momentum=0.8, inplace=True)
    else:
        embedding = TSNEEmbedding(warm.train_raw, affinities, **params)
        embedding.optimize(_WARM_ITER, momentum=0.8, inplace=True)
    if len(val) == 0:
        return np.array(embedding), np.empty((0, 2))
    placed = embedding.prepare_partial(
        val_input, initialization="median", k=min(25, len(train)),
        perplexity=min(_PLACE_PERPLEXITY, (len(train) - 1) / 3),
    )
    placed.optimize(
        _PLACE_ITER, learning_rate=0.1, exaggeration=1.5, momentum=0.8, max_grad_norm=0.25,
        inplace=True,
    )
    return np.array(embedding), np.array(placed)


def _umap(train: np.ndarray, val: np.ndarray, warm: ProjectionState | None, seed: int):
    """UMAP map of ``train`` (``init=`` the previous positions when warm), ``val`` transformed.

    Below ``_PRECOMPUTED_MAX`` points, distances are computed here (scipy) and handed over as
    ``metric="precomputed"``: umap-learn would compute all of them itself, but through
    scikit-learn's ``pairwise_distances`` with a numba callable, one Python call per pair —
    measured 0.37 s of a 0.43 s frame (500 + 300 points); precomputed, the frame takes 0.12 s
    with the same trustworthiness and frame-to-frame displacement. umap's ``transform`` then
    takes the distances from the new points to the training points. From ``_PRECOMPUTED_MAX``
    points on, umap-learn gets the features and builds its own approximate neighbour graph
    (NN-descent, which it uses from 4,096 points) for the fit and for ``transform``.
    """
    umap = import_umap()
    n_neighbors = min(15, len(train) - 1)
    train_input, val_input, metric = _distance_inputs(train, val)
    options = dict(n_components=2, n_neighbors=n_neighbors, metric=metric, random_state=seed, n_jobs=1)
    if warm is None:
        reducer = umap.UMAP(init="spectral", **options)
    else:
        reducer = umap.UMAP(
            init=warm.train_raw, n_epochs=_UMAP_WARM_EPOCHS,
            learning_rate=_UMAP_WARM_LEARNING_RATE, **options,
        )
    with warnings.catch_warnings():
        # A fixed random_state makes umap warn on every call that it runs single-threaded; a
        # precomputed metric, that inverse_transform is unavailable and how transform reads it.
        warnings.filterwarnings("ignore", module=r"umap\b")
        train_raw = reducer.fit_transform(train_input)
        val_raw = reducer.transform(val_input) if len(val) else np.empty((0, 2))
    return np.asarray(train_raw, dtype=np.float64), np.asarray(val_raw, dtype=np.float64)


def _distance_inputs(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """What the projection libraries are given: the training-to-training and validation-to-training
    distance matrices with ``"precomputed"``, or, from ``_PRECOMPUTED_MAX`` training points on,
    the features themselves with ``"euclidean"``."""
    if len(train) >= _PRECOMPUTED_MAX:
        return train, val, "euclidean"
    from scipy.spatial.distance import cdist

    return cdist(train, train), cdist(val, train), "precomputed"


def _pca(train: np.ndarray, val: np.ndarray, warm: ProjectionState | None, seed: int):
    """The first two principal components of ``train``, applied to ``val``; no warm start needed
    (alignment to the previous frame fixes the components' arbitrary signs)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full", random_state=seed).fit(train)
    return pca.transform(train), pca.transform(val) if len(val) else np.empty((0, 2))


def _to_display(train_raw: np.ndarray, val_raw: np.ndarray, reference: np.ndarray | None):
    """Centre on the training centroid, rotate onto ``reference``, scale into the display box.

    Scale: the 98th percentile of all points' radii is mapped to 0.85 × DISPLAY_LIMIT. A
    percentile, unlike the maximum, is not thrown by one straggler, so the bulk of the map keeps
    a steady size from frame to frame; the few points beyond 0.97 × DISPLAY_LIMIT are moved
    radially onto that circle so that they stay visible at the border of fixed axes.
    """
    centre = train_raw.mean(axis=0)
    train, val = train_raw - centre, val_raw - centre
    if reference is not None:
        rotation = procrustes_rotation(train, reference - reference.mean(axis=0))
        train, val = train @ rotation, val @ rotation
    radii = np.linalg.norm(np.vstack([train, val]), axis=1)
    scale = np.percentile(radii, _RADIUS_PERCENTILE)
    if not scale > 0:
        raise ProjectionError("the projection collapsed all points onto one position")
    factor = _PERCENTILE_RADIUS / scale
    return _clip_radius(train * factor), _clip_radius(val * factor)


def _clip_radius(xy: np.ndarray) -> np.ndarray:
    """Points beyond ``_MAX_RADIUS`` moved onto that circle along their own direction."""
    radii = np.linalg.norm(xy, axis=1, keepdims=True)
    shrink = np.minimum(1.0, _MAX_RADIUS / np.maximum(radii, 1e-300))
    return xy * shrink
