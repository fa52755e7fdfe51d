"""Opening a FITS file that may be cut short or damaged, with one line that says so.

astropy reads headers as it goes and data only when asked, and on a truncated file it warns
(on stderr) and stops at the last HDU it could read, or fails later with an error about array
shapes. These helpers check a file against what its headers describe, and read a table's data
where a failure can still name the file: PHA spectra, their backgrounds and responses
(:mod:`.pha`) and the format sniffing of :mod:`.readers` use them.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from latentlapse.xray.data.spectra_checks import require_astropy
from latentlapse.core.errors import InputError

# The words for a truncated file, of spectra and of tables (fits_tables.table_hdu) alike.
CUT_SHORT = "it was cut short (an interrupted copy or download?); copy it again"
_BLOCK = 2880  # FITS block: headers and data are padded to whole blocks
_DAMAGE = (OSError, EOFError, ValueError, zlib.error)


@contextlib.contextmanager
def open_fits(path: Path, whose: str | None = None):
    """An astropy HDU list, or a one-line error when the file is not readable FITS.

    astropy reads headers as it goes and data only when asked, and warns (on stderr) about a
    cut file instead of failing: its warnings are silenced for the whole block, whose checks
    (:func:`require_complete`, :func:`column_arrays`) say what is wrong in one line.
    """
    fits = require_astropy("reading FITS files")
    from astropy.utils.exceptions import AstropyWarning

    whose = whose or str(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            hdus = fits.open(path, memmap=False)
        except _DAMAGE as exc:
            _require_whole_gzip(path, whose)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{whose}: not a readable FITS file ({reason}): damaged, or {CUT_SHORT}") from None
        with hdus:
            yield hdus


def require_complete(path: Path, hdus, whose: str) -> None:
    """One-line InputError, naming the file as ``whose``, when it holds less than its last
    readable HDU needs, or bytes after it that astropy could not read as a header (a file cut
    inside one: astropy then stops at the HDU before)."""
    last = hdus[-1]
    info = last.fileinfo()
    end = info["datLoc"] + last.size
    padded = info["datLoc"] + info["datSpan"]
    size, after = _size_and_bytes_at(path, padded, whose)
    name = f"{last.name} HDU" if last.name else f"HDU {len(hdus) - 1}"
    if size < end:
        raise InputError(f"{whose}: the file ends after {size} bytes, but its {name} needs {end}: {CUT_SHORT}")
    if after.strip(b"\0 "):
        raise InputError(f"{whose}: the file has {size - padded} bytes after its {name} that do not read as "
                         f"a FITS header: {CUT_SHORT}")


def _size_and_bytes_at(path: Path, start: int, whose: str) -> tuple[int, bytes]:
    """The size of the FITS content (decompressed, for gzip) and its block at ``start``."""
    if not _is_gzip(path):
        with open(path, "rb") as handle:
            handle.seek(start)
            return os.path.getsize(path), handle.read(_BLOCK)
    size, block = 0, b""
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                if size <= start + _BLOCK and size + len(chunk) > start:
                    block += chunk[max(start - size, 0): start + _BLOCK - size]
                size += len(chunk)
    except _DAMAGE:
        raise InputError(f"{whose}: the gzip stream stops before its end: {CUT_SHORT}") from None
    return size, block


def _is_gzip(path: Path) -> bool:
    """Whether a file starts with the gzip magic bytes (``.FTZ``, ``.fits.gz``), whatever its name."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _require_whole_gzip(path: Path, whose: str) -> None:
    """One-line InputError when a gzip file's stream stops before its end (a cut ``.FTZ``)."""
    if _is_gzip(path):
        _size_and_bytes_at(path, 0, whose)


def column_arrays(hdu, whose: str) -> dict[str, np.ndarray]:
    """A table's columns by upper-case name; astropy reads the data here, where a damaged file fails."""
    try:
        return {name.upper(): np.asarray(hdu.data[name]) for name in hdu.columns.names}
    except _DAMAGE as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{whose}: the {hdu.name or 'table'} extension cannot be read ({reason}): damaged, "
                         f"or {CUT_SHORT}") from None
