"""Catalogue tables: features such as fluxes, hardness ratios and magnitudes.

The data set keeps the *raw* values, NaN where missing: imputation, missing indicators, log10
and scaling are fitted on the training split only (:mod:`.schema`), never on the whole file.
Quoted errors (``e_X``, ``err_X``, ``X_err``) are kept apart from the features, to scale the
augmentation noise later. Default features leave out position and bookkeeping columns
(:mod:`.feature_choice`); every decision and data problem is recorded in the notes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.xray.data import grid
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.feature_choice import IDENTIFIER, choose_columns, flag_values, likely_placeholders
from latentlapse.xray.data.spectra_checks import UnknownLabels, warn_duplicate_ids
from latentlapse.xray.data.schema import FLAG, NUMBER, unusable, unusable_text
from latentlapse.xray.data.table_columns import MIN_SPECTRAL_COLUMNS, Table, ids_and_labels
from latentlapse.core.errors import InputError

DROP_NOTE = "missing values, policy 'drop'"


def catalog_dataset(
    table: Table, label: str | None, id_columns: list[str], features, missing: str,
    exclude: Sequence[str] = (), placeholders: Sequence[float] = (),
    unknown_labels: UnknownLabels | None = None,
) -> Dataset:
    """Raw catalogue features (NaN where missing) with their quoted errors and types.

    ``features`` (``--features``) are used as given; otherwise the numeric and flag columns that
    describe the source. Flags (text t/f, y/n, true/false; booleans of FITS, ECSV, VOTable) are
    read as 1/0, of type flag whatever the format, so one model reads every format of a
    catalogue. ``exclude`` removes columns, ``placeholders`` are values read as missing;
    ``missing == "drop"`` removes rows with any gap. Labels of no known class are refused, or
    counted in ``unknown_labels`` and read as unlabelled.
    """
    ids, labels, notes = ids_and_labels(table, label, id_columns, unknown_labels)
    numeric = [n for n in table.names if n in table.numbers and n != label and n not in id_columns]
    arrays = [n for n in numeric if table.numbers[n].ndim == 2]
    numeric = [n for n in numeric if n not in arrays]
    text = [n for n in table.names if n not in table.numbers and n != label and n not in id_columns]
    if len(numeric) >= MIN_SPECTRAL_COLUMNS:
        notes.append(f"read as a catalogue of {len(numeric)} columns: a spectra table has a counts column (net_counts, "
                     f"counts) beside {grid.N_BINS} or bin-named (v1, E0.5125) columns, or a vector column of spectra")
    error_of = _error_columns(numeric)
    requested = _requested(features)
    _check_known(table, requested, exclude, numeric + arrays)
    _refuse_arrays(table, requested, arrays)
    # text columns of t/f, y/n, true/false only are flags (1/0), as the booleans of FITS and ECSV are
    text_flags = {n for n in text if flag_values(table.strings(n)) is not None}
    candidates = [n for n in table.names if n in text_flags or n in numeric and n not in error_of.values()]
    if requested is not None:
        candidates += [n for n in table.names if n in requested and n not in candidates]
    names, left_out = choose_columns(candidates, requested, exclude)
    left_out += [(n, IDENTIFIER) for n in id_columns]
    left_out += [(n, f"quoted error of {f}") for f, n in error_of.items()]
    left_out += [(n, "text") for n in text if n not in candidates and (requested is None or n not in requested)]
    left_out += [(n, _array_reason(table.numbers[n].shape[1])) for n in arrays if n not in exclude]
    if not names:
        raise InputError(f"{table.path}: no feature columns left (the numeric columns are {', '.join(numeric) or 'none'}); "
                         f"name the columns to use with --features")
    X, types = _feature_values(table, names)
    X = _without_placeholders(X, names, placeholders, notes)
    notes.extend(_placeholder_notes(X, names, types))
    empty = np.isnan(X).all(axis=0)
    if empty.any():
        notes.append(f"columns empty in every row, dropped: {', '.join(np.array(names)[empty])}")
        left_out += [(n, "empty in every row") for n in np.array(names)[empty]]
        X, names, types = X[:, ~empty], [n for n, e in zip(names, empty) if not e], [t for t, e in zip(types, empty) if not e]
    if not names:
        raise InputError(f"{table.path}: every feature column is empty; choose others with --features")
    errors = np.column_stack(
        [table.numbers[error_of[n]] if n in error_of else np.full(len(table), np.nan) for n in names]
    )
    keep = np.ones(len(X), dtype=bool)
    if missing == "drop":
        keep = _drop_incomplete(table.path, X, names, labels, notes)
    else:
        notes.extend(_missing_summary(X, names, missing))
    warn_duplicate_ids(table.path, ids[keep])
    return Dataset(
        X=X[keep].astype(np.float32),
        labels=labels[keep],
        ids=ids[keep],
        counts=np.full(int(keep.sum()), np.nan),
        kind="catalog",
        feature_names=tuple(names),
        errors=np.where(np.isfinite(errors[keep]), errors[keep], np.nan).astype(np.float32) if error_of else None,
        source=str(table.path),
        notes=tuple(notes),
        feature_types=tuple(types),
        left_out=tuple(left_out),
        rows=replace(table.rows, numbers=table.rows.numbers[keep]),
    )


def _error_columns(names: list[str]) -> dict[str, str]:
    """Feature name -> its quoted-error column (``e_X``, ``err_X`` or ``X_err`` beside ``X``)."""
    present = set(names)
    error_of: dict[str, str] = {}
    for name in names:
        for pattern in (r"e_(.+)", r"err_(.+)", r"(.+)_err"):
            match = re.fullmatch(pattern, name, flags=re.IGNORECASE)
            if match and match.group(1) in present and match.group(1) not in error_of:
                error_of[match.group(1)] = name
                break
    return error_of


def _requested(features) -> list[str] | None:
    """``--features`` as a list of names (``"a,b,c"`` as typed is split), or None for the default."""
    if features is None:
        return None
    if isinstance(features, str):
        features = [name.strip() for name in features.split(",") if name.strip()]
    return list(dict.fromkeys(features))


def _check_known(table: Table, requested, exclude: Sequence[str], numeric: list[str]) -> None:
    """Every name in --features and --exclude is a column of the table; none is in both."""
    for flag, names in (("--features", requested or []), ("--exclude", exclude)):
        unknown = [n for n in names if n not in table.names]
        if unknown:
            raise InputError(
                f"{table.path}: unknown column {', '.join(repr(n) for n in unknown)} in {flag}; "
                f"available: {', '.join(numeric)}"
            )
    both = [n for n in exclude if requested and n in requested]
    if both:
        raise InputError(f"{table.path}: {', '.join(both)} named in both --features and --exclude; keep one")


def _refuse_arrays(table: Table, requested, arrays: list[str]) -> None:
    """A column named in --features must hold one value per row, not an array."""
    named = [n for n in arrays if requested and n in requested]
    if named:
        raise InputError(f"{table.path}: {table.positions[named[0]]} holds {table.numbers[named[0]].shape[1]} values "
                         f"per row; a catalogue feature is one value per row: split the array into columns, or "
                         f"leave it out of --features")


def _feature_values(table: Table, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The columns as floats (NaN where missing) and their types; t/f or y/n text is a flag (1/0)."""
    columns, types = [], []
    for name in names:
        if name in table.numbers:
            values, kind = table.numeric(name, "catalogue features"), FLAG if name in table.flags else NUMBER
        else:
            values, kind = flag_values(table.strings(name)), FLAG
            if values is None:
                raise InputError(
                    f"{table.path}: {table.positions[name]} holds text, not numbers or flags (t/f, y/n); "
                    f"catalogue features must be numeric, choose other columns"
                )
        where = np.flatnonzero(unusable(values))
        if where.size:
            i = int(where[0])
            raise InputError(f"{table.path}: {table.rows.at(i)}, {table.positions[name]}: {unusable_text(values[i])}")
        columns.append(np.asarray(values, dtype=np.float64))
        types.append(kind)
    return np.column_stack(columns), types


