"""The two pictures of ``latentlapse visualize``: the latent map and the class-separability matrix.

Drawn on Figures with the Agg canvas (no pyplot); returned as PNG bytes so the caller writes
them atomically into its new folder.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from latentlapse.xray.inspect_checkpoint import OVERLAP_K
from latentlapse.core.timelapse.render import METHOD_LABELS, draw_map, png_bytes
from latentlapse.core.timelapse.runfiles import ClassStyle


def map_png(xy: np.ndarray, y: np.ndarray, pred: np.ndarray, style: ClassStyle, title: tuple[str, str], method: str,
            n_total: int) -> bytes:
    """One square map panel, the class legend to its right and a caption below, in the classes'
    colours and markers as the run's frames draw them."""
    fig = Figure(figsize=(11.0, 9.0), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.3 / 11, 1.15 / 9, 6.9 / 11, 6.9 / 9))
    wrong = draw_map(ax, xy, y, style, pred=pred,
                     title=f"{len(y)} sources · {int(np.sum(pred == y))} right, {int(np.sum(pred != y))} wrong")
    _titles(fig, title)
    sample = "" if len(y) == n_total else f" (a stratified sample of {len(y)} of the {n_total} sources)"
    caption = (f"Each point is one source{sample}, placed by {METHOD_LABELS.get(method, method)} from the network's "
               f"penultimate-layer features; colour and marker give its true class. A red X marks one of the "
               f"{wrong} sources the model misclassifies. Distances on the map are only roughly faithful: "
               f"see separability.png for overlaps measured in feature space.")
    fig.text(0.03, 0.9 / 9, _wrap(caption, 150), fontsize=9.5, color="#444444", va="top")
    return png_bytes(fig)


def separability_png(overlap: np.ndarray, confusion: np.ndarray, names: list[str], title: tuple[str, str]) -> bytes:
    """The latent-space class overlap next to the row-normalised confusion matrix."""
    fig = Figure(figsize=(14.0, 7.4), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    left, right = fig.add_axes((0.11, 0.25, 0.34, 0.58)), fig.add_axes((0.6, 0.25, 0.34, 0.58))
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.full(confusion.shape, np.nan), where=rows > 0)
    _matrix(left, overlap, names, "Class overlap in latent space\n(leave-one-out 5-NN majority)",
            "nearest neighbours mostly of class", lambda i, j: f"{overlap[i, j]:.2f}")
    _matrix(right, share, names, "Confusion matrix of the model\n(share of each true class)", "predicted class",
            lambda i, j: f"{share[i, j]:.2f}\n({confusion[i, j]})")
    _titles(fig, title)
    caption = (f"Left: for a row class a and a column class b, the fraction of a's sources whose {OVERLAP_K} nearest other "
               f"sources in the network's feature space are mostly of class b. Rows sum to 1; the diagonal is the share "
               f"that sits among its own class (1 = perfectly separable); a large off-diagonal value means the two "
               f"classes overlap in the latent space. Right: what the classifier predicts for each true class. Errors "
               f"where the left matrix shows overlap come from the features; errors without overlap come from the "
               f"decision boundary.")
    fig.text(0.04, 0.11, _wrap(caption, 170), fontsize=9.5, color="#444444", va="top")
    return png_bytes(fig)


def _titles(fig: Figure, title: tuple[str, str]) -> None:
    """A bold headline and, under it, a smaller line saying which sources are shown."""
    heading, subtitle = title
    fig.suptitle(heading, fontsize=14, fontweight="bold", y=0.985)
    fig.text(0.5, 0.985 - 0.42 / fig.get_size_inches()[1], _wrap(subtitle, 130), ha="center", va="top",
             fontsize=10.5, color="#444444")


def _matrix(ax, values: np.ndarray, names: list[str], title: str, xlabel: str, cell) -> None:
    ax.imshow(np.nan_to_num(values), cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(names))
    short = [_short(n) for n in names]
    ax.set_xticks(ticks, short, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(ticks, short, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=12)
    for i in range(len(names)):
        for j in range(len(names)):
            text = cell(i, j) if np.isfinite(values[i, j]) else "–"
            ax.text(j, i, text, ha="center", va="center", fontsize=9 if len(names) <= 4 else 7,
                    color="white" if np.nan_to_num(values[i, j]) > 0.6 else "#222222")


def _short(name: str) -> str:
    return name if len(name) <= 12 else name[:11] + "…"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))
