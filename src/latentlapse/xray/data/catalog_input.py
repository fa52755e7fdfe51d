"""Reading a file through a trained catalogue model's schema (``predict``, ``visualize``).

Only the schema's columns are parsed, with the schema's types: other columns are ignored
whatever they hold, so a subset of the training catalogue (one class, one source) reads the way
the catalogue did. A column the file lacks, or leaves empty in every row, is all-missing when the
model has a missing indicator for it; otherwise it is named in one line (exit 2).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from latentlapse.xray.data.schema import FeatureSchema, below_log_range, clipped_note, parse_columns
from latentlapse.xray.data.spectra_checks import UnknownLabels, warn_repeated_ids
from latentlapse.xray.data.table_columns import unlabelled_note
from latentlapse.core.errors import InputError

log = logging.getLogger(__name__)

# VizieR's one-letter prefixes (b_ / B_ bounds, e_ / E_ errors): their case is part of the meaning
_PREFIXED = re.compile(r"[A-Za-z]_")


@dataclass(frozen=True, eq=False)
class SchemaRows:
    """Sources read through a schema: ids, canonical labels (``""`` unlabelled), raw values."""

    ids: np.ndarray
    labels: np.ndarray
    raw: np.ndarray
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


def read_with_schema(path: str | Path, schema: FeatureSchema, label_column: str | None,
                     unknown_labels: UnknownLabels | None = None) -> SchemaRows:
    """The sources of a CSV, ECSV, FITS or VOTable table as raw values of ``schema.columns``.

    The label column (``label_column``, else True_Class/label/class) is optional: without it
    every source is unlabelled. The reader's notes are in the result, for the caller to show.
    """
    from latentlapse.xray.data import csv_tables, tables

    path = Path(path)
    kind = _table_kind(path, schema)
    table = csv_tables.read_csv(path, typed=False) if kind == "csv" else tables.read_astropy(path, kind)
    scan = Scan(path, schema, unknown_labels)
    rows = scan.add(table, label_column)
    notes = list(table.notes) + scan.finish()
    return SchemaRows(ids=rows.ids, labels=rows.labels, raw=rows.raw, notes=tuple(notes))


def iter_with_schema(path: str | Path, schema: FeatureSchema, label_column: str | None, rows: int,
                     span: slice | None = None, scan: "Scan | None" = None) -> Iterator[SchemaRows]:
    """The sources of a table through ``schema``, ``rows`` at a time, in file order: CSV and FITS
    are read as they are consumed (memory holds one piece), ECSV and VOTable whole.

    Only the data rows of ``span`` (from 0) are read. ``scan`` gathers what the whole-file checks
    need (columns absent, or empty in every row; labels of no known class, read as unlabelled:
    ``predict`` needs no labels); unless the caller passes its own (torchrun ranks combine
    theirs), they run after the last piece, so a column that turns out empty everywhere still
    stops the command before its output is complete.
    """
    from latentlapse.xray.data import csv_tables, tables
    from latentlapse.xray.data.chunks import fits_chunks

    path = Path(path)
    kind = _table_kind(path, schema)
    own = scan is None
    scan = Scan(path, schema, UnknownLabels(path)) if own else scan
    if kind == "csv":
        pieces: Iterator = csv_tables.csv_chunks(path, rows, typed=False, span=span)
    elif kind == "fits":
        pieces = fits_chunks(path, rows, span)
    else:
        yield scan.add(tables.read_astropy(path, kind), label_column, keep=span)
        pieces = iter(())
    for table in pieces:
        yield scan.add(table, label_column)
    if own:
        for note in scan.finish():
            log.info("%s: %s", path, note)


class Scan:
    """What a reader has seen of a table so far: its columns, which of the schema's columns were
    empty in every row read, the values <= 0 of columns fed as log10 (how many, the first), the
    number of sources and of labelled ones, the source ids (to find those met more than once), and, given
    ``unknown_labels``, the labels of no known class it read as unlabelled (else they are
    refused). Scans of slices of one file (torchrun ranks) combine with :meth:`merge`."""

    def __init__(self, path: Path, schema: FeatureSchema, unknown_labels: UnknownLabels | None = None):
        self.path, self.schema, self.unknown_labels = Path(path), schema, unknown_labels
        self.names: set[str] = set()
        self.empty = np.ones(len(schema.columns), dtype=bool)
        self.label: str | None = None
        self.rows = self.labelled = 0
        self.clipped = np.zeros(len(schema.columns), dtype=np.int64)
        self.first_clipped: dict[int, tuple[str, float]] = {}
        self.ids: list[np.ndarray] = []  # each piece's ids, UTF-8 bytes: a fifth of the memory of str
        self.source_of: dict[str, str] = {}  # schema column -> the table's column of another case

    def add(self, table, label_column: str | None, keep: slice | None = None) -> SchemaRows:
        """The schema's raw values, ids and labels of one piece of the table, checked value by
        value; of its rows ``keep`` only, where given (a whole table read for a slice of it)."""
        from latentlapse.xray.data import tables
        from latentlapse.xray.data.table_columns import ids_and_labels

        label = label_column if label_column in table.names else tables._label_column(table, None)
        if not self.names:
            self.source_of = _case_matches(self.schema.columns, table.names)
            self.names = set(table.names) | set(self.source_of)
            self.label = label
            self._refuse_absent()
        id_columns = [n for n in table.names if n != label and tables._looks_like_id(n)]
        ids, labels, _ = ids_and_labels(table, label, id_columns, self.unknown_labels)
        given = table.strings(label) != "" if label else np.zeros(len(table), dtype=bool)  # known or not
        column = {name: self.source_of.get(name, name) for name in self.schema.columns}
        block = {name: table.text.get(column[name], table.numbers.get(column[name])) for name in self.schema.columns
                 if column[name] in table.names}
        raw = parse_columns(self.schema, block, len(table),
                            lambda i, name: f"{self.path}: {table.rows.at(i)}, {table.positions[column[name]]}")
        self.empty &= self.schema.missing_mask(raw).all(axis=0)
        index = np.arange(len(ids))[keep] if keep is not None else np.arange(len(ids))
        self._count_clipped(raw[index], lambda i: table.rows.at(int(index[i])))
        if keep is not None:
            ids, labels, raw, given = ids[index], labels[index], raw[index], given[index]
        self.rows += len(ids)
        self.labelled += int(given.sum())
        self.ids.append(np.char.encode(np.asarray(ids, dtype=str), "utf-8"))
        return SchemaRows(ids=ids, labels=labels, raw=raw)

    def merge(self, others: "list[Scan]") -> "Scan":
        """This scan with those of the file's other slices (the same file, so the same columns);
        ``others`` must not hold this slice's scan, or its rows would count twice."""
        for other in others:
            self.names |= other.names
            self.source_of.update(other.source_of)
            self.label = self.label or other.label
            self.empty &= other.empty
            self.rows += other.rows
            self.labelled += other.labelled
            self.clipped += other.clipped
            for j, first in other.first_clipped.items():
                self.first_clipped.setdefault(j, first)
            self.ids += other.ids
        if self.unknown_labels is not None:
            self.unknown_labels.merge([other.unknown_labels for other in others])
        return self

    def finish(self) -> list[str]:
        """Notes on the whole table; an InputError for a column the model needs that held no value.
        Ids met more than once get one warning, sorted, as in training."""
        warn_repeated_ids(self.path, self.repeated)
        notes = [unlabelled_note(self.label, self.rows)] if not self.labelled else []
        if self.source_of:
            matched = ", ".join(f"{theirs} as {ours}" for ours, theirs in self.source_of.items())
            notes.append(f"columns the file has in upper case, read as the model's: {matched}")
        notes += self.unknown_labels.notes() if self.unknown_labels is not None else []
        notes += [clipped_note(name, int(self.clipped[j]), ("source", "sources"), *self.first_clipped[j])
                  for j, name in enumerate(self.schema.columns) if self.clipped[j]]
        empty = [name for j, name in enumerate(self.schema.columns) if name not in self.names or self.empty[j]]
        return notes + check_columns(self.path, self.schema, empty, self.names)

    @property
    def repeated(self) -> list[str]:
        """The ids read more than once, sorted (counted at the end: a streamed file is never whole)."""
        if not self.ids:
            return []
        unique, counts = np.unique(np.concatenate(self.ids), return_counts=True)
        return [source.decode("utf-8") for source in unique[counts > 1]]

    def _count_clipped(self, raw: np.ndarray, where) -> None:
        """Count the values <= 0 of columns fed as log10 and keep the first (``where(i)`` names
        row ``i`` of ``raw``): the model reads them as 1e-30, which the note at the end says."""
        clipped = below_log_range(self.schema, raw)
        self.clipped += clipped.sum(axis=0)
        for j in np.flatnonzero(clipped.any(axis=0)):
            if int(j) not in self.first_clipped:
                i = int(np.flatnonzero(clipped[:, j])[0])
                self.first_clipped[int(j)] = (where(i), float(raw[i, j]))

    def _refuse_absent(self) -> None:
        """Columns the file lacks are known from its header: refuse them before reading any row."""
        absent = [name for name in self.schema.columns if name not in self.names]
        check_columns(self.path, self.schema, absent, self.names)


