"""The two-panel time-lapse frame: training sample by class, validation sample with its errors.

Drawn with ``matplotlib.figure.Figure`` on an Agg canvas — no pyplot, no global state — so it is
safe in a worker process or thread. Every frame uses the same figure size, the same fixed panel
positions and the same axis limits (``±DISPLAY_LIMIT``), so an animation of the frames does not
jump. Red is reserved for misclassified points (large red X markers), each drawn over a ring in
the colour of its true class, so a frame shows what the errors are, not only where.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Protocol, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from latentlapse.core import atomic
from latentlapse.core.timelapse.projection import DISPLAY_LIMIT, Layout
from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec

FIGSIZE = (16.0, 7.0)
DPI = 100
MISCLASSIFIED_COLOR = "#d62728"
METHOD_LABELS = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}

# Two square panels of 5.5 in, each with 2.3 in on its right for the legend (the longest class
# name, NS/HMXB/LMXB/NS_BIN, needs about 2 in). Fixed positions rather than tight_layout, so
# every frame of a run has identical geometry and the animation does not jitter.
_PANEL_SIZE_IN = 5.5
_PANEL_BOTTOM_IN = 0.35
_LEFT_PANEL_X_IN = 0.25
_RIGHT_PANEL_X_IN = 8.1
_FRAME_COLOR = "#b0b0b0"
_TRAIN_SIZE, _VAL_SIZE, _ERROR_SIZE = 14, 22, 110
_RING_SIZE, _RING_WIDTH = 230, 1.8  # the true-class ring around a red X: a little wider than the X


class MapStyle(Protocol):
    """What :func:`draw_map` needs to know about the classes (a TimelapseSpec qualifies)."""

    class_names: Sequence[str]
    colors: Sequence[str]
    markers: Sequence[str]


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """A Figure as PNG bytes in memory, for an atomic write or for embedding in a page."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_frame(
    path: str | os.PathLike,
    snapshot: Snapshot,
    spec: TimelapseSpec,
    layout: Layout,
    metrics: Mapping[str, float],
    *,
    method: str | None = None,
) -> np.ndarray:
    """Draw one frame and write it atomically as a PNG (1600 × 700 px); return its pixels.

    Parameters
    ----------
    path : the frame's file, e.g. ``run_001/epoch_010_acc0.6543.png``.
    snapshot, spec : the epoch's numbers and predictions; the run's classes and sample labels.
    layout : the frame's 2-D map in display coordinates.
    metrics : the frame's row of :func:`latent_metrics.frame_metrics` (for the corner text).
    method : the projection actually used, for the title (default ``spec.method``); pass it
        when UMAP fell back to t-SNE.

    Returns
    -------
    numpy.ndarray
        The (700, 1600, 3) uint8 RGB pixels written, so the worker can prepare the animation
        without decoding the PNG again.
    """
    fig = frame_figure(snapshot, spec, layout, metrics, method=method)
    with atomic.atomic_writer(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=DPI)
    return np.array(fig.canvas.buffer_rgba())[:, :, :3]


