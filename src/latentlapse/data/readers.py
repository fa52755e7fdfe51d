"""Read the files astronomers bring into one clean :class:`Dataset`, refusing bad input.

``load_dataset`` picks a reader by suffix and, where the suffix says nothing, by content: the
whitespace text format (:mod:`.textformat`), CSV / ECSV / FITS / VOTable tables of spectra or
catalogue features (:mod:`.tables`), OGIP PHA spectra with their background (:mod:`.pha`), or
a folder of PHA files. Every problem is an :class:`InputError` with one line that starts with
the path, says where (line, row, column) and how to fix it; the returned data set is clean —
finite float32 values and canonical labels — so later stages never re-check.

This module also holds the checks every spectra reader shares (labels, finiteness, all-zero
rows, normalisation, duplicate ids). The format modules import it, so it imports them only
inside :func:`load_dataset`; that also keeps astropy out of ``import latentlapse``.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.config import MISSING_POLICIES
from latentlapse.data import grid
from latentlapse.data.dataset import Dataset
from latentlapse.data.taxonomy import FINE_LABELS, UNLABELLED, canonical_label
from latentlapse.errors import InputError, MissingExtraError, UsageError

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
PHA_SUFFIXES = (".pha", ".pi", ".ftz", ".pha.gz", ".pi.gz")
VOTABLE_SUFFIXES = (".xml", ".vot", ".votable")

_SNIFF_BYTES = 64 * 1024
_FITS_MAGIC = b"SIMPLE  ="
_GZIP_MAGIC = b"\x1f\x8b"
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


def load_dataset(
    path: str | os.PathLike,
    *,
    label_column: str | None = None,
    features: Sequence[str] | None = None,
    missing: str = "indicator",
    exclude: Sequence[str] = (),
    placeholders: Sequence[float] = (),
) -> Dataset:
    """Read spectra or a catalogue from a file or a folder of PHA files.

    Parameters
    ----------
    path : a text-format file, a CSV/ECSV/FITS/VOTable table, an OGIP PHA file, or a folder
        of PHA files.
    label_column : the column holding labels in a table; found automatically when it is
        ``True_Class``, ``label`` or ``class``.
    features : catalogue columns to use (default: every numeric column that describes the
        source: not ids, labels, quoted errors, sky position or observation bookkeeping).
    missing : what to do with missing catalogue values: ``indicator``, ``median`` or ``drop``.
        Catalogue values stay raw (NaN where missing): imputation is fitted later, on the
        training split only (:mod:`latentlapse.data.schema`); ``drop`` removes rows here.
    exclude : catalogue columns never to use (``--exclude``).
    placeholders : values that mean "missing" in catalogue features (``--placeholder``).

    Raises
    ------
    InputError
        With one line naming the file, the row and column where it applies, and the fix.
    """
    # Imported here: the format modules import this one for the shared checks.
    from latentlapse.data import pha, tables, textformat

    if missing not in MISSING_POLICIES:
        raise UsageError(f"--missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    path = Path(path)
    if path.is_dir():
        _refuse_table_options(path, "a folder of PHA spectra", label_column, features or exclude)
        return pha.read_folder(path)
    kind = _detect_format(path)
    if kind == "pha":
        _refuse_table_options(path, "a PHA spectrum", label_column, features or exclude)
        return pha.read_pha(path)
    if kind == "text":
        _refuse_table_options(path, "a spectra text file", label_column, features or exclude)
        return textformat.read_text(path)
    if kind == "csv":
        table = tables.read_csv(path)
    else:
        table = tables.read_astropy(path, kind)
    return tables.table_dataset(table, label_column=label_column, features=features, missing=missing,
                                exclude=tuple(exclude or ()), placeholders=tuple(placeholders or ()))


def _refuse_table_options(path: Path, what: str, label_column, features) -> None:
    """Table-only options given for a file that has no columns are a usage error."""
    if features:
        raise UsageError(f"{path}: --features and --exclude apply to catalogue tables, but this is {what}; drop them")
    if label_column is not None:
        raise UsageError(
            f"{path}: --label_column applies to tables, but this is {what}; drop --label_column"
        )


def _detect_format(path: Path) -> str:
    """One of ``text``, ``csv``, ``ecsv``, ``votable``, ``fits`` or ``pha``, from suffix and content.

    Only the first 64 KiB are read, so a huge file of garbage is refused at once.
    """
    head = _head(path)
    suffix = suffix_of(path)
    compressed = head.startswith(_GZIP_MAGIC)
    if compressed:
        head = _gunzip_head(path)
    if head.startswith(_FITS_MAGIC):
        return "pha" if _fits_is_pha(path) else "fits"
    if compressed:
        raise InputError(f"{path}: gzip-compressed, and only FITS files are read compressed; decompress it (gunzip)")
    if suffix in FITS_SUFFIXES + PHA_SUFFIXES:
        raise InputError(
            f"{path}: the name says FITS but the file does not start like one (no 'SIMPLE  =' "
            f"header); check that the file is complete and not renamed from another format"
        )
    text = _decode_head(path, head)
    if suffix == ".csv":
        return "csv"
    if suffix == ".ecsv" or text.startswith("# %ECSV"):
        return "ecsv"
    if suffix in VOTABLE_SUFFIXES or text.lstrip().startswith(("<?xml", "<VOTABLE")):
        return "votable"
    return "csv" if _first_data_line(text).count(",") >= 2 else "text"


def _head(path: Path) -> bytes:
    """The first bytes of a file; a missing, unreadable or empty file is refused here."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path (current directory: {Path.cwd()})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if not head:
        raise InputError(
            f"{path}: the file is empty; expected one spectrum per line "
            f"(src_id v1 ... vK net_counts [label]) or a table with a header"
        )
    return head


