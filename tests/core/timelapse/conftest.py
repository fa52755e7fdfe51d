"""Hand-built specs, snapshots and feature sequences for the time-lapse stages (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec

CLASS_NAMES = ("AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
MARKERS = ("o", "s", "^", "D")


def _make_spec(run_dir, train_labels, val_labels, total_epochs=150, method="tsne") -> TimelapseSpec:
    """A four-class spec for samples with these labels."""
    train_labels = np.asarray(train_labels, dtype=np.int64)
    val_labels = np.asarray(val_labels, dtype=np.int64)
    return TimelapseSpec(
        run_dir=str(run_dir),
        class_names=CLASS_NAMES,
        colors=COLORS,
        markers=MARKERS,
        method=method,
        total_epochs=total_epochs,
        seed=0,
        train_ids=np.arange(len(train_labels)),
        val_ids=np.arange(len(val_labels)),
        train_labels=train_labels,
        val_labels=val_labels,
    )


def _feature_sequence(n_frames=8, n_train=300, n_val=120, dim=32, seed=0, start=1.5, end=3.5, drift=0.05):
    """Features of a model that learns: four Gaussian classes whose centroids separate gradually.

    Every point keeps its own noise vector, which drifts a little each frame, so consecutive
    frames hold the same points in slightly different places — like consecutive epochs.
    Returns the list of (train, val) float32 arrays and the train and val labels.
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(4, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    train_labels = np.arange(n_train) % 4
    val_labels = np.arange(n_val) % 4
    train_noise = rng.normal(size=(n_train, dim))
    val_noise = rng.normal(size=(n_val, dim))
    frames = []
    for f in range(n_frames):
        separation = 2.0 * (start + (end - start) * f / max(1, n_frames - 1))
        train_noise = train_noise + drift * rng.normal(size=train_noise.shape)
        val_noise = val_noise + drift * rng.normal(size=val_noise.shape)
        frames.append((
            (train_noise + separation * directions[train_labels]).astype(np.float32),
            (val_noise + separation * directions[val_labels]).astype(np.float32),
        ))
    return frames, train_labels, val_labels


def _make_snapshot(epoch, train_features, val_features, val_labels, n_wrong=7, scores=None) -> Snapshot:
    """A snapshot whose first ``n_wrong`` validation sample points are predicted wrongly; the
    full validation split is the sample plus 100 more, all correct."""
    val_labels = np.asarray(val_labels)
    val_pred = val_labels.copy()
    val_pred[:n_wrong] = (val_pred[:n_wrong] + 1) % 4
    extra = np.arange(100) % 4
    return Snapshot(
        epoch=epoch,
        train_features=train_features,
        val_features=val_features,
        val_pred=val_pred,
        val_true_all=np.concatenate([val_labels, extra]),
        val_pred_all=np.concatenate([val_pred, extra]),
        scores=scores if scores is not None else {
            "train_acc": 0.8123, "val_acc": 0.7901, "train_loss": 0.4567, "val_loss": 0.5678,
        },
    )


@pytest.fixture(scope="session")
def feature_sequence():
    """The factory of synthetic feature sequences (see ``_feature_sequence``)."""
    return _feature_sequence


@pytest.fixture(scope="session")
def make_spec():
    """The factory of four-class specs (see ``_make_spec``)."""
    return _make_spec


@pytest.fixture(scope="session")
def make_snapshot():
    """The factory of snapshots with a known number of errors (see ``_make_snapshot``)."""
    return _make_snapshot


@pytest.fixture(scope="session")
def sequence():
    """Eight frames of a learning model's features (300 + 120 points, 32-D)."""
    return _feature_sequence()