def frame_figure(
    snapshot: Snapshot,
    spec: TimelapseSpec,
    layout: Layout,
    metrics: Mapping[str, float],
    *,
    method: str | None = None,
) -> Figure:
    """The frame as a Figure (attached to an Agg canvas), for saving or further drawing."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    left, right = draw_panels(fig)
    epoch = snapshot.epoch
    scores = snapshot.scores
    draw_map(
        left, layout.train_xy, spec.train_labels, spec,
        title=f"Training Set - Epoch {epoch}\n{_acc_loss(scores, 'train')}",
    )
    draw_map(
        right, layout.val_xy, spec.val_labels, spec, pred=snapshot.val_pred,
        title=f"Validation Set - Epoch {epoch}\n{_acc_loss(scores, 'val')}",
    )
    _metrics_box(fig, right, metrics)
    name = METHOD_LABELS.get(method or spec.method, method or spec.method)
    fig.suptitle(
        f"Latent space ({name}) · epoch {epoch} / {spec.total_epochs}",
        x=0.5, y=0.975, fontsize=16, fontweight="bold",
    )
    return fig


def draw_panels(fig: Figure) -> tuple[Axes, Axes]:
    """Add the two map panels of a frame at their fixed positions; returns (left, right).

    The figure is expected to be ``FIGSIZE``; a comparison view can call this once per run on
    figures of its own, or place its own axes and call :func:`draw_map` directly.
    """
    width, height = fig.get_size_inches()
    panels = []
    for x_in in (_LEFT_PANEL_X_IN, _RIGHT_PANEL_X_IN):
        rect = (x_in / width, _PANEL_BOTTOM_IN / height, _PANEL_SIZE_IN / width, _PANEL_SIZE_IN / height)
        panels.append(fig.add_axes(rect))
    return panels[0], panels[1]


def draw_map(
    ax: Axes,
    xy: np.ndarray,
    labels: np.ndarray,
    style: MapStyle,
    pred: np.ndarray | None = None,
    title: str = "",
    legend: bool = True,
    count_in_legend: bool = True,
) -> int:
    """Draw one map panel: points by true class, misclassified ones as large red X's on true-class rings.

    Parameters
    ----------
    ax : the panel; its limits are set to ``±DISPLAY_LIMIT`` with equal aspect.
    xy : (n, 2) display coordinates.
    labels : (n,) true class indices into ``style``'s classes.
    style : class names, colours and markers (e.g. a TimelapseSpec).
    pred : (n,) predicted classes; when given, points with ``pred != labels`` are drawn as red
        X markers over a ring in their true class's colour, and counted in the legend.
    title : the panel title.
    legend : draw the class legend outside the panel, to its right.
    count_in_legend : give the number misclassified in the legend (off for a legend shared by
        panels with different counts: each panel's title gives its own).

    Returns
    -------
    int
        The number of misclassified points drawn (0 without ``pred``).
    """
    _style_axes(ax)
    labels = np.asarray(labels)
    wrong = np.zeros(len(labels), dtype=bool) if pred is None else np.asarray(pred) != labels
    size = _TRAIN_SIZE if pred is None else _VAL_SIZE
    for c in range(len(style.class_names)):
        points = xy[(labels == c) & ~wrong]
        if len(points):
            ax.scatter(
                points[:, 0], points[:, 1], s=size, c=style.colors[c], marker=style.markers[c],
                alpha=0.7, linewidths=0.3, edgecolors="white", zorder=2,
            )
    n_wrong = int(wrong.sum())
    if n_wrong:
        # the ring under each X says what the source really is (the X only that it was missed)
        rings = [style.colors[c] for c in labels[wrong]]
        ax.scatter(
            xy[wrong, 0], xy[wrong, 1], s=_RING_SIZE, facecolors="none", edgecolors=rings, marker="o",
            linewidths=_RING_WIDTH, zorder=3,
        )
        ax.scatter(
            xy[wrong, 0], xy[wrong, 1], s=_ERROR_SIZE, c=MISCLASSIFIED_COLOR, marker="X",
            linewidths=0.7, edgecolors="white", zorder=4,
        )
    if title:
        ax.set_title(title, fontsize=13, linespacing=1.5, pad=8)
    if legend:
        handles = _class_handles(style)
        texts = [h.get_label() for h in handles]
        if pred is not None:
            ring = Line2D([], [], linestyle="none", marker="o", markersize=13, markerfacecolor="none",
                          markeredgecolor="#7f7f7f", markeredgewidth=_RING_WIDTH)
            handles.append((ring, _handle("X", MISCLASSIFIED_COLOR, "", size=11)))
            texts.append(misclassified_label(n_wrong if count_in_legend else None))
        ax.legend(
            handles, texts, loc="upper left", bbox_to_anchor=(1.015, 1.0), borderaxespad=0.0,
            fontsize=10, frameon=False, handletextpad=0.4, labelspacing=0.7,
            handler_map={tuple: HandlerTuple(ndivide=1)},
        )
    return n_wrong


def misclassified_label(n_wrong: int | None) -> str:
    """The legend line of the red X's: their count (None: no count), and how to read the ring under each."""
    return f"misclassified{'' if n_wrong is None else f' ({n_wrong})'}\nring = true class"


def _style_axes(ax: Axes) -> None:
    """Fixed limits, equal aspect, no ticks (projection units mean nothing), a subtle frame."""
    limit = DISPLAY_LIMIT
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("#fbfbfb")
    for spine in ax.spines.values():
        spine.set_color(_FRAME_COLOR)
        spine.set_linewidth(0.8)


def _class_handles(style: MapStyle) -> list[Line2D]:
    """Legend entries for every class of the scheme (also those absent from this frame)."""
    return [
        _handle(marker, color, name)
        for name, color, marker in zip(style.class_names, style.colors, style.markers)
    ]


def _handle(marker: str, color: str, label: str, size: float = 8) -> Line2D:
    """A legend proxy: one marker, no line."""
    return Line2D(
        [], [], linestyle="none", marker=marker, markersize=size, markerfacecolor=color,
        markeredgecolor="white", markeredgewidth=0.5, label=label,
    )


def _metrics_box(fig: Figure, ax: Axes, metrics: Mapping[str, float]) -> None:
    """The frame's key numbers in a small box under the validation legend."""
    errors, total = metrics.get("val_errors", math.nan), metrics.get("val_total", math.nan)
    lines = [
        f"errors {_count(errors)}/{_count(total)} (full val)",
        f"silhouette {_number(metrics.get('silhouette'), 2)}",
        f"5-NN acc {_number(metrics.get('knn_acc'), 2)}",
    ]
    ax.text(
        1.015, 0.0, "\n".join(lines), transform=ax.transAxes, ha="left", va="bottom",
        fontsize=10, family="monospace", linespacing=1.6,
        bbox=dict(boxstyle="round,pad=0.5", facecolor="#f4f4f4", edgecolor=_FRAME_COLOR, linewidth=0.8),
    )


def _acc_loss(scores: Mapping[str, float], split: str) -> str:
    """``acc 0.8123 · loss 0.4567`` for ``split`` (``train`` or ``val``); dashes where missing."""
    return f"acc {_number(scores.get(f'{split}_acc'), 4)} · loss {_number(scores.get(f'{split}_loss'), 4)}"


def _number(value: float | None, digits: int) -> str:
    """A value with ``digits`` decimals, or an en dash when it is missing or not finite."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def _count(value: float | None) -> str:
    """An integer count, or an en dash when it is missing."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return str(int(value))
