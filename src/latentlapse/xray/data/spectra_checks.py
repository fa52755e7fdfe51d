"""What every spectra reader shares: where a row sits, labels, finiteness and sums, ids, bins.

The format modules (:mod:`.textformat`, :mod:`.tables`, :mod:`.pha`, :mod:`.catalog`) and the
dispatcher (:mod:`.readers`) all import this module, and it imports none of them: the checks
sit below both, so there is no import circle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.xray.data import grid
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.taxonomy import FINE_LABELS, UNLABELLED, canonical_label
from latentlapse.core.errors import InputError, MissingExtraError

log = logging.getLogger(__name__)

# How a PHA file is labelled (pha._net_spectrum reads CLASS, else LABEL), for the messages asking for labels.
PHA_LABEL_HINT = "set the CLASS keyword of each PHA file's SPECTRUM extension to its class (AGN, YSO, ...)"

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
PHA_SUFFIXES = (".pha", ".pi", ".ftz", ".pha.gz", ".pi.gz")
VOTABLE_SUFFIXES = (".xml", ".vot", ".votable")

# A normalised spectrum written with 9 significant digits sums to 1 within ~1e-6.
_SUM_TOLERANCE = 1e-4
_SHOWN = 5  # how many ids / line numbers a message lists before "..."


@dataclass(frozen=True)
class Rows:
    """Where each data row sits in its file: ``word`` is "line" (text) or "row" (tables)."""

    word: str
    numbers: np.ndarray

    def at(self, index: int) -> str:
        """``"line 17"`` for the row at ``index``."""
        return f"{self.word} {int(self.numbers[index])}"

    def several(self, indices: Sequence[int]) -> str:
        """``"lines 3, 8"`` (at most a few, then "...") for the rows at ``indices``."""
        shown = ", ".join(str(int(self.numbers[i])) for i in indices[:_SHOWN])
        more = ", ..." if len(indices) > _SHOWN else ""
        plural = "s" if len(indices) > 1 else ""
        return f"{self.word}{plural} {shown}{more}"


def suffix_of(path: Path) -> str:
    """Lower-case suffix, keeping ``.fits.gz``-style double suffixes together."""
    name = path.name.lower()
    for double in (".fits.gz", ".fit.gz", ".fts.gz", ".pha.gz", ".pi.gz"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def is_number(token: str) -> bool:
    """Whether a text field reads as a number (``float`` takes it): a value, not a name or label."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def is_spectrum_hdu(hdu) -> bool:
    """An OGIP spectrum extension: EXTNAME or HDUCLAS1 is SPECTRUM."""
    header = hdu.header
    return "SPECTRUM" in (str(header.get("EXTNAME", "")).upper(), str(header.get("HDUCLAS1", "")).upper())


def require_astropy(purpose: str = "reading FITS/VOTable/ECSV files"):
    """``astropy.io.fits``, or a :class:`MissingExtraError` naming the pip extra."""
    try:
        from astropy.io import fits
    except ImportError:
        raise MissingExtraError("astropy", "fits", purpose) from None
    return fits


class UnknownLabels:
    """Labels of no known class, read as unlabelled where a command can do without them (predict
    classifies those sources, evaluate skips them): how many, and the first, for one note about
    the whole file ``source`` that ends in what became of them (``consequence``)."""

    def __init__(self, source: str | Path,
                 consequence: str = "classified as unlabelled: predict needs no labels, and writes no true class for them"):
        self.source = Path(source)
        self.consequence = consequence
        self.count = 0
        self.first = ""

    def add(self, path: Path, rows: Rows, unknown: dict[str, list[int]]) -> None:
        """Count the rows of ``unknown`` (label -> row indices) and keep the first one seen."""
        index, token = min((where[0], token) for token, where in unknown.items())
        place = rows.at(index) if Path(path) == self.source else f"{Path(path).name}, {rows.at(index)}"
        self.first = self.first or f"'{token}' at {place}"
        self.count += sum(len(where) for where in unknown.values())

    def merge(self, others: "Sequence[UnknownLabels]") -> None:
        """Add the counts of other slices of the file, which come after this one."""
        for other in others:
            self.first = self.first or other.first
            self.count += other.count

    def notes(self) -> list[str]:
        """The one note for the file, or none when every label was known."""
        if not self.count:
            return []
        return [f"{self.count} source{'s' if self.count > 1 else ''} with a label of no known class (the first: "
                f"{self.first}) {self.consequence}"]


def canonical_labels(path: Path, raw: Sequence[str], rows: Rows,
                     unknown_labels: UnknownLabels | None = None) -> np.ndarray:
    """Canonical fine labels of raw strings (empty = unlabelled); unknown ones are all listed,
    or, given ``unknown_labels``, counted there and read as unlabelled."""
    labels = np.full(len(raw), UNLABELLED, dtype=object)
    unknown: dict[str, list[int]] = {}
    for index, token in enumerate(raw):
        token = str(token).strip()
        if not token:
            continue
        label = canonical_label(token)
        if label is None:
            unknown.setdefault(token, []).append(index)
        else:
            labels[index] = label
    if unknown and unknown_labels is not None:
        unknown_labels.add(path, rows, unknown)
    elif unknown:
        listed = ", ".join(f"'{token}' ({rows.several(where)})" for token, where in unknown.items())
        raise InputError(
            f"{path}: unknown labels {listed}; known labels: {', '.join(FINE_LABELS)} "
            f"(spellings like HMSTAR, NS-BIN and any case are accepted)"
        )
    return labels.astype(str)