def _gunzip_head(path: Path) -> bytes:
    """The first decompressed bytes of a gzip file (``.FTZ`` pipeline products)."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(len(_FITS_MAGIC))
    except (OSError, EOFError):
        raise InputError(f"{path}: gzip-compressed but cannot be decompressed; the file is damaged") from None


def _decode_head(path: Path, head: bytes) -> str:
    """The head as text; NUL bytes or invalid UTF-8 mean the file is not a text or table file."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path}: UTF-16 text (as some spreadsheets export it); save the file as UTF-8")
    nul = head.find(b"\0")
    bad = nul
    if nul < 0:
        try:
            return head.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sniffed block is fine.
            if exc.start >= len(head) - 3 and len(head) == _SNIFF_BYTES:
                return head[: exc.start].decode("utf-8-sig")
            bad = exc.start
    raise InputError(
        f"{path}: not a text, CSV, FITS or VOTable file (binary content at byte {bad}); "
        f"expected spectra or a catalogue table, check that you passed the right file"
    )


def _first_data_line(text: str) -> str:
    """The first line that is neither blank nor a ``#`` comment."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def suffix_of(path: Path) -> str:
    """Lower-case suffix, keeping ``.fits.gz``-style double suffixes together."""
    name = path.name.lower()
    for double in (".fits.gz", ".fit.gz", ".fts.gz", ".pha.gz", ".pi.gz"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def _fits_is_pha(path: Path) -> bool:
    """True when a FITS file has an OGIP SPECTRUM extension."""
    fits = require_astropy("reading FITS files")
    with fits.open(path, memmap=False) as hdus:
        return any(is_spectrum_hdu(hdu) for hdu in hdus[1:])


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


def canonical_labels(path: Path, raw: Sequence[str], rows: Rows) -> np.ndarray:
    """Canonical fine labels of raw strings (empty = unlabelled); unknown ones are all listed."""
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
    if unknown:
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
    sums = values.sum(axis=1)
    _check_sums(path, values, sums, ids, rows)
    off = np.abs(sums - 1.0) > _SUM_TOLERANCE
    notes = list(notes)
    if off.any():
        values[off] /= sums[off, None]
        notes.append(f"{int(off.sum())} of {len(values)} spectra did not sum to 1 and were divided by their sum")
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
    """NaN or inf in a spectrum or its counts is refused at the first row where it occurs."""
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad_rows.size:
        i = int(bad_rows[0])
        j = int(np.flatnonzero(~np.isfinite(values[i]))[0])
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): spectrum contains NaN/inf at {value_columns[j]}; "
            f"remove the row or replace the value"
        )
    bad_counts = np.flatnonzero(~np.isfinite(counts))
    if bad_counts.size:
        i = int(bad_counts[0])
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): net_counts is {counts[i]}; "
            f"give the number of net counts of the spectrum"
        )


def _check_sums(path, values, sums, ids, rows) -> None:
    """All-zero spectra carry no information; a non-positive sum cannot be normalised."""
    zero = np.flatnonzero(~values.any(axis=1))
    if zero.size:
        i = int(zero[0])
        raise InputError(f"{path}: {rows.at(i)} ({ids[i]}): all-zero spectrum; remove the row")
    negative = np.flatnonzero(sums <= 0)
    if negative.size:
        i = int(negative[0])
        raise InputError(
            f"{path}: {rows.at(i)} ({ids[i]}): spectrum sums to {sums[i]:.6g}, so it cannot be "
            f"normalised; check its background subtraction or remove the row"
        )


def warn_duplicate_ids(path: Path, ids: np.ndarray) -> None:
    """Log one warning naming how many ids repeat and the first few; the rows are kept."""
    unique, counts = np.unique(np.asarray(ids, dtype=str), return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        shown = ", ".join(repeated[:_SHOWN]) + (", ..." if repeated.size > _SHOWN else "")
        log.warning(
            "%s: %d source ids appear more than once (%s); the rows are kept as separate sources",
            path,
            repeated.size,
            shown,
        )


def bin_names(k: int) -> tuple[str, ...]:
    """Column names of spectral bins: ``E0.5125`` (bin centre in keV) on the standard grid, else v1..vK."""
    if k == grid.N_BINS:
        return tuple(f"E{centre:.4f}" for centre in grid.centres())
    return tuple(f"v{j + 1}" for j in range(k))
