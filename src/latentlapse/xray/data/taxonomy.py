"""Fine source labels, their spellings in the wild, and the 2 / 4 / 8 class schemes.

One fixed colour and marker per class, used by every picture the tool draws. Red is kept out of
the palette on purpose: it marks misclassified points.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from latentlapse.core.errors import InputError
from latentlapse.core.timelapse.styles import safe_name  # noqa: F401 (one definition, in the core; also imported from here)

if TYPE_CHECKING:  # dataset.py imports this module
    from latentlapse.xray.data.dataset import Dataset

log = logging.getLogger(__name__)

FINE_LABELS = ("AGN", "CV", "HM-STAR", "HMXB", "LM-STAR", "LMXB", "NS", "NS_BIN", "YSO")

# Canonical key (upper case, separators removed) -> fine label.
_ALIASES = {re.sub(r"[\s_\-/]", "", label).upper(): label for label in FINE_LABELS}

UNLABELLED = ""


@dataclass(frozen=True)
class ClassScheme:
    """A mapping of fine labels onto ``n`` classes with display names, colours and markers."""

    n_classes: int
    names: tuple[str, ...]
    members: tuple[tuple[str, ...], ...]
    colors: tuple[str, ...]
    markers: tuple[str, ...]

    def class_of(self, fine_label: str) -> int:
        """Class index of a fine label, or -1 when the scheme leaves it out."""
        for index, members in enumerate(self.members):
            if fine_label in members:
                return index
        return -1

    def encode(self, fine_labels: np.ndarray) -> np.ndarray:
        """Class indices (int64) of canonical fine labels; -1 where the scheme leaves one out."""
        lookup = {label: self.class_of(label) for label in FINE_LABELS}
        return np.array([lookup.get(str(label), -1) for label in fine_labels], dtype=np.int64)


_COLORS = {
    "AGN": "#1f77b4",
    "HM/LM": "#ff7f0e",
    "YSO/CV": "#2ca02c",
    "NS/HMXB/LMXB/NS_BIN": "#9467bd",
    "CV": "#17becf",
    "HM-STAR": "#ff7f0e",
    "HMXB": "#9467bd",
    "LM-STAR": "#bcbd22",
    "LMXB": "#e377c2",
    "NS": "#8c564b",
    "YSO": "#2ca02c",
}

# The colour of each fine label, for pictures drawn per fine label (class-mean spectra).
# NS_BIN has no class of its own in any scheme, so it gets a grey of its own.
FINE_COLORS = {label: _COLORS.get(label, "#7f7f7f") for label in FINE_LABELS}

_SCHEMES = {
    2: (("AGN", ("AGN",)), ("HM/LM", ("HM-STAR", "LM-STAR"))),
    4: (
        ("AGN", ("AGN",)),
        ("HM/LM", ("HM-STAR", "LM-STAR")),
        ("YSO/CV", ("YSO", "CV")),
        ("NS/HMXB/LMXB/NS_BIN", ("NS", "HMXB", "LMXB", "NS_BIN")),
    ),
    8: (
        ("AGN", ("AGN",)),
        ("CV", ("CV",)),
        ("HM-STAR", ("HM-STAR",)),
        ("HMXB", ("HMXB",)),
        ("LM-STAR", ("LM-STAR",)),
        ("LMXB", ("LMXB",)),
        ("NS", ("NS", "NS_BIN")),
        ("YSO", ("YSO",)),
    ),
}

SCHEME_SIZES = tuple(sorted(_SCHEMES))

# What every run's pictures draw each class with, by scheme size and class index (edit these to
# change them): CLASS_COLORS[4][0] is AGN's colour in the 4-class scheme, CLASS_MARKERS[i] the
# matplotlib marker of class i.
CLASS_COLORS = {
    n: {i: _COLORS[name] for i, (name, _) in enumerate(spec)} for n, spec in _SCHEMES.items()
}
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "h", "*")


def scheme(n_classes: int) -> ClassScheme:
    """The class scheme with ``n_classes`` classes (2, 4 or 8)."""
    if n_classes not in _SCHEMES:
        raise ValueError(
            f"no class scheme with {n_classes} classes; choose one of "
            f"{', '.join(map(str, SCHEME_SIZES))}"
        )
    spec = _SCHEMES[n_classes]
    return ClassScheme(
        n_classes=n_classes,
        names=tuple(name for name, _ in spec),
        members=tuple(members for _, members in spec),
        colors=tuple(CLASS_COLORS[n_classes][i] for i in range(len(spec))),
        markers=CLASS_MARKERS[: len(spec)],
    )


def canonical_label(raw: str) -> str | None:
    """The fine label for a spelling seen in the wild (``hmstar``, `` NS-BIN ``), else None.

    Case, surrounding whitespace and the separators ``-``, ``_``, ``/`` and spaces are ignored.
    """
    key = re.sub(r"[\s_\-/]", "", str(raw)).upper()
    return _ALIASES.get(key)


# How a table reader's note says it found no label column (read by apply_scheme's refusal).
NO_LABEL_COLUMN = "no label column"


def apply_scheme(
    dataset: "Dataset", n_classes: int, notes: list[str] | None = None
) -> tuple["Dataset", np.ndarray]:
    """The labelled rows whose fine label belongs to the ``n_classes`` scheme, and their classes.

    Returns the kept rows and their int64 class indices. Data that cannot train a classifier
    is refused with a one-line :class:`InputError`: no labelled source at all, fewer than two
    classes left, or a class with a single source (it cannot be split into training and
    validation). Fine labels the scheme leaves out, and those it counts under another fine
    label's name (NS_BIN as NS in the 8-class scheme), are named in a line each: appended to
    ``notes`` when given (a run logs them after its folder line), else logged at info level.
    """
    chosen = scheme(n_classes)
    source = dataset.source or "the data"
    labelled = dataset.is_labelled
    if not labelled.any() and dataset.label_hint:
        which = ("its spectrum carries no label" if len(dataset) == 1
                 else f"none of its {len(dataset)} spectra carries a label")
        raise InputError(f"{source}: no labelled sources; {which}; {dataset.label_hint}, or use 'latentlapse "
                         f"predict' for unlabelled data")
    if not labelled.any():
        if any(note.startswith(NO_LABEL_COLUMN) for note in dataset.notes):
            raise InputError(
                f"{source}: no labelled sources: {NO_LABEL_COLUMN} was found (True_Class, label or class); name "
                f"yours with --label_column, or use 'latentlapse predict' for unlabelled data"
            )
        raise InputError(
            f"{source}: no labelled sources; the file has {len(dataset)} rows but none carries a "
            f"label; add labels or use 'latentlapse predict' for unlabelled data"
        )
    codes = chosen.encode(dataset.labels)
    lines = _left_out(dataset.labels[labelled & (codes < 0)], n_classes, source)
    lines += _folded(dataset.labels[codes >= 0], chosen, source)
    if notes is None:
        for line in lines:
            log.info(line)
    else:
        notes.extend(lines)
    keep = np.flatnonzero(codes >= 0)
    sizes = np.bincount(codes[keep], minlength=n_classes)
    _check_classes(dataset, chosen, codes, sizes, source)
    return dataset.subset(keep), codes[keep]


def _left_out(labels: np.ndarray, n_classes: int, source: str) -> list[str]:
    """The line naming the fine labels a scheme leaves out, most frequent first (none: [])."""
    if not labels.size:
        return []
    values, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    listed = ", ".join(f"{values[i]} ({counts[i]})" for i in order)
    return [f"--classes {n_classes} leaves out {listed} of the labelled sources in {source}"]


def _folded(labels: np.ndarray, chosen: ClassScheme, source: str) -> list[str]:
    """A line for each fine label counted under another fine label's name (NS_BIN as NS in the
    8-class scheme), which the class name alone would hide; coarse names (NS/HMXB/LMXB/NS_BIN,
    HM/LM) say what they hold."""
    lines = []
    for name, members in zip(chosen.names, chosen.members):
        if name not in FINE_LABELS:
            continue
        for member in members:
            count = int(np.sum(labels == member)) if member != name else 0
            if count:
                lines.append(f"--classes {chosen.n_classes} counts {member} ({count}) as {name}: the scheme has no "
                             f"{member} class, so these sources are trained, scored and predicted as {name}")
    return lines


def _check_classes(
    dataset: "Dataset", chosen: ClassScheme, codes: np.ndarray, sizes: np.ndarray, source: str
) -> None:
    """At least two classes, each with at least two sources; an empty class is only warned about."""
    n = chosen.n_classes
    present = np.flatnonzero(sizes)
    if present.size < 2:
        kept = ", ".join(f"{chosen.names[i]}: {sizes[i]} source{'s' if sizes[i] > 1 else ''}" for i in present)
        absent = [chosen.names[i] for i in range(n) if sizes[i] == 0]
        others = [m for m in SCHEME_SIZES if m != n and _n_present(scheme(m), dataset.labels) >= 2]
        alternative = f", or use --classes {others[0]}" if others else ""
        left = f"only 1 class ({kept})" if kept else "no class"
        raise InputError(
            f"--classes {n} leaves {left} in {source}; a classifier needs at least two: add "
            f"labelled sources of {', '.join(absent)}{alternative}"
        )
    single = present[sizes[present] < 2]
    if single.size:
        index = int(single[0])
        coarser = [m for m in SCHEME_SIZES if m < n]
        fix = f"add sources or use --classes {coarser[-1]}" if coarser else "add sources"
        raise InputError(
            f"class {chosen.names[index]} has 1 source ({dataset.ids[codes == index][0]}) in {source}; "
            f"a class needs at least 2 to be split into training and validation; {fix}"
        )
    for index in np.flatnonzero(sizes == 0):
        log.warning("class %s has no sources in %s; the model will never learn it", chosen.names[index], source)


def _n_present(chosen: ClassScheme, labels: np.ndarray) -> int:
    """How many of a scheme's classes have at least one source among ``labels``."""
    codes = chosen.encode(labels)
    return int(np.unique(codes[codes >= 0]).size)
