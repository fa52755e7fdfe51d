"""A picture of a spectral data set: the mean normalised spectrum of each fine label.

Drawn with matplotlib's object API (``Figure`` + the Agg canvas), so no pyplot, no backend
switch and no global state; the PNG goes through the atomic writer.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from latentlapse.core import atomic
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.taxonomy import FINE_COLORS, FINE_LABELS

# Class means fall to ~1e-3 per bin at 5 keV; below this floor a log axis only shows noise.
_Y_FLOOR = 1e-4


def class_means(dataset: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per fine label present: (mean spectrum, standard error of the mean, number of sources)."""
    means = {}
    for label in FINE_LABELS:
        rows = dataset.X[dataset.labels == label].astype(np.float64)
        if len(rows):
            error = rows.std(axis=0) / np.sqrt(len(rows))
            means[label] = (rows.mean(axis=0), error, len(rows))
    return means


def plot_class_means(dataset: Dataset, path: str | os.PathLike) -> None:
    """Draw each labelled class's mean spectrum with a ±1σ/√n band to a PNG at ``path``.

    Log energy axis over 0.5–10 keV with ticks at round energies; log counts axis, so the
    Fe-L bump near 0.8 keV and the Fe K lines at 6.4–6.97 keV are both visible.
    """
    figure = Figure(figsize=(9, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    energy = dataset.energy
    for label, (mean, error, count) in class_means(dataset).items():
        colour = FINE_COLORS[label]
        axes.fill_between(energy, np.maximum(mean - error, _Y_FLOOR), np.maximum(mean + error, _Y_FLOOR),
                          color=colour, alpha=0.25, linewidth=0)
        axes.plot(energy, np.where(mean > 0, mean, np.nan), color=colour, linewidth=1.2,
                  label=f"{label} (n={count})")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(energy[0], energy[-1])
    axes.set_ylim(bottom=_Y_FLOOR)
    ticks = [0.5, 0.7, 1, 2, 3, 5, 7, 10]
    axes.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axes.set_xlabel("energy (keV)")
    axes.set_ylabel("mean normalised net counts per 25 eV bin")
    axes.set_title(f"Class-mean spectra: {dataset.source}")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small", ncols=3)
    with atomic.atomic_writer(path, "wb") as handle:
        figure.savefig(handle, format="png")
