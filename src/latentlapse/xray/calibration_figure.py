"""``calibration.png``: the reliability diagram of raw and calibrated probabilities, and (for
``evaluate``) the confusion matrix beside it. Drawn on an Agg Figure, returned as PNG bytes so
the caller writes it atomically."""

from __future__ import annotations

import textwrap

import numpy as np

from latentlapse.xray import calibration


def reliability_png(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray | None, title: str,
                    confusion: np.ndarray | None = None, class_names: list[str] | None = None,
                    calibrated_label: str = "calibrated", confusion_point: str | None = None) -> bytes:
    """:func:`reliability_figure` as PNG bytes."""
    from latentlapse.core.timelapse.render import png_bytes

    return png_bytes(reliability_figure(y, raw, calibrated, title, confusion, class_names, calibrated_label,
                                        confusion_point))


def reliability_figure(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray | None, title: str,
                       confusion: np.ndarray | None = None, class_names: list[str] | None = None,
                       calibrated_label: str = "calibrated", confusion_point: str | None = None):
    """Accuracy against confidence per 15-bin confidence bin, with the ECE in the legend; the
    bar chart under it shows how many sources fall in each bin. ``calibrated_label`` names the
    calibrated curve (``evaluate``: at which priors), ``confusion_point`` the operating point the
    confusion matrix is at (it can differ from the curve's), under the matrix's title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from latentlapse.xray.inspect_figures import _matrix

    wide = confusion is not None
    fig = Figure(figsize=(13.0 if wide else 7.0, 7.0), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    width = 0.5 / 13 * 7 if wide else 0.78
    left = 0.1 if not wide else 0.06
    ax = fig.add_axes((left, 0.34, width, 0.56))
    counts_ax = fig.add_axes((left, 0.1, width, 0.17), sharex=ax)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect calibration")
    edges = np.linspace(0, 1, calibration.N_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for name, proba, color, shift in (("raw", raw, "#d62728", -0.012),
                                      (calibrated_label, calibrated, "#1f77b4", 0.012)):
        if proba is None:
            continue
        bins = calibration.reliability(proba, y)
        used = bins["count"] > 0
        ax.plot(bins["confidence"][used], bins["accuracy"][used], marker="o", color=color,
                label=f"{name}: ECE {calibration.ece(proba, y):.3f}")
        counts_ax.bar(centres + shift, bins["count"], width=0.024, color=color, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy in the bin")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", fontsize=9)
    ax.tick_params(labelbottom=False)
    counts_ax.set_xlabel(f"confidence (top-label probability, {calibration.N_BINS} bins)")
    counts_ax.set_ylabel("sources")
    if wide:
        matrix_ax = fig.add_axes((0.6, 0.2, 0.34, 0.65))
        rows = confusion.sum(axis=1, keepdims=True)
        share = np.divide(confusion, rows, out=np.full(confusion.shape, np.nan), where=rows > 0)
        matrix_title = "Confusion matrix (share of each true class)" + (
            "\n" + textwrap.fill(confusion_point, 60) if confusion_point else "")
        _matrix(matrix_ax, share, list(class_names), matrix_title, "predicted class",
                lambda i, j: f"{share[i, j]:.2f}\n({confusion[i, j]})")
    return fig
