"""Prediction rows written as they are made: CSV, JSON or a FITS binary table, atomically.

``predict`` hands over one piece of sources at a time; each piece's rows go straight to a
temporary file beside the output, which replaces the output only when the last piece is
written. A failure on the way (a bad row in the input) leaves no file that looks complete.
Rows: id, the true class where known (the column exists when the first piece has a labelled
source), the predicted class and one probability per class.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.errors import InputError, UsageError

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts")
NAMED_SUFFIXES = (".csv", ".json", ".fits")  # the formats as a message names them
FITS_BLOCK = 2880
MIN_ID_WIDTH = 64

Piece = tuple[np.ndarray, np.ndarray, np.ndarray]  # ids, true classes (-1 unknown), probabilities


def check_destination(path: str, flag: str) -> None:
    """UsageError (exit 2), before any work, unless ``path`` names a predictions format (by its
    suffix) in a folder that exists: found only at the end, the run's work would be lost."""
    suffix = Path(path).suffix.lower()
    if suffix not in NAMED_SUFFIXES + FITS_SUFFIXES:
        problem = f"'{suffix}' is not a predictions format" if suffix else "the file name has no suffix"
        raise UsageError(f"{flag} {path}: {problem}; end the name in {', '.join(NAMED_SUFFIXES[:-1])} "
                         f"or {NAMED_SUFFIXES[-1]}")
    atomic.check_destination(path, flag)


def write_stream(path: Path, pieces: Iterable[Piece], class_names: Sequence[str],
                 about: Mapping[str, str] | None = None) -> tuple[Path, int, np.ndarray]:
    """Write every piece's rows to ``path`` (format by suffix); returns (path, rows, predicted
    counts per class). ``about`` (keyword -> text, e.g. the checkpoint and which probabilities)
    goes into a FITS table's header; CSV and JSON rows have no place for it."""
    suffix = path.suffix.lower()
    if suffix in FITS_SUFFIXES:
        def write(handle, rows, names):
            return _write_fits(handle, rows, names, about or {})
    else:
        write = _write_json if suffix == ".json" else _write_csv
    counts = np.zeros(len(class_names), dtype=np.int64)

    def counted():
        for ids, y_true, proba in pieces:
            pred = proba.argmax(axis=1)
            counts[:] += np.bincount(pred, minlength=len(class_names))
            yield ids, np.asarray(y_true), proba, pred

    with atomic.atomic_writer(path, "wb") as handle:
        n = write(handle, counted(), list(class_names))
    return path, n, counts


def _columns(names, with_truth: bool) -> list[str]:
    return ["id", *(["true_class"] if with_truth else []), "predicted_class", *(f"p_{c}" for c in names)]


def _rows(ids, y_true, proba, pred, names, with_truth: bool):
    """Each source's row as a list in :func:`_columns`' order: the probabilities leave numpy in
    one call instead of one float at a time (several times faster)."""
    pred = pred.tolist()
    values = proba.astype(np.float64).tolist()
    truth = [names[t] if t >= 0 else "" for t in np.asarray(y_true).tolist()] if with_truth else None
    for i, source in enumerate(np.asarray(ids).tolist()):
        row = [str(source), truth[i]] if with_truth else [str(source)]
        row.append(names[pred[i]])
        row.extend([round(p, 6) for p in values[i]])
        yield row


def _truth_column(y_true: np.ndarray, first: bool, with_truth: bool) -> bool:
    if not first and not with_truth and np.any(y_true >= 0):
        log.warning("labelled sources after the first piece of unlabelled ones: their true class is not written")
    return with_truth


def _write_csv(handle, pieces, names) -> int:
    import io

    text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
    writer, with_truth, n = None, False, 0
    for ids, y_true, proba, pred in pieces:
        if writer is None:
            with_truth = bool(np.any(y_true >= 0))
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(_columns(names, with_truth))
        _truth_column(y_true, n == 0, with_truth)
        writer.writerows(_rows(ids, y_true, proba, pred, names, with_truth))
        n += len(ids)
    if writer is None:
        text.write("id\n")
    text.flush()
    text.detach()
    return n