def spectra_dataset(
    path: Path,
    values: np.ndarray,
    counts: np.ndarray,
    ids: np.ndarray,
    labels: np.ndarray,
    rows: Rows,
    value_columns: Sequence[str],
    *,
    feature_names: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> Dataset:
    """Check and package spectra: finite, not all zero, each row normalised to sum 1.

    ``value_columns[j]`` says where value ``j`` of a row sits in the file (``column 40``), for
    messages. Rows that do not sum to 1 are divided by their sum, and that is noted.
    """
    values = np.asarray(values, dtype=np.float64)
    _check_finite(path, values, counts, ids, rows, value_columns)
    with np.errstate(over="ignore"):  # a sum too large for a float is inf, refused below
        sums = values.sum(axis=1)
    _check_sums(path, values, sums, ids, rows)
    off = np.abs(sums - 1.0) > _SUM_TOLERANCE
    notes = list(notes)
    if off.any():
        values[off] /= sums[off, None]
        i = int(np.flatnonzero(off)[0])
        notes.append(f"{int(off.sum())} of {len(values)} spectra did not sum to 1 and were divided by their sum "
                     f"(the first: {rows.at(i)} ({ids[i]}), which summed to {sums[i]:.6g})")
    k = values.shape[1]
    on_grid = k == grid.N_BINS
    if not on_grid:
        notes.append(f"{k} bins per spectrum, not the standard {grid.N_BINS}-bin 0.5-10 keV grid: no energy axis")
    warn_duplicate_ids(path, ids)
    return Dataset(
        X=values.astype(np.float32),
        labels=np.asarray(labels, dtype=str),
        ids=np.asarray(ids, dtype=str),
        counts=np.asarray(counts, dtype=np.float64),
        kind="spectra",
        energy=grid.centres() if on_grid else None,
        feature_names=tuple(feature_names) if feature_names is not None else bin_names(k),
        source=str(path),
        notes=tuple(notes),
    )


def _check_finite(path, values, counts, ids, rows, value_columns) -> None:
    """NaN or inf in a spectrum, or net counts that are not a positive number, are refused at
    the first row where they occur."""
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad_rows.size:
        i = int(bad_rows[0])
        j = int(np.flatnonzero(~np.isfinite(values[i]))[0])
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): spectrum contains NaN/inf at {value_columns[j]}; "
            f"remove the row or replace the value"
        )
    bad_counts = np.flatnonzero(~(counts > 0))
    if bad_counts.size:
        i = int(bad_counts[0])
        why = "" if not np.isfinite(counts[i]) else (
            ", not positive: the spectrum is the net spectrum divided by them, and augmentation draws its "
            "Poisson copies at that count level"
        )
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): net_counts is {counts[i]:g}{why}; "
            f"give the number of net counts of the spectrum, or remove the row"
        )


def _check_sums(path, values, sums, ids, rows) -> None:
    """All-zero spectra carry no information; a sum that is not positive, or too large for a
    float (inf), cannot be normalised."""
    zero = np.flatnonzero(~values.any(axis=1))
    if zero.size:
        i = int(zero[0])
        raise InputError(f"{path}: {rows.at(i)} ({ids[i]}): all-zero spectrum; remove the row")
    negative = np.flatnonzero(~(sums > 0) | np.isinf(sums))
    if negative.size:
        i = int(negative[0])
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): spectrum sums to {sums[i]:.6g}, so it cannot be "
            f"normalised; check its background subtraction and its values, or remove the row"
        )


def warn_duplicate_ids(path: Path, ids: np.ndarray) -> None:
    """Log one warning naming how many ids repeat and the first few; the rows are kept."""
    unique, counts = np.unique(np.asarray(ids, dtype=str), return_counts=True)
    warn_repeated_ids(path, list(unique[counts > 1]))


def warn_repeated_ids(path: Path, repeated: Sequence[str]) -> None:
    """The warning of :func:`warn_duplicate_ids` for ids found repeated (a streamed reader counts them)."""
    if len(repeated):
        shown = ", ".join(repeated[:_SHOWN]) + (", ..." if len(repeated) > _SHOWN else "")
        log.warning(
            "%s: %d source ids appear more than once (%s); the rows are kept as separate sources",
            path,
            len(repeated),
            shown,
        )


def bin_names(k: int) -> tuple[str, ...]:
    """Column names of spectral bins: ``E0.5125`` (bin centre in keV) on the standard grid, else v1..vK."""
    if k == grid.N_BINS:
        return tuple(f"E{centre:.4f}" for centre in grid.centres())
    return tuple(f"v{j + 1}" for j in range(k))
