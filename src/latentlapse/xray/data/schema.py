"""The feature schema of a catalogue model: which columns it reads and how it turns them into inputs.

A :class:`FeatureSchema` is fitted on the *training split only* — imputation medians, which
columns get a ``<col>_missing`` indicator, which are fed as log10, and the standardisation — and
travels inside every checkpoint (as plain JSON types, so checkpoints still load with
``weights_only=True``). ``predict``, ``visualize``, ``--resume`` and cross-validation all turn
raw values into model inputs through :meth:`FeatureSchema.transform`, one row at a time in
effect: a source's inputs never depend on the other rows of its file.

Raw values are parsed with the schema's own types by :func:`parse_columns`, a function over one
block of rows, so a reader may feed a file chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core.errors import InputError

NUMBER, FLAG = "number", "flag"
MISSING_SUFFIX = "_missing"
# Columns that are strictly positive and span more than this ratio (fluxes) are fed as log10.
LOG_RANGE_RATIO = 100.0
# log10_notes names a column kept linear by values <= 0 when this share of its values lies in the
# lowest 1 % of its linear range (86 % for the Chandra catalogue's soft flux; 0-1 % for its
# probability, magnitude and parallax columns, which hold real zeros and negative values).
SQUEEZED_SHARE = 0.5
MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "--"})
FLAG_VALUES = {"t": 1.0, "true": 1.0, "y": 1.0, "yes": 1.0, "1": 1.0,
               "f": 0.0, "false": 0.0, "n": 0.0, "no": 0.0, "0": 0.0}


@dataclass(frozen=True)
class FeatureSchema:
    """What a catalogue model reads and the statistics of its training split.

    Attributes
    ----------
    columns : the file columns the model reads, in input order.
    types : ``number`` or ``flag`` (t/f, y/n text read as 1/0), per column.
    medians : the training split's median of each column; a missing value takes it.
    indicators : columns that also feed a 0/1 ``<col>_missing`` input (the missing policy
        ``indicator`` gives one to each column with a gap in the training split).
    log10 : per model input, whether it is fed as log10 (strictly positive over the training
        split and spanning more than ``LOG_RANGE_RATIO``).
    mean, std : per model input, the standardisation after the log10 (training split).
    placeholders : values treated as missing wherever they appear (``--placeholder``).
    missing : the missing-value policy the model was trained with.
    left_out : columns of the training file not used, with the reason.
    """

    columns: tuple[str, ...]
    types: tuple[str, ...]
    medians: tuple[float, ...]
    indicators: tuple[str, ...]
    log10: tuple[bool, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    placeholders: tuple[float, ...] = ()
    missing: str = "indicator"
    left_out: tuple[tuple[str, str], ...] = field(default=())

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model's inputs: the columns, then one ``<col>_missing`` per indicator."""
        return self.columns + tuple(name + MISSING_SUFFIX for name in self.indicators)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Model inputs (float32) of raw values (n, len(columns)), NaN where missing.

        Placeholders become missing, a missing value takes the training median, and each
        indicator column is 1 where its value was missing. Row by row: no statistic of ``raw``
        itself is used. (log10 and standardisation are applied by the model's input scaler,
        which holds ``log10``, ``mean`` and ``std``.)
        """
        values = _as_raw(raw, len(self.columns))
        gaps = self.missing_mask(values)
        filled = np.where(gaps, np.asarray(self.medians, dtype=np.float64), values)
        index = [self.columns.index(name) for name in self.indicators]
        return np.hstack([filled, gaps[:, index].astype(np.float64)]).astype(np.float32)

    def missing_mask(self, raw: np.ndarray) -> np.ndarray:
        """True where a raw value is missing (NaN or one of the placeholders)."""
        values = _as_raw(raw, len(self.columns))
        gaps = np.isnan(values)
        for value in self.placeholders:
            gaps |= values == np.float32(value)
        return gaps

    def to_dict(self) -> dict:
        """Plain-JSON form for checkpoints and ``run_metadata.json``."""
        return {
            "columns": list(self.columns),
            "types": list(self.types),
            "medians": [float(v) for v in self.medians],
            "indicators": list(self.indicators),
            "inputs": list(self.input_names),
            "log10": [bool(v) for v in self.log10],
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "placeholders": [float(v) for v in self.placeholders],
            "missing": self.missing,
            "left_out": {name: reason for name, reason in self.left_out},
        }

    @classmethod
    def from_dict(cls, values: Mapping) -> "FeatureSchema":
        """Rebuild a schema stored by :meth:`to_dict`."""
        return cls(
            columns=tuple(values["columns"]),
            types=tuple(values["types"]),
            medians=tuple(float(v) for v in values["medians"]),
            indicators=tuple(values["indicators"]),
            log10=tuple(bool(v) for v in values["log10"]),
            mean=tuple(float(v) for v in values["mean"]),
            std=tuple(float(v) for v in values["std"]),
            placeholders=tuple(float(v) for v in values.get("placeholders", ())),
            missing=str(values.get("missing", "indicator")),
            left_out=tuple((str(k), str(v)) for k, v in dict(values.get("left_out", {})).items()),
        )


def from_checkpoint(payload: Mapping) -> FeatureSchema | None:
    """The schema a checkpoint carries (None for a spectra model, or no checkpoint)."""
    if not payload or not payload.get("feature_schema"):
        return None
    return FeatureSchema.from_dict(payload["feature_schema"])


def fit_schema(
    raw: np.ndarray,
    columns: Sequence[str],
    train: np.ndarray,
    *,
    types: Sequence[str] | None = None,
    missing: str = "indicator",
    placeholders: Sequence[float] = (),
    left_out: Sequence[tuple[str, str]] = (),
) -> FeatureSchema:
    """Fit a schema on the training rows ``train`` of ``raw`` (n, len(columns)), NaN where missing.

    Only those rows are looked at: medians, indicators (columns with a gap among them, policy
    ``indicator``), the log10 choice and the standardisation. A column without a single value
    in the training rows is left out (and listed in ``left_out``).
    """
    columns = list(columns)
    types = list(types) if types is not None else [NUMBER] * len(columns)
    values = _as_raw(raw, len(columns))[np.asarray(train)]
    base = FeatureSchema(tuple(columns), tuple(types), (0.0,) * len(columns), (), (), (), (),
                         tuple(float(v) for v in placeholders), missing)
    gaps = base.missing_mask(values)
    present = ~gaps.all(axis=0)
    left = list(left_out) + [(name, "no value in the training split") for name, p in zip(columns, present) if not p]
    keep = np.flatnonzero(present)
    columns, types = [columns[j] for j in keep], [types[j] for j in keep]
    values, gaps = values[:, keep], gaps[:, keep]
    observed = np.where(gaps, np.nan, values)
    medians = np.nanmedian(observed, axis=0) if len(keep) else np.zeros(0)
    indicators = [name for name, g in zip(columns, gaps.any(axis=0)) if g] if missing == "indicator" else []
    low, high = np.nanmin(observed, axis=0), np.nanmax(observed, axis=0)
    log_columns = (low > 0) & (high > LOG_RANGE_RATIO * np.where(low > 0, low, 1.0))
    log10 = np.concatenate([log_columns, np.zeros(len(indicators), dtype=bool)])
    schema = FeatureSchema(tuple(columns), tuple(types), tuple(float(m) for m in medians), tuple(indicators),
                           tuple(bool(v) for v in log10), (), (), base.placeholders, missing, tuple(left))
    mean, std = scaling_statistics(schema.transform(np.where(gaps, np.nan, values)), log10)
    return replace(schema, mean=tuple(mean.tolist()), std=tuple(std.tolist()))


def log10_notes(schema: FeatureSchema, raw: np.ndarray, train: np.ndarray, where) -> list[str]:
    """Notes on the values ``<= 0`` of a freshly fitted schema's rows ``raw``, each with how many
    rows, the first (``where(i)`` names row ``i``, such as "line 18") and what it costs the model:
    per number column that they keep off log10 in the training rows ``train``, although its
    positive values span more than ``LOG_RANGE_RATIO``; and per column fed as log10, those
    outside the training rows (:func:`clipped_note`).

    One such training row decides for the whole column: kept as it is, since zeros and negative
    values are often real (a probability of 0, a bright star's negative magnitude, a parallax).
    Such a column is named only where the linear scale squeezes at least ``SQUEEZED_SHARE`` of
    its values into the lowest 1 % of its range (a flux), where log10 would have mattered.
    """
    index = np.arange(len(raw))[np.asarray(train)]
    clipped = below_log_range(schema, raw)
    clipped[index] = False
    notes = []
    for j in np.flatnonzero(clipped.any(axis=0)):
        hits = np.flatnonzero(clipped[:, j])
        notes.append(clipped_note(schema.columns[j], hits.size, ("row", "rows"), where(int(hits[0])), raw[hits[0], j],
                                  " outside the training split"))
    values = _as_raw(raw, len(schema.columns))[index]
    observed = np.where(schema.missing_mask(values), np.nan, values)
    for j, name in enumerate(schema.columns):
        column = observed[:, j]
        positive = column[column > 0]
        bad = np.flatnonzero(column <= 0)
        if schema.log10[j] or schema.types[j] != NUMBER or not bad.size or not positive.size:
            continue
        low, high = float(positive.min()), float(positive.max())
        if high <= LOG_RANGE_RATIO * low:
            continue
        first, seen = int(bad[0]), column[np.isfinite(column)]
        bottom = float(np.mean(seen <= seen.min() + 0.01 * (seen.max() - seen.min())))
        if bottom < SQUEEZED_SHARE:  # the linear scale loses little: magnitudes, probabilities, parallaxes
            continue
        rows = f"{bad.size} of {seen.size} training rows {'hold' if bad.size > 1 else 'holds'}"
        notes.append(
            f"{name} is fed linearly, not as log10: {rows} a value <= 0 (the first: {where(int(index[first]))}, "
            f"{column[first]:g}), though its positive values span {low:.3g} to {high:.3g}; on the linear scale "
            f"{bottom:.0%} of its values lie in the lowest 1% of its range; if those values are errors, fix them or "
            f"leave the cells empty (read as missing)"
        )
    return notes


def below_log_range(schema: FeatureSchema, raw: np.ndarray) -> np.ndarray:
    """Where a value (not missing) of a column fed as log10 is ``<= 0``: the input scaler clips it
    to 1e-30 (log10 -30), far below every value the model was trained on."""
    values = _as_raw(raw, len(schema.columns))
    logged = np.asarray(schema.log10[:len(schema.columns)], dtype=bool)
    return (values <= 0) & logged & ~schema.missing_mask(values)


def clipped_note(name: str, count: int, noun: tuple[str, str], first: str, value: float, scope: str = "") -> str:
    """The note for ``count`` rows (``noun``: singular and plural, e.g. "source", "sources";
    ``scope`` follows it) with a value <= 0 in column ``name``, which the model takes as log10;
    ``first`` names where the first is."""
    rows = f"{count} {noun[0]}{scope} holds" if count == 1 else f"{count} {noun[1]}{scope} hold"
    return (f"{name} is fed as log10, but {rows} a value <= 0 (the first: {first}, {float(value):g}), "
            f"which the model reads as 1e-30, far below every training value; fix those values, or leave the "
            f"cells empty (read as missing)")


def scaling_statistics(X: np.ndarray, log10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1 where constant) of ``X`` after log10 of the masked columns."""
    mask = np.asarray(log10, dtype=bool)
    Z = np.where(mask, np.log10(np.clip(X, 1e-30, None)), X).astype(np.float64)
    std = Z.std(axis=0)
    return Z.mean(axis=0), np.where(std > 0, std, 1.0)


def parse_columns(
    schema: FeatureSchema, block: Mapping[str, object], n_rows: int, where,
) -> np.ndarray:
    """Raw values (n_rows, len(columns)) of one block of rows, parsed with the schema's types.

    ``block`` maps a column name to its values in these rows: strings (CSV), a numeric or
    string array (FITS, VOTable), or None when the file lacks the column (all missing). Other
    columns of the file are never looked at. ``where(i, name)`` says where row ``i`` of the
    block sits in the file (``"cat.csv: line 19, column 16 (MW_MW)"``), for the one-line error
    about a value that is neither a number (or flag) nor empty.
    """
    out = np.full((n_rows, len(schema.columns)), np.nan)
    for j, (name, kind) in enumerate(zip(schema.columns, schema.types)):
        values = block.get(name)
        if values is not None:
            out[:, j] = _parse(values, kind, name, where)
    return out


def _parse(values, kind: str, name: str, where) -> np.ndarray:
    """One column as floats (NaN where missing); a token that is neither is an InputError."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf" and array.ndim == 1:
        parsed = array.astype(np.float64)
    else:
        parsed = np.full(len(array), np.nan)
        for i, token in enumerate(array.tolist()):
            text = str(token).strip()
            if text.lower() in MISSING_TOKENS:
                continue
            try:
                parsed[i] = FLAG_VALUES[text.lower()] if kind == FLAG else float(text)
            except (KeyError, ValueError):
                expected = "t/f, y/n, true/false or 1/0" if kind == FLAG else "a number"
                raise InputError(f"{where(i, name)}: '{text}' is not {expected}, as the model's column {name} "
                                 f"must be; fix the value or leave the cell empty to mark it missing") from None
    bad = np.flatnonzero(unusable(parsed))
    if bad.size:
        raise InputError(f"{where(int(bad[0]), name)}: {unusable_text(parsed[bad[0]])}")
    return parsed


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model keeps its inputs as float32


def unusable(values: np.ndarray) -> np.ndarray:
    """Where a catalogue value can be neither used nor read as missing: infinite, or beyond
    float32 (it would turn infinite, and the network's output NaN, on the way in)."""
    values = np.asarray(values, dtype=np.float64)
    return np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)


def unusable_text(value: float) -> str:
    """The message for an :func:`unusable` value (after "file: line, column")."""
    reason = "" if np.isinf(value) else f" (beyond ±{FLOAT32_MAX:.3g}, the largest value the model can hold)"
    return f"{value:g} is not a usable value{reason}; fix it, or leave the cell empty to mark it missing"


def _as_raw(raw: np.ndarray, k: int) -> np.ndarray:
    """Raw values as float64 rounded through float32, so every path sees the same numbers."""
    values = np.asarray(raw, dtype=np.float32).astype(np.float64)
    if values.ndim != 2 or values.shape[1] != k:
        raise ValueError(f"expected raw values of shape (n, {k}), got {values.shape}")
    return values