def _without_placeholders(X: np.ndarray, names: list[str], placeholders: Sequence[float], notes: list[str]) -> np.ndarray:
    """``--placeholder`` values read as missing, with a note of how many per column."""
    if not placeholders:
        return X
    X = X.copy()
    rounded = X.astype(np.float32)
    hits = np.zeros(X.shape, dtype=bool)
    for value in placeholders:
        hits |= rounded == np.float32(value)
    X[hits] = np.nan
    per_column = hits.sum(axis=0)
    listed = ", ".join(f"{n} {int(c)}" for n, c in zip(names, per_column) if c) or "none found"
    notes.append(f"--placeholder {', '.join(f'{v:g}' for v in placeholders)} read as missing ({listed})")
    return X


def _placeholder_notes(X: np.ndarray, names: list[str], types: list[str]) -> list[str]:
    """One note per numeric column with a value that looks like a filler for "missing"."""
    notes = []
    for j, (name, kind) in enumerate(zip(names, types)):
        if kind != NUMBER:
            continue
        for value, rows in likely_placeholders(X[:, j]):
            notes.append(
                f"likely placeholder: {name} is exactly {value!r} in {rows} of {int(np.isfinite(X[:, j]).sum())} "
                f"rows; if it stands for 'no measurement', pass --placeholder {value!r} to read it as missing"
            )
    return notes


def _missing_summary(X: np.ndarray, names: list[str], missing: str) -> list[str]:
    """A note of the gaps per column and what the policy will do with them."""
    per_column = np.isnan(X).sum(axis=0)
    if not per_column.any():
        return []
    listed = ", ".join(f"{n} {int(c)}" for n, c in zip(names, per_column) if c)
    action = "filled with the training split's median" + (
        ", plus a 0/1 <name>_missing input for each column with a gap in the training split" if missing == "indicator" else ""
    )
    return [f"missing values, policy '{missing}': {action} (missing per column: {listed})"]


def _drop_incomplete(path: Path, X: np.ndarray, names: list[str], labels: np.ndarray, notes: list[str]) -> np.ndarray:
    """Rows with any gap removed; the note says how many per class (it is repeated in a class-size error)."""
    gaps = np.isnan(X)
    keep = ~gaps.any(axis=1)
    per_column = gaps.sum(axis=0)
    if keep.all():
        return keep
    listed = ", ".join(f"{n} {int(c)}" for n, c in zip(names, per_column) if c)
    if not keep.any():
        raise InputError(
            f"{path}: every row misses at least one feature value (missing per column: "
            f"{listed}); use --missing indicator or median, or fewer --features"
        )
    values, dropped = np.unique(labels[~keep], return_counts=True)
    kept = dict(zip(*np.unique(labels[keep], return_counts=True)))
    per_class = ", ".join(f"{v or 'unlabelled'} {int(c)} of {int(c) + int(kept.get(v, 0))}" for v, c in zip(values, dropped))
    notes.append(f"{DROP_NOTE}: {int((~keep).sum())} of {len(X)} rows dropped (per class: {per_class}; "
                 f"missing per column: {listed})")
    return keep


def _array_reason(length: int) -> str:
    """Why a vector column is not a feature; a long one may be spectra without their counts."""
    if length < MIN_SPECTRAL_COLUMNS:
        return f"array column ({length} values per row)"
    return (f"array column ({length} values per row; read as spectra only beside a net-counts column "
            f"named net_counts or counts)")
