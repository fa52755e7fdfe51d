"""A table read from a file, as named columns, and what every table reader takes from it.

:mod:`.tables` (CSV, ECSV, FITS, VOTable; it dispatches a table to spectra or to :mod:`.catalog`)
and :mod:`.catalog` both build on :class:`Table`; it sits below both, so neither imports the other
back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.xray.data.spectra_checks import Rows, UnknownLabels, canonical_labels
from latentlapse.xray.data.taxonomy import NO_LABEL_COLUMN, UNLABELLED
from latentlapse.core.errors import InputError

LABEL_NAMES = ("true_class", "label", "class")
MIN_SPECTRAL_COLUMNS = 50


@dataclass
class Table:
    """Named columns read from a file, with enough bookkeeping for precise messages.

    ``numbers`` holds every column that is mostly numeric (float64, NaN where missing; 2-D for
    vector columns; booleans as 1/0, named in ``flags``); ``text`` holds the strings of the other
    columns, and of all columns for CSV; ``bad`` the first non-numeric token (row index, token)
    of a mostly numeric column.
    """

    path: Path
    names: list[str]
    numbers: dict[str, np.ndarray]
    text: dict[str, Sequence[str]]
    rows: Rows
    positions: dict[str, str]
    bad: dict[str, tuple[int, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    first_index: int = 0  # the first row's place among the file's data rows (a piece of a file)
    flags: frozenset[str] = frozenset()  # boolean columns (FITS, ECSV, VOTable), held in numbers as 1/0

    def __len__(self) -> int:
        return len(self.rows.numbers)

    def strings(self, name: str) -> np.ndarray:
        """The column as stripped strings, ``""`` where a value is missing."""
        if name in self.text:
            return np.array([value.strip() for value in self.text[name]], dtype=str)
        values = self.numbers[name]
        return np.array([_number_text(v) for v in values], dtype=str)

    def numeric(self, name: str, purpose: str) -> np.ndarray:
        """A numeric 1-D column, or the error that says which cell is not a number."""
        if name in self.bad:
            index, token = self.bad[name]
            raise InputError(
                f"{self.path}: {self.rows.at(index)}, {self.positions[name]}: '{token}' is not a "
                f"number; {purpose} must be numeric"
            )
        if name not in self.numbers:
            raise InputError(
                f"{self.path}: {self.positions[name]} holds text, not numbers; {purpose} must be "
                f"numeric, choose other columns"
            )
        return self.numbers[name]


def ids_and_labels(
    table: Table, label: str | None, id_columns: list[str], unknown_labels: UnknownLabels | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Source ids (from the first id column, else ``row<N>``), canonical labels, and notes;
    labels of no known class are refused, or counted in ``unknown_labels`` (see
    :func:`~latentlapse.xray.data.spectra_checks.canonical_labels`)."""
    n = len(table)
    notes = list(table.notes)
    text_ids = [c for c in id_columns if c in table.text and c not in table.numbers]
    chosen = (text_ids or id_columns or [None])[0]
    ids = table.strings(chosen) if chosen else np.array([f"row{table.first_index + i + 1}" for i in range(n)])
    if label is None:
        notes.append(unlabelled_note(None, n))
        return ids, np.full(n, UNLABELLED), notes
    raw = table.strings(label)
    labels = canonical_labels(table.path, raw, table.rows, unknown_labels)
    if not (raw != "").any():
        notes.append(unlabelled_note(label, n))
    return ids, labels, notes


def unlabelled_note(label: str | None, n: int) -> str:
    """The note for a table none of whose ``n`` sources has a label: no label column (``label``
    None), or one empty in every row."""
    if label is None:
        return f"{NO_LABEL_COLUMN} ({', '.join(LABEL_NAMES)}): all {n} sources read as unlabelled"
    return f"label column {label} is empty in every row: all {n} sources read as unlabelled"


def _number_text(value: float) -> str:
    """A number as an id or label string: ``""`` when missing, integers without a decimal point."""
    if np.isnan(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
