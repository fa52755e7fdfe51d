"""Write a Dataset as the whitespace text format or as CSV, atomically, so it reads back exactly.

Values are written with 9 significant digits, which round-trips float32 exactly; net counts
as integers when integral, else with Python's shortest round-tripping repr. ``load_dataset``
reads either file back to the same arrays, ids and labels (unlabelled rows included).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import numpy as np

from latentlapse.core import atomic
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.spectra_checks import bin_names
from latentlapse.xray.data.taxonomy import UNLABELLED
from latentlapse.core.errors import InputError, UsageError

_VALUE_FORMAT = "%.9g"


def write_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    """Write ``dataset`` to ``path``: CSV when the name ends in ``.csv``, else the text format.

    Text format: ``src_id v1 ... vK net_counts label`` per line, the label omitted on
    unlabelled rows. CSV: a header ``src_id,<feature names>,net_counts,label`` (no net_counts
    column for a catalogue) and an empty label cell on unlabelled rows.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        atomic.write_text(path, _csv_text(dataset))
    else:
        atomic.write_text(path, _text_format(path, dataset))


def text_file_sha256(dataset: Dataset) -> str:
    """SHA-256 of the text file :func:`write_dataset` writes for ``dataset`` (a ``.txt`` name),
    without writing it: the checksum a run on that file records."""
    return hashlib.sha256(_text_format(Path("spectra.txt"), dataset).encode("utf-8")).hexdigest()


def _text_format(path: Path, dataset: Dataset) -> str:
    """The whole file as one string (a 3500 × 380 set is ~15 MB; fine in memory)."""
    if dataset.kind != "spectra":
        raise UsageError(f"{path}: the text format holds spectra; write a catalogue to a .csv file instead")
    _check_ids_for_text(path, dataset.ids)
    row_format = " ".join([_VALUE_FORMAT] * dataset.n_features)
    lines = []
    for source_id, values, counts, label in zip(dataset.ids, dataset.X, dataset.counts, dataset.labels):
        fields = [str(source_id), row_format % tuple(values.tolist()), _counts_text(counts)]
        if label != UNLABELLED:
            fields.append(str(label))
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def _csv_text(dataset: Dataset) -> str:
    """Header and one row per source; catalogues carry no net_counts column."""
    spectra = dataset.kind == "spectra"
    names = list(dataset.feature_names)
    if len(names) != dataset.n_features:
        names = list(bin_names(dataset.n_features))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["src_id", *names, *(["net_counts"] if spectra else []), "label"])
    for source_id, values, counts, label in zip(dataset.ids, dataset.X, dataset.counts, dataset.labels):
        row = [str(source_id), *(_VALUE_FORMAT % v for v in values.tolist())]
        if spectra:
            row.append(_counts_text(counts))
        writer.writerow([*row, str(label)])
    return buffer.getvalue()


def _counts_text(counts: float) -> str:
    """Net counts exactly: ``9850`` when integral, else the shortest round-tripping repr."""
    value = float(counts)
    return str(int(value)) if value.is_integer() else repr(value)


def _check_ids_for_text(path: Path, ids: np.ndarray) -> None:
    """Ids with whitespace, empty ids or ids starting with ``#`` would not read back as written."""
    for source_id in ids:
        text = str(source_id)
        if not text or text.split() != [text] or text.startswith("#"):
            raise InputError(
                f"{path}: source id {text!r} cannot be written to the text format (empty, contains "
                f"whitespace or starts with '#'); write to a .csv file instead"
            )