def _write_json(handle, pieces, names) -> int:
    """The same text as ``json.dumps(rows, indent=1)``, one row at a time."""
    handle.write(b"[")
    n, with_truth = 0, False
    for ids, y_true, proba, pred in pieces:
        if n == 0:
            with_truth = bool(np.any(y_true >= 0))
        _truth_column(y_true, n == 0, with_truth)
        columns = _columns(names, with_truth)
        for values in _rows(ids, y_true, proba, pred, names, with_truth):
            item = "\n".join(" " + line for line in json.dumps(dict(zip(columns, values)), indent=1).splitlines())
            handle.write(((",\n" if n else "\n") + item).encode())
            n += 1
    handle.write(b"\n]\n" if n else b"]\n")
    return n


def _write_fits(handle, pieces, names, about: Mapping[str, str]) -> int:
    """A primary HDU and one binary table whose row count is filled in after the last row;
    ``about`` becomes header keywords of the table (long values continue over several cards).

    The table's header is written first with NAXIS2 = 0, the rows are streamed as big-endian
    records, and the header (the same length) is rewritten with the final count.
    """
    from astropy.io import fits

    from latentlapse.core.timelapse.styles import safe_name

    handle.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
    header_at, header, dtype, n, id_width, with_truth = handle.tell(), None, None, 0, 0, False
    class_width = max(len(name) for name in names)
    for ids, y_true, proba, pred in pieces:
        ids = np.asarray(ids, dtype=str)
        if header is None:
            with_truth = bool(np.any(y_true >= 0))
            id_width = max(MIN_ID_WIDTH, max((len(i) for i in ids), default=1))
            columns = [fits.Column(name="id", format=f"{id_width}A")]
            if with_truth:
                columns.append(fits.Column(name="true_class", format=f"{class_width}A"))
            columns.append(fits.Column(name="predicted_class", format=f"{class_width}A"))
            columns += [fits.Column(name=f"p_{safe_name(c)}", format="E") for c in names]
            header = fits.BinTableHDU.from_columns(columns, nrows=0).header
            header["EXTNAME"] = "PREDICTIONS"
            for key, text in about.items():
                header[key] = text.encode("ascii", "replace").decode("ascii")
            dtype = np.dtype([("id", f"S{id_width}")] + ([("true_class", f"S{class_width}")] if with_truth else [])
                             + [("predicted_class", f"S{class_width}")] + [(f"p_{safe_name(c)}", ">f4") for c in names])
            handle.write(header.tostring().encode("ascii"))
        _truth_column(y_true, n == 0, with_truth)
        longest = max((len(i) for i in ids), default=0)
        if longest > id_width:
            raise InputError(f"source id {str(ids[np.argmax([len(i) for i in ids])])!r} is longer than the {id_width} "
                             f"characters of the FITS id column (set by the first rows); write CSV output instead")
        records = np.zeros(len(ids), dtype=dtype)
        records["id"] = _ascii_ids(ids, n) if ids.size else records["id"]
        codes = np.array([name.encode("ascii", "replace") for name in names])
        records["predicted_class"] = codes[pred]
        if with_truth:
            records["true_class"] = np.where(y_true >= 0, codes[np.maximum(y_true, 0)], b"")
        for j, c in enumerate(names):
            records[f"p_{safe_name(c)}"] = proba[:, j]
        handle.write(records.tobytes())
        n += len(ids)
    if header is None:
        raise InputError("no sources to write")
    handle.write(b"\0" * (-(n * dtype.itemsize) % FITS_BLOCK))
    header["NAXIS2"] = n
    handle.seek(header_at)
    handle.write(header.tostring().encode("ascii"))
    handle.seek(0, 2)
    return n


def _ascii_ids(ids: np.ndarray, before: int) -> np.ndarray:
    """The ids as ASCII bytes, what a FITS text column holds; an id with other characters is
    refused (replacing them could give two sources one id)."""
    try:
        return np.char.encode(ids, "ascii")
    except UnicodeEncodeError:
        row, source = next((i, source) for i, source in enumerate(ids.tolist()) if not source.isascii())
        raise InputError(f"source id {source!r} (row {before + row + 1} of the predictions) is not ASCII, and FITS "
                         f"text columns hold only ASCII; write the predictions to .csv or .json instead") from None
