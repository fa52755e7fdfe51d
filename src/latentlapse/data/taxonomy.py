"""Fine source labels, their spellings in the wild, and the 2 / 4 / 8 class schemes.

One fixed colour and marker per class, used by every picture the tool draws. Red is kept out of
the palette on purpose: it marks misclassified points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

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

    @property
    def short_names(self) -> tuple[str, ...]:
        """File- and column-safe versions of the display names (``HM/LM`` -> ``HM_LM``)."""
        return tuple(re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") for name in self.names)


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
_MARKERS = ("o", "s", "^", "D", "v", "P", "h", "*")

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

# The colour of each class name in every scheme, e.g. CLASS_COLORS[4][0] is AGN's colour.
CLASS_COLORS = {
    n: {i: _COLORS[name] for i, (name, _) in enumerate(spec)} for n, spec in _SCHEMES.items()
}


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
        colors=tuple(_COLORS[name] for name, _ in spec),
        markers=_MARKERS[: len(spec)],
    )


def canonical_label(raw: str) -> str | None:
    """The fine label for a spelling seen in the wild (``hmstar``, `` NS-BIN ``), else None.

    Case, surrounding whitespace and the separators ``-``, ``_``, ``/`` and spaces are ignored.
    """
    key = re.sub(r"[\s_\-/]", "", str(raw)).upper()
    return _ALIASES.get(key)
