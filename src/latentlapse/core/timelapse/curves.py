"""``metrics.png``: a run's learning curves and latent-space numbers against epoch, in one picture.

Top row (every run, from ``history.csv``): accuracy and loss for training and validation, and
the validation recall of each class. Bottom row (visualised runs, from ``latent_metrics.csv``):
cluster spread relative to the distances between classes, class separation (silhouette, 5-NN
accuracy), and the validation error count — the guide's three signs of progress. Visualised
epochs are marked with light vertical lines, the best epoch with a dashed green one.

Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot), written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from latentlapse.core import atomic
from latentlapse.core.timelapse.styles import safe_name
from latentlapse.core.errors import InputError
from latentlapse.core.timelapse.diagnose import SILHOUETTE_FORMED
from latentlapse.core.timelapse.render import png_bytes
from latentlapse.core.timelapse.runfiles import RunFiles, column, load_run

METRICS_PNG = "metrics.png"
DPI = 100
TRAIN_COLOR, VAL_COLOR, BEST_COLOR, FRAME_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d0d0d0"


def plot_curves(run_dir: str | os.PathLike) -> Path:
    """Write ``metrics.png`` into the run folder and return its path.

    Raises InputError when the folder is not a run or has no ``history.csv`` yet.
    """
    return save_curves(load_run(run_dir))


def save_curves(run: RunFiles) -> Path:
    """Write ``metrics.png`` of an already loaded run and return its path."""
    path = run.run_dir / METRICS_PNG
    atomic.write_bytes(path, curves_png(run))
    return path


def curves_png(run: RunFiles) -> bytes:
    """The picture as PNG bytes (the report embeds these when ``metrics.png`` is absent)."""
    if not run.history:
        raise InputError(f"{run.run_dir}: no history.csv yet; curves need at least one finished epoch")
    return png_bytes(curves_figure(run), DPI)


def best_epoch(run: RunFiles) -> int | None:
    """The epoch of best.pt: from final_metrics.json, else the highest validation balanced accuracy."""
    if run.final.get("best_epoch"):
        return int(run.final["best_epoch"])
    balanced = column(run.history, "val_balanced_acc")
    if not np.isfinite(balanced).any():
        return None
    return int(column(run.history, "epoch")[int(np.nanargmax(balanced))])


def curves_figure(run: RunFiles) -> Figure:
    """The 1×3 (history only) or 2×3 (with latent metrics) figure of a run."""
    rows = 2 if run.metrics else 1
    fig = Figure(figsize=(16.0, 4.6 * rows + 0.6), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    history, frames = run.history, run.frame_epochs
    epochs = column(history, "epoch")
    best = best_epoch(run)
    style = run.style
    _accuracy(axes[0][0], history, epochs)
    _loss(axes[0][1], history, epochs, loss_name(run))
    _recall(axes[0][2], history, epochs, style)
    if rows == 2:
        _spread(axes[1][0], run.metrics, style)
        _separation(axes[1][1], run.metrics, style)
        _errors(axes[1][2], run.metrics)
    last = max(epochs.max(), max(frames, default=1))
    for ax in (a for row in axes for a in row):
        for epoch in frames:
            ax.axvline(epoch, color=FRAME_COLOR, linewidth=0.8, zorder=0)
        if frames:  # a tick on the top edge at each visualised epoch
            ax.plot(frames, [1.0] * len(frames), "v", color="#888888", markersize=5, clip_on=False,
                    transform=ax.get_xaxis_transform(), zorder=4)
        if best:
            ax.axvline(best, color=BEST_COLOR, linestyle="--", linewidth=1.2, zorder=1)
        ax.set_xlim(0.5, last + 0.5)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.25)
    axes[0][0].plot([], [], color=BEST_COLOR, linestyle="--", label=f"best epoch ({best})" if best else "best epoch")
    if frames:
        axes[0][0].plot([], [], "v", color="#888888", label="visualised epochs (frames)")
    axes[0][0].legend(fontsize=9, loc="lower right")
    title = f"{run.name} · {len(history)} of {run.total_epochs} epochs"
    if best:
        title += f" · best epoch {best}"
    fig.suptitle(title, fontsize=14, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _accuracy(ax: Axes, history, epochs) -> None:
    for key, label, color, dash in (("train_acc", "training", TRAIN_COLOR, "-"), ("val_acc", "validation", VAL_COLOR, "-"),
                                    ("train_balanced_acc", "training, balanced", TRAIN_COLOR, ":"),
                                    ("val_balanced_acc", "validation, balanced", VAL_COLOR, "--")):
        values = column(history, key)
        if np.isfinite(values).any():
            ax.plot(epochs, values, dash, color=color, label=label, linewidth=1.6)
    ax.set_title("Accuracy")
    ax.set_ylim(_low(history, ("train_acc", "val_acc", "val_balanced_acc", "train_balanced_acc")), 1.0)


def loss_name(run: RunFiles) -> str | None:
    """The loss the run trained with, as its record says: a ``latentlapse train`` run's config
    holds ``focal_gamma`` (0 is cross-entropy); a loop filmed by ``Timelapse`` records none."""
    gamma = None if run.from_library else run.config.get("focal_gamma")
    if gamma is None:
        return None
    return f"focal, gamma {gamma:g}" if gamma > 0 else "cross-entropy"


def _loss(ax: Axes, history, epochs, name: str | None) -> None:
    train_key = "train_eval_loss" if np.isfinite(column(history, "train_eval_loss")).any() else "train_loss"
    ax.plot(epochs, column(history, train_key), color=TRAIN_COLOR, label="training", linewidth=1.6)
    ax.plot(epochs, column(history, "val_loss"), color=VAL_COLOR, label="validation", linewidth=1.6)
    if train_key == "train_eval_loss":
        ax.plot(epochs, column(history, "train_loss"), ":", color=TRAIN_COLOR, linewidth=1.0,
                label="training batches (augmented)")
    ax.set_title(f"Loss ({name})" if name else "Loss")
    ax.legend(fontsize=9)


def _recall(ax: Axes, history, epochs, style) -> None:
    for name, color in zip(style.class_names, style.colors):
        ax.plot(epochs, column(history, f"val_recall_{safe_name(name)}"), color=color, label=name, linewidth=1.4)
    ax.set_title("Validation recall per class")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="lower right")


def _spread(ax: Axes, metrics, style) -> None:
    frames = column(metrics, "epoch")
    ratio = column(metrics, "spread_ratio")
    mean_distance = column(metrics, "spread_mean") / ratio
    for name, color in zip(style.class_names, style.colors):
        ax.plot(frames, column(metrics, f"spread_{safe_name(name)}") / mean_distance, "o-", color=color,
                markersize=3, linewidth=1.0, alpha=0.8, label=name)
    ax.plot(frames, ratio, "o-", color="black", linewidth=2.2, markersize=4, label="mean")
    ax.set_title("Cluster spread ÷ distance between classes\n(lower = tighter clusters)", fontsize=11)
    ax.legend(fontsize=8)


def _separation(ax: Axes, metrics, style) -> None:
    frames = column(metrics, "epoch")
    names = [safe_name(n) for n in style.class_names]
    own = np.array([column(metrics, f"knn_to_{n}__{n}") for n in names])
    balanced = np.array([np.nanmean(col) if np.isfinite(col).any() else math.nan for col in own.T])
    ax.plot(frames, column(metrics, "silhouette"), "o-", color="#444444", label="silhouette", linewidth=1.6, markersize=4)
    ax.plot(frames, column(metrics, "knn_acc"), "s-", color="#8c564b", label="5-NN accuracy", linewidth=1.4, markersize=4)
    ax.plot(frames, balanced, "s--", color="#8c564b", label="5-NN balanced accuracy", linewidth=1.4, markersize=4)
    ax.axhline(SILHOUETTE_FORMED, color="#444444", linestyle=":", linewidth=1.0)
    ax.text(0.99, SILHOUETTE_FORMED, "structure ", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
            fontsize=8, color="#444444")
    ax.set_title("Class separation in feature space\n(higher = classes further apart)", fontsize=11)
    ax.set_ylim(min(-0.05, float(np.nanmin(column(metrics, "silhouette"), initial=0.0)) - 0.05), 1.02)
    ax.legend(fontsize=8, loc="center right")


def _errors(ax: Axes, metrics) -> None:
    frames = column(metrics, "epoch")
    errors = column(metrics, "val_errors")
    ax.plot(frames, errors, "o-", color="#d62728", linewidth=1.8, markersize=5)
    total = column(metrics, "val_total")
    suffix = f" of {int(np.nanmax(total))}" if np.isfinite(total).any() else ""
    ax.set_title(f"Validation errors (red X's){suffix}\n(full validation split)", fontsize=11)
    ax.set_ylim(0, max(1.0, float(np.nanmax(errors, initial=0.0))) * 1.1)


def _low(history, keys) -> float:
    """A lower y-limit that shows every curve: 0.1 below the lowest value, floored at 0."""
    values = np.concatenate([column(history, k) for k in keys])
    finite = values[np.isfinite(values)]
    return max(0.0, math.floor((finite.min() - 0.05) * 10) / 10) if finite.size else 0.0