def _case_matches(columns, names: list[str]) -> dict[str, str]:
    """Schema column -> the table's column, for the model's columns the table lacks by exact name
    but has in upper case (``FS`` for ``Fs``, as ftools and TOPCAT write FITS columns; the FITS
    standard compares TTYPEs without regard to case). Only upper case, and never a name with a
    one-letter prefix: in VizieR's names case is meaning (``b_rgeo`` and ``B_rgeo`` are the lower
    and upper bound of ``rgeo``, ``e_X`` and ``E_X`` its lower and upper error)."""
    present = set(names)
    matches = {}
    for name in columns:
        if name in present or _PREFIXED.match(name) or sum(c.upper() == name.upper() for c in columns) > 1:
            continue
        if name.upper() in present and name.upper() not in columns:
            matches[name] = name.upper()
    return matches


def _table_kind(path: Path, schema: FeatureSchema) -> str:
    from latentlapse.xray.data.chunks import file_kind

    kind = file_kind(path)
    if kind not in ("csv", "ecsv", "votable", "fits"):
        what = {"folder": "is a folder (read as PHA spectra)", "pha": "is a PHA spectrum"}.get(kind, "holds spectra")
        raise InputError(f"{path}: {what}, but the checkpoint's model was trained on a catalogue; "
                         f"give a table with the columns {', '.join(schema.columns[:6])}"
                         f"{', ...' if len(schema.columns) > 6 else ''}")
    return kind


