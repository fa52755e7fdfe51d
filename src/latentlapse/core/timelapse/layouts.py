"""Each frame's 2-D map kept as numbers, so that runs can be compared and re-drawn later.

The worker writes ``layouts/epoch_XXX.npz`` next to every frame it draws: the display
coordinates of the training and validation sample, the projection's raw positions, the sources'
ids, their true classes, the validation predictions and (since the report's explorer) both samples'
class probabilities at that epoch, as float16, and the training predictions (the argmax of the
full-precision probabilities: float16 can tie a close call and pick another class). A frame is
a picture; a layout is what ``latentlapse compare`` needs to rotate one run's map onto
another's, and what ``--resume`` warm-starts the next frame from. About 40 kB per frame
(compressed; no pickles). Files written before probabilities or training predictions were kept
still load (those are None).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.core import atomic

LAYOUT_DIR = "layouts"
_NAME = re.compile(r"^epoch_(\d+)\.npz$")


@dataclass(frozen=True, eq=False)
class FrameLayout:
    """One frame's map: display coordinates, ids, true classes and validation predictions."""

    epoch: int
    method: str
    train_xy: np.ndarray
    val_xy: np.ndarray
    train_ids: np.ndarray
    val_ids: np.ndarray
    train_labels: np.ndarray
    val_labels: np.ndarray
    val_pred: np.ndarray
    train_raw: np.ndarray | None = None
    val_raw: np.ndarray | None = None
    train_proba: np.ndarray | None = None
    val_proba: np.ndarray | None = None
    train_pred: np.ndarray | None = None


def layout_path(run_dir: str | os.PathLike, epoch: int, total_epochs: int) -> Path:
    """``<run>/layouts/epoch_XXX.npz``, zero-padded like the frames so that names sort."""
    from latentlapse.core.timelapse.schedule import epoch_width

    return Path(run_dir) / LAYOUT_DIR / f"epoch_{epoch:0{epoch_width(total_epochs)}d}.npz"


def save_layout(run_dir: str | os.PathLike, snapshot, spec, layout) -> Path:
    """Write the map of one drawn frame atomically (called by the worker after rendering)."""
    path = layout_path(run_dir, snapshot.epoch, spec.total_epochs)
    path.parent.mkdir(exist_ok=True)
    atomic.remove_stale_temps(path.parent)  # what a worker killed mid-write left (only the worker writes here)
    state = layout.state
    optional = {key: np.asarray(value, dtype=np.float16) for key in ("train_proba", "val_proba")
                if (value := getattr(snapshot, key, None)) is not None}
    if (train_pred := getattr(snapshot, "train_pred", None)) is not None:
        optional["train_pred"] = np.asarray(train_pred, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        **optional,
        epoch=np.int64(snapshot.epoch),
        method=np.str_(state.method),
        train_xy=np.asarray(layout.train_xy, dtype=np.float64),
        val_xy=np.asarray(layout.val_xy, dtype=np.float64),
        train_raw=np.asarray(state.train_raw, dtype=np.float64),
        val_raw=np.asarray(state.val_raw, dtype=np.float64),
        train_ids=np.asarray(spec.train_ids).astype(str),
        val_ids=np.asarray(spec.val_ids).astype(str),
        train_labels=np.asarray(spec.train_labels, dtype=np.int64),
        val_labels=np.asarray(spec.val_labels, dtype=np.int64),
        val_pred=np.asarray(snapshot.val_pred, dtype=np.int64),
    )
    atomic.write_bytes(path, buffer.getvalue())
    return path


def load_layout(path: str | os.PathLike) -> FrameLayout:
    """Read a layout file written by :func:`save_layout` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        return FrameLayout(
            epoch=int(data["epoch"]),
            method=str(data["method"]),
            **{key: data[key] for key in ("train_xy", "val_xy", "train_ids", "val_ids",
                                          "train_labels", "val_labels", "val_pred")},
            **{key: data[key] for key in ("train_raw", "val_raw", "train_proba", "val_proba", "train_pred")
                if key in data.files},
        )


def last_projection(run_dir: str | os.PathLike):
    """The :class:`~latentlapse.core.timelapse.projection.Layout` of the run's last drawn frame, for
    a resumed run's next frame to warm-start from, align to and measure its displacement
    against; None when the run has drawn no frame yet. A file without raw positions still gives
    the alignment (its state is None, so the next frame is fitted afresh)."""
    from latentlapse.core.timelapse.projection import Layout, ProjectionState

    files = layout_files(run_dir)
    if not files:
        return None
    frame = load_layout(files[max(files)])
    state = None
    if frame.train_raw is not None and frame.val_raw is not None:
        state = ProjectionState(frame.method, frame.train_raw, frame.val_raw)
    return Layout(frame.train_xy, frame.val_xy, state)


def layout_files(run_dir: str | os.PathLike) -> dict[int, Path]:
    """The run's layout files by epoch (empty for a run drawn before layouts were kept)."""
    from latentlapse.core.timelapse.schedule import epoch_files

    return dict(epoch_files(Path(run_dir) / LAYOUT_DIR, _NAME))
