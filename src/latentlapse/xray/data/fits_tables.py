"""Which table of a FITS file holds the sources, and whether the file holds all of it.

Shared by the whole-file reader (:mod:`latentlapse.xray.data.tables`) and the streamed one
(:mod:`latentlapse.xray.data.chunks`), so ``train`` and ``predict`` read the same table and
refuse a cut-short file with the same line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from latentlapse.xray.data.fits_files import CUT_SHORT
from latentlapse.core.errors import InputError

log = logging.getLogger(__name__)


def table_hdu(hdus, path: Path):
    """``(index, hdu, rows)`` of the table the sources are in: the only table extension, or of
    several the one with the most rows (said in a note). One-line InputError when the file has
    no table, an empty one, or less data than its header describes (a truncated copy)."""
    from astropy.io import fits

    tables = [(i, h) for i, h in enumerate(hdus) if isinstance(h, (fits.BinTableHDU, fits.TableHDU))]
    if not tables:
        raise InputError(f"{path}: no table extension; write the sources as a FITS binary table")
    index, hdu = max(tables, key=lambda item: item[1].header.get("NAXIS2", 0))
    rows = int(hdu.header.get("NAXIS2", 0))
    if len(tables) > 1:
        others = ", ".join(f"{_name(h, i)} ({h.header.get('NAXIS2', 0)} rows)" for i, h in tables if i != index)
        log.info("%s: reading the table %s (%d rows), the largest; the file also has %s", path, _name(hdu, index),
                 rows, others)
    if rows == 0:
        raise InputError(f"{path}: the table has columns but no rows; add one source per row")
    needed = hdu.fileinfo()["datLoc"] + hdu.header.get("NAXIS1", 0) * rows + hdu.header.get("PCOUNT", 0)
    size = os.path.getsize(path)
    if size < needed:
        raise InputError(f"{path}: the file ends after {size} bytes, but its table {_name(hdu, index)} needs "
                         f"{needed}: {CUT_SHORT}")
    return index, hdu, rows


def _name(hdu, index: int) -> str:
    return hdu.name or f"extension {index}"
