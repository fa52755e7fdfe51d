"""Read the files astronomers bring into one clean :class:`Dataset`, refusing bad input.

``load_dataset`` picks a reader by suffix and, where the suffix says nothing, by content: the
whitespace text format (:mod:`.textformat`), CSV / ECSV / FITS / VOTable tables of spectra or
catalogue features (:mod:`.tables`), OGIP PHA spectra with their background (:mod:`.pha`), or
a folder of PHA files. Every problem is an :class:`InputError` with one line that starts with
the path, says where (line, row, column) and how to fix it; the returned data set is clean —
finite float32 values and canonical labels — so later stages never re-check.

The checks every spectra reader shares (labels, finiteness, all-zero rows, normalisation,
duplicate ids) live in :mod:`.spectra_checks`, below this module and the format modules alike;
the format modules are imported inside :func:`load_dataset`, which keeps astropy out of
``import latentlapse``.
"""

from __future__ import annotations

import codecs
import gzip
import os
from pathlib import Path
from typing import Sequence

from latentlapse.xray.config import MISSING_POLICIES
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.encoding import first_binary_byte, not_utf8_message
from latentlapse.xray.data.spectra_checks import (
    FITS_SUFFIXES,
    PHA_SUFFIXES,
    VOTABLE_SUFFIXES,
    UnknownLabels,
    require_astropy,
    suffix_of,
)
from latentlapse.core.errors import InputError, UsageError

_SNIFF_BYTES = 64 * 1024
_FITS_MAGIC = b"SIMPLE  ="
_GZIP_MAGIC = b"\x1f\x8b"


def load_dataset(
    path: str | os.PathLike,
    *,
    label_column: str | None = None,
    features: Sequence[str] | None = None,
    missing: str = "indicator",
    exclude: Sequence[str] = (),
    placeholders: Sequence[float] = (),
    unknown_labels: UnknownLabels | None = None,
) -> Dataset:
    """Read spectra or a catalogue from a file or a folder of PHA files.

    Parameters
    ----------
    path : a text-format file, a CSV/ECSV/FITS/VOTable table, an OGIP PHA file, or a folder
        of PHA files.
    label_column : the column holding labels in a table; found automatically when it is
        ``True_Class``, ``label`` or ``class``.
    features : catalogue columns to use (default: every numeric or flag column that describes the
        source: not ids, labels, quoted errors, sky position or observation bookkeeping).
    missing : what to do with missing catalogue values: ``indicator``, ``median`` or ``drop``.
        Catalogue values stay raw (NaN where missing): imputation is fitted later, on the
        training split only (:mod:`latentlapse.xray.data.schema`); ``drop`` removes rows here.
    exclude : catalogue columns never to use (``--exclude``).
    placeholders : values that mean "missing" in catalogue features (``--placeholder``).
    unknown_labels : where labels of no known class are counted and read as unlabelled, for a
        command that needs no labels (``predict``); without it they are refused.

    Raises
    ------
    InputError
        With one line naming the file, the row and column where it applies, and the fix.
    """
    # Imported here, when a file is read: astropy stays out of `import latentlapse`.
    from latentlapse.xray.data import csv_tables, pha, tables, textformat

    if missing not in MISSING_POLICIES:
        raise UsageError(f"--missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    path = Path(path)
    if path.is_dir():
        _refuse_table_options(path, "a folder of PHA spectra", label_column, features or exclude, placeholders)
        return pha.read_folder(path, unknown_labels)
    kind = _detect_format(path)
    if kind == "pha":
        _refuse_table_options(path, "a PHA spectrum", label_column, features or exclude, placeholders)
        return pha.read_pha(path, unknown_labels)
    if kind == "text":
        _refuse_table_options(path, "a spectra text file", label_column, features or exclude, placeholders)
        return textformat.read_text(path, unknown_labels)
    if kind == "csv":
        table = csv_tables.read_csv(path)
    else:
        table = tables.read_astropy(path, kind)
    return tables.table_dataset(table, label_column=label_column, features=features, missing=missing,
                                exclude=tuple(exclude or ()), placeholders=tuple(placeholders or ()),
                                unknown_labels=unknown_labels)


def is_pha_file(path: str | os.PathLike) -> bool:
    """Whether a file is an OGIP PHA spectrum, by its suffix or its SPECTRUM extension; False for a
    file that cannot be read as one (reading it says why)."""
    path = Path(path)
    if suffix_of(path) in PHA_SUFFIXES:
        return True
    try:
        return _detect_format(path) == "pha"
    except InputError:
        return False


def _refuse_table_options(path: Path, what: str, label_column, features, placeholders) -> None:
    """Table-only options given for a file that has no columns are a usage error."""
    if features:
        raise UsageError(f"{path}: --features and --exclude apply to catalogue tables, but this is {what}; drop them")
    if placeholders:
        raise UsageError(f"{path}: --placeholder applies to catalogue tables, but this is {what}; drop it")
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
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".ecsv" or text.startswith("# %ECSV"):
        return "ecsv"
    if suffix in VOTABLE_SUFFIXES or text.lstrip().startswith(("<?xml", "<VOTABLE")):
        return "votable"
    first = _first_data_line(text)
    return "csv" if first.count(",") >= 2 or _tab_table_header(first) else "text"


def _tab_table_header(line: str) -> bool:
    """A tab-separated table's header (VizieR, TOPCAT): names only, none a net-counts column. The
    text format may be tab-separated too, but starts with a source, or with its own header
    ``src_id v1 ... net_counts``."""
    from latentlapse.xray.data.tables import COUNTS_NAMES

    fields = [field.strip() for field in line.split("\t")]
    if len(fields) < 2 or any(name.lower() in COUNTS_NAMES for name in fields):
        return False
    try:
        float(fields[1])
    except ValueError:
        return True
    return False


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
    if b"\0" not in head:
        try:
            return head.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sniffed block is fine.
            if exc.start >= len(head) - 3 and len(head) == _SNIFF_BYTES:
                return head[: exc.start].decode("utf-8-sig")
            if _mostly_text(head):  # text in another encoding (an accented name saved as Latin-1)
                raise InputError(not_utf8_message(path)) from None
    raise InputError(
        f"{path}: not a text, CSV, FITS or VOTable file (binary content at byte {first_binary_byte(head)}); "
        f"expected spectra or a catalogue table, check that you passed the right file"
    )


def _mostly_text(head: bytes) -> bool:
    """Whether bytes without NULs read as text: printable ASCII and line breaks, nearly all of them."""
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable >= 0.95 * len(head)


def _first_data_line(text: str) -> str:
    """The first line that is neither blank nor a ``#`` comment."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def _fits_is_pha(path: Path) -> bool:
    """True when a FITS file has an OGIP SPECTRUM extension (a file cut short before its first
    extension is refused here, so it is not taken for a table without one)."""
    from latentlapse.xray.data import pha

    require_astropy("reading FITS files")
    return pha.has_spectrum(path)
