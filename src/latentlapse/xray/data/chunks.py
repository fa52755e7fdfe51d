"""A data file read in pieces of a fixed number of sources, for ``predict`` on whole surveys.

The text format, CSV and FITS tables are read as they are consumed: memory holds one piece,
however many rows the file has. Each piece passes the same checks as a whole-file read and its
messages give the file's own line (text, CSV) or row (FITS) numbers. Other inputs (ECSV,
VOTable, PHA files and folders) and catalogues (whose missing values are filled from statistics
of whole columns) are read whole and handed over as one piece.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Iterator

from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.spectra_checks import UnknownLabels

CHUNK_ROWS = 8192


def iter_chunks(
    path: str | os.PathLike, rows: int | None = None, *, label_column: str | None = None, missing: str = "indicator",
    span: slice | None = None, unknown_labels: UnknownLabels | None = None,
) -> Iterator[Dataset]:
    """The file's sources as Datasets of at most ``rows`` (default ``CHUNK_ROWS``) each, in file order.

    ``span`` (data rows, counted from 0) limits the pieces to one contiguous stretch of the file:
    a torchrun rank's share. Rows outside it are skipped without being parsed or checked. Labels
    of no known class are refused, or counted in ``unknown_labels`` and read as unlabelled.
    """
    from latentlapse.xray.data import csv_tables, readers, tables, textformat

    rows = rows or CHUNK_ROWS
    path = Path(path)
    kind = file_kind(path)
    if kind == "text":
        yield from textformat.text_chunks(path, rows, span, unknown_labels)
        return
    if kind == "csv":
        pieces = csv_tables.csv_chunks(path, rows, span=span)
    elif kind == "fits":
        pieces = fits_chunks(path, rows, span)
    else:
        yield _spanned(readers.load_dataset(path, label_column=label_column, missing=missing,
                                            unknown_labels=unknown_labels), span)
        return
    for index, table in enumerate(pieces):
        seen = None if unknown_labels is None else UnknownLabels(path)
        piece = tables.table_dataset(table, label_column=label_column, features=None, missing=missing,
                                     unknown_labels=seen)
        if index == 0 and piece.kind != "spectra":
            # a catalogue's missing values are filled from whole-column statistics: read it whole
            yield _spanned(readers.load_dataset(path, label_column=label_column, missing=missing,
                                                unknown_labels=unknown_labels), span)
            return
        if seen is not None:
            unknown_labels.merge([seen])
        yield piece


def file_kind(path: Path) -> str:
    """``text``, ``csv``, ``fits``, ``ecsv``, ``votable``, ``pha`` or ``folder``."""
    from latentlapse.xray.data import readers

    return "folder" if path.is_dir() else readers._detect_format(path)


def count_rows(path: str | os.PathLike) -> int:
    """The number of data rows (sources) of a file, read without parsing values: how torchrun
    ranks split a file into contiguous slices before reading their own."""
    from latentlapse.xray.data import csv_tables, readers, tables, textformat

    path = Path(path)
    kind = file_kind(path)
    if kind == "text":
        return textformat.count_rows(path)
    if kind == "csv":
        return csv_tables.count_csv_rows(path)
    if kind == "fits":
        return _fits_rows(path)
    if kind in ("ecsv", "votable"):
        return len(tables.read_astropy(path, kind))
    return len(readers.load_dataset(path))


def _spanned(dataset: Dataset, span: slice | None) -> Dataset:
    import numpy as np

    return dataset if span is None else dataset.subset(np.arange(len(dataset))[span])


def fits_chunks(path: Path, rows: int, span: slice | None = None):
    """The first table extension of a FITS file, ``rows`` rows at a time (memory-mapped), as
    :class:`~latentlapse.xray.data.table_columns.Table` pieces; ``span`` as in :func:`iter_chunks`."""
    from astropy.table import Table as AstropyTable
    from astropy.utils.exceptions import AstropyWarning

    from latentlapse.xray.data import tables

    with _open_fits(path) as (hdus, hdu, n):
        first, stop, _ = (span or slice(0, n)).indices(n)
        for start in range(first, stop, rows):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                piece = AstropyTable(hdu.data[start:min(start + rows, stop)], masked=False)
            table = tables.astropy_table(path, piece, first_row=start + 1)
            del piece
            _release_mapped_pages(hdus)
            yield table


def _fits_rows(path: Path) -> int:
    with _open_fits(path) as (_, _, n):
        return n


@contextlib.contextmanager
def _open_fits(path: Path):
    """(the open HDU list, the sources' table (:func:`~latentlapse.xray.data.fits_tables.table_hdu`), its row count)."""
    from astropy.io import fits

    from latentlapse.core.errors import InputError
    from latentlapse.xray.data import readers
    from latentlapse.xray.data.fits_tables import table_hdu

    readers.require_astropy("reading FITS files")
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():  # a cut-short file gets our one line, not astropy's warning too
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            hdus = fits.open(path, memmap=True)
        except Exception as exc:  # astropy raises many types for malformed files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot be read as FITS ({reason}); check the file") from None
        try:
            _, hdu, n = table_hdu(hdus, path)
        except BaseException:
            hdus.close()
            raise
    with hdus:
        yield hdus, hdu, n


def _release_mapped_pages(hdus) -> None:
    """Drop the pages of the memory-mapped file this process has read so far from its resident
    memory (they stay in the page cache): otherwise a 300 MB table adds 300 MB to the peak RSS
    by the time its last row is read, though no array holds it."""
    import mmap

    mapped = getattr(getattr(hdus, "_file", None), "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        try:
            mapped.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # not supported here: memory then grows as before
            pass
