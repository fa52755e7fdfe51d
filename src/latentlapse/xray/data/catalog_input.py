"""Reading a file through a trained catalogue model's schema (``predict``, ``visualize``).

Only the schema's columns are parsed, with the schema's types: other columns are ignored
whatever they hold, so a subset of the training catalogue (one class, one source) reads the way
the catalogue did. A column the file lacks, or leaves empty in every row, is all-missing when the
model has a missing indicator for it; otherwise it is named in one line (exit 2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.xray.data.schema import FeatureSchema, parse_columns
from latentlapse.core.errors import InputError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SchemaRows:
    """Sources read through a schema: ids, canonical labels (``""`` unlabelled), raw values."""

    ids: np.ndarray
    labels: np.ndarray
    raw: np.ndarray
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


def read_with_schema(path: str | Path, schema: FeatureSchema, label_column: str | None) -> SchemaRows:
    """The sources of a CSV, ECSV, FITS or VOTable table as raw values of ``schema.columns``.

    The label column (``label_column``, else True_Class/label/class) is optional: without it
    every source is unlabelled.
    """
    from latentlapse.xray.data import readers, tables

    path = Path(path)
    kind = "dir" if path.is_dir() else readers._detect_format(path)
    if kind not in ("csv", "ecsv", "votable", "fits"):
        raise InputError(f"{path}: holds spectra, but the checkpoint's model was trained on a catalogue; "
                         f"give a table with the columns {', '.join(schema.columns[:6])}{', ...' if len(schema.columns) > 6 else ''}")
    table = tables.read_csv(path, typed=False) if kind == "csv" else tables.read_astropy(path, kind)
    label = label_column if label_column in table.names else tables._label_column(table, None)
    id_columns = [n for n in table.names if n != label and tables._looks_like_id(n)]
    ids, labels, notes = tables.ids_and_labels(table, label, id_columns)
    block = {name: table.text.get(name, table.numbers.get(name)) for name in schema.columns if name in table.names}
    raw = parse_columns(schema, block, len(table),
                        lambda i, name: f"{path}: {table.rows.at(i)}, {table.positions[name]}")
    notes.extend(check_columns(path, schema, raw, set(table.names)))
    for note in notes:
        log.info("%s: %s", path, note)
    return SchemaRows(ids=ids, labels=labels, raw=raw, notes=tuple(notes))


def check_columns(path: Path, schema: FeatureSchema, raw: np.ndarray, present: set[str]) -> list[str]:
    """Notes for columns the file lacks or leaves empty; a UsageError when the model cannot impute one.

    A column with a missing indicator is simply all-missing; without one the model never saw it
    missing as a whole, so filling it with the training median would be a guess (exit 2).
    """
    gaps = schema.missing_mask(raw)
    empty = [name for j, name in enumerate(schema.columns) if name not in present or gaps[:, j].all()]
    if not empty:
        return []
    cannot = [name for name in empty if name not in schema.indicators]
    if cannot:
        absent = [n for n in cannot if n not in present]
        what = " and ".join(part for part in (
            f"lacks {', '.join(absent)}" if absent else "",
            f"has no value in {', '.join(n for n in cannot if n in present)}" if len(absent) < len(cannot) else "",
        ) if part)
        raise UsageError(f"{path}: the file {what}, which the model needs and has no missing indicator for "
                         f"(the training split had no gap there); add the column's values, or retrain with "
                         f"--missing indicator on data with gaps in it, or without it (--exclude)")
    return [f"columns absent or empty in this file, read as missing (the model has indicators for them): "
            f"{', '.join(empty)}"]
