"""Catalogue tables: features such as fluxes, hardness ratios and magnitudes.

Quoted errors (``e_X``, ``err_X``, ``X_err``) are kept apart from the features, to scale the
augmentation noise later; missing values — common in real catalogues, e.g. no optical
counterpart — are handled by the explicit ``--missing`` policy, recorded in the notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from latentlapse.data.dataset import Dataset
from latentlapse.data.readers import warn_duplicate_ids
from latentlapse.data.tables import MIN_SPECTRAL_COLUMNS, Table, ids_and_labels
from latentlapse.errors import InputError


def catalog_dataset(table: Table, label: str | None, id_columns: list[str], features, missing: str) -> Dataset:
    """Catalogue features with their quoted errors; missing values handled by ``missing``."""
    ids, labels, notes = ids_and_labels(table, label, id_columns)
    candidates = [n for n in table.names if n in table.numbers and n != label and n not in id_columns]
    ignored = [n for n in table.names if n not in table.numbers and n != label and n not in id_columns]
    if ignored:
        notes.append(f"text columns not used as features: {', '.join(ignored)}")
    if len(candidates) >= MIN_SPECTRAL_COLUMNS:
        notes.append(f"read as a catalogue of {len(candidates)} columns: a spectra table needs a net_counts column")
    error_of = _error_columns(candidates)
    names = _chosen_features(table, features, candidates, error_of)
    X = np.column_stack([table.numeric(name, "catalogue features") for name in names])
    _check_no_inf(table, X, names)
    empty = np.isnan(X).all(axis=0)
    if empty.any():
        notes.append(f"columns empty in every row, dropped: {', '.join(np.array(names)[empty])}")
        X, names = X[:, ~empty], [n for n, e in zip(names, empty) if not e]
    if not names:
        raise InputError(f"{table.path}: every feature column is empty; choose others with --features")
    errors = np.column_stack(
        [table.numbers[error_of[n]] if n in error_of else np.full(len(table), np.nan) for n in names]
    )
    X, names, errors, keep, missing_notes = _apply_missing(table.path, X, names, errors, missing)
    warn_duplicate_ids(table.path, ids[keep])
    return Dataset(
        X=X.astype(np.float32),
        labels=labels[keep],
        ids=ids[keep],
        counts=np.full(int(keep.sum()), np.nan),
        kind="catalog",
        feature_names=tuple(names),
        errors=np.where(np.isfinite(errors), errors, np.nan).astype(np.float32) if error_of else None,
        source=str(table.path),
        notes=tuple(notes + missing_notes),
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


def _chosen_features(table: Table, features, candidates: list[str], error_of: dict[str, str]) -> list[str]:
    """The requested features (checked), or every numeric column that is not an error column."""
    if features is None:
        chosen = [n for n in candidates if n not in error_of.values()]
        if not chosen:
            raise InputError(
                f"{table.path}: no numeric feature columns; the columns are: {', '.join(table.names)}"
            )
        return chosen
    if isinstance(features, str):  # "a,b,c" as typed after --features
        features = [name.strip() for name in features.split(",") if name.strip()]
    chosen = list(dict.fromkeys(features))
    unknown = [n for n in chosen if n not in table.names]
    if unknown:
        raise InputError(
            f"{table.path}: unknown feature {', '.join(repr(n) for n in unknown)} in --features; "
            f"available: {', '.join(candidates)}"
        )
    return chosen


def _check_no_inf(table: Table, X: np.ndarray, names: list[str]) -> None:
    """Infinite feature values are refused; an empty cell is how a value is marked missing."""
    where = np.argwhere(np.isinf(X))
    if where.size:
        i, j = where[0]
        raise InputError(
            f"{table.path}: {table.rows.at(i)}, {table.positions[names[j]]}: {X[i, j]} is not a "
            f"usable value; leave the cell empty to mark it missing"
        )


def _apply_missing(path: Path, X: np.ndarray, names: list[str], errors: np.ndarray, missing: str):
    """Apply the missing-value policy; returns X, names, errors, kept-row mask and notes.

    ``indicator`` fills with the column median and adds a 0/1 ``<name>_missing`` column per
    column that had gaps; ``median`` only fills; ``drop`` removes rows with any gap.
    """
    gaps = np.isnan(X)
    per_column = gaps.sum(axis=0)
    keep = np.ones(len(X), dtype=bool)
    if not per_column.any():
        return X, names, errors, keep, []
    listed = ", ".join(f"{n} {int(c)}" for n, c in zip(names, per_column) if c)
    if missing == "drop":
        keep = ~gaps.any(axis=1)
        if not keep.any():
            raise InputError(
                f"{path}: every row misses at least one feature value (missing per column: "
                f"{listed}); use --missing indicator or median, or fewer --features"
            )
        dropped = int((~keep).sum())
        note = f"missing values, policy 'drop': {dropped} of {len(X)} rows dropped (missing per column: {listed})"
        return X[keep], names, errors[keep], keep, [note]
    X = np.where(gaps, np.nanmedian(X, axis=0), X)
    note = f"missing values, policy '{missing}': filled with the column median (missing per column: {listed})"
    if missing == "indicator":
        flagged = per_column > 0
        X = np.hstack([X, gaps[:, flagged].astype(np.float64)])
        errors = np.hstack([errors, np.full((len(X), int(flagged.sum())), np.nan)])
        names = names + [f"{n}_missing" for n, f in zip(names, flagged) if f]
        note += "; a 0/1 column <name>_missing added for each"
    return X, names, errors, keep, [note]