def check_columns(path: Path, schema: FeatureSchema, empty: list[str], present: set[str]) -> list[str]:
    """Notes for ``empty``, the columns the file lacks or leaves empty; an InputError when the model
    cannot impute one.

    A column with a missing indicator is simply all-missing; without one the model never saw it
    missing as a whole, so filling it with the training median would be a guess (exit 2).
    """
    if not empty:
        return []
    cannot = [name for name in empty if name not in schema.indicators]
    if cannot:
        absent = [n for n in cannot if n not in present]
        variants = [f"{other} for {n}" for n in absent for other in sorted(present) if other.lower() == n.lower()]
        what = " and ".join(part for part in (
            f"lacks {', '.join(absent)}" + (f" (it has {', '.join(variants)}: a name of another case, matched only "
                                            f"when it is the model's name in upper case and no other of the model's "
                                            f"columns has that spelling)" if variants else "") if absent else "",
            f"has no value in {', '.join(n for n in cannot if n in present)}" if len(absent) < len(cannot) else "",
        ) if part)
        raise InputError(f"{path}: the file {what}, which the model needs and has no missing indicator for "
                         f"(the training split had no gap there); add the column's values, or retrain with "
                         f"--missing indicator on data with gaps in it, or without it (--exclude)")
    others = sorted({other for n in empty for other in present if other != n and other.lower() == n.lower()})
    unmatched = (f" (the file has {', '.join(others)}, of another case, which is not matched to them: rename it "
                 f"to the model's name if it is the same quantity)") if others else ""
    return [f"columns absent or empty in this file, read as missing (the model has indicators for them): "
            f"{', '.join(empty)}{unmatched}"]
