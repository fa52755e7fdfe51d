"""Colours and markers for any number of classes (2-20 distinct), never red: red marks errors.

The palette is matplotlib's tab20 with its two reds replaced by two more distinguishable hues,
so up to 20 classes get 20 different colours; markers cycle over shapes that are not crosses
(a red X marks a misclassified point in every frame).
"""

from __future__ import annotations

import re
from typing import Sequence

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b",
    "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#9edae5", "#dbdb8d", "#f7b6d2",
    "#c49c94", "#c7c7c7", "#393b79", "#637939",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "h", "*", "<", ">", "p", "d", "H", "8")
MAX_CLASSES = len(PALETTE)


def safe_name(name: str) -> str:
    """A file- and column-safe version of a class name (``HM/LM`` -> ``HM_LM``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def default_style(n_classes: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(colours, markers) for ``n_classes`` classes: distinct colours, markers in turn."""
    if not 1 <= n_classes <= MAX_CLASSES:
        raise ValueError(f"{n_classes} classes: the time-lapse draws at most {MAX_CLASSES} classes with distinct "
                         f"colours")
    return PALETTE[:n_classes], tuple(MARKERS[i % len(MARKERS)] for i in range(n_classes))


def check_style(class_names: Sequence[str], colors: Sequence[str], markers: Sequence[str]) -> None:
    """ValueError unless there is one colour and marker per class and no class is drawn red."""
    n = len(class_names)
    if len(colors) != n or len(markers) != n:
        raise ValueError(f"{n} class names but {len(colors)} colours and {len(markers)} markers; give one of each per class")
    for name, color in zip(class_names, colors):
        if _is_red(color):
            raise ValueError(f"class {name!r}: colour {color} is red, which marks misclassified points; choose another")


def _is_red(color: str) -> bool:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return r > 0.6 and g < 0.35 and b < 0.35
