"""Tables of spectra or catalogue features: CSV (no extra needed; read by :mod:`.csv_tables`),
ECSV, FITS and VOTable.

Every table becomes a :class:`Table` of named columns first, then a Dataset. A table holds
spectra when it has a vector column of 380 values (or of at least 50 beside a counts column or
under a spectrum's name), or a counts column beside bin-named columns only (v1…, E0.5125…, as
``write_dataset`` writes them) or beside exactly 380 other numeric columns, or beside at least 50
of them, half bin-named or the counts column called net_counts. Any other table, and any given ``--features`` or ``--exclude``, is a
catalogue (see :mod:`.catalog`): fluxes, hardness ratios, magnitudes, with their quoted errors
kept apart and missing values handled by an explicit policy recorded in the notes.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.xray.data import grid
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.spectra_checks import Rows, UnknownLabels, bin_names, require_astropy, spectra_dataset
from latentlapse.xray.data.table_columns import LABEL_NAMES, MIN_SPECTRAL_COLUMNS, Table, ids_and_labels
from latentlapse.core.errors import InputError, UsageError

log = logging.getLogger(__name__)

NET_COUNTS_NAMES = ("net_counts", "netcounts", "net_cts")
COUNTS_NAMES = NET_COUNTS_NAMES + ("counts", "cts")
_ID_TOKENS = {"id", "name", "src", "source", "designation"} | {
    a + b for a in ("src", "source", "obj", "object") for b in ("id", "name")
}
_BIN_NAME = re.compile(r"v\d+|E\d+(\.\d+)?")
_SHOWN = 5  # how many absent bin columns a message names before "..."
_ASTROPY_FORMATS = {"ecsv": "ascii.ecsv", "votable": "votable", "fits": "fits"}


def read_astropy(path: Path, kind: str) -> Table:
    """Read an ECSV, VOTable or FITS table with astropy (the ``fits`` extra)."""
    require_astropy(f"reading {kind.upper()} files")
    from astropy.table import Table as AstropyTable
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            # a VOTable's FIELD names, not its IDs (which mangle "CSCv2_S/N" to "CSCv2_S_N"), as in the CSV
            options = {"fits": {"hdu": _fits_table_index(path)} if kind == "fits" else {},
                       "votable": {"use_names_over_ids": True}}.get(kind, {})
            table = AstropyTable.read(path, format=_ASTROPY_FORMATS[kind], **options)
        except InputError:
            raise
        except Exception as exc:  # astropy raises many types for malformed files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot be read as {kind.upper()} ({reason}); check the file") from None
    if len(table) == 0:
        raise InputError(f"{path}: the table has columns but no rows; add one source per row")
    return astropy_table(path, table, first_row=1)


def _fits_table_index(path: Path) -> int:
    """The extension of the sources' table (see :func:`latentlapse.xray.data.fits_tables.table_hdu`)."""
    from astropy.io import fits

    from latentlapse.xray.data.fits_tables import table_hdu

    with fits.open(path, memmap=True) as hdus:
        return table_hdu(hdus, path)[0]


def astropy_table(path: Path, table, first_row: int) -> Table:
    """Our :class:`Table` of an astropy table whose first row is row ``first_row`` of the file."""
    numbers, text = {}, {}
    for name in table.colnames:
        column = table[name]
        data = np.ma.getdata(column)
        mask = np.ma.getmaskarray(column)
        if data.dtype.kind in "biuf":
            values = data.astype(np.float64).reshape(len(table), -1)
            values[mask.reshape(values.shape)] = np.nan
            numbers[name] = values[:, 0] if values.shape[1] == 1 and data.ndim == 1 else values
        else:
            strings = np.char.strip(data.astype(str))
            text[name] = np.where(mask, "", strings) if mask.shape == strings.shape else strings
    names = list(table.colnames)
    rows = Rows("row", np.arange(first_row, first_row + len(table)))
    flags = frozenset(n for n in names if np.ma.getdata(table[n]).dtype.kind == "b" and n in numbers)
    return Table(path, names, numbers, text, rows, {name: f"column {name}" for name in names},
                 first_index=first_row - 1, flags=flags)


def table_dataset(
    table: Table, *, label_column: str | None, features: Sequence[str] | None, missing: str,
    exclude: Sequence[str] = (), placeholders: Sequence[float] = (), unknown_labels: UnknownLabels | None = None,
) -> Dataset:
    """A spectra Dataset when the table holds spectra, else a catalogue Dataset; labels of no
    known class are refused, or counted in ``unknown_labels`` and read as unlabelled."""
    label = _label_column(table, label_column)
    id_columns = [n for n in table.names if n != label and _looks_like_id(n)]
    counts = next((n for n in table.names if n.lower() in COUNTS_NAMES and n != label), None)
    vectors = [n for n, v in table.numbers.items() if v.ndim == 2]
    spectrum = next((n for n in vectors if _spectrum_vector(n, table.numbers[n].shape[1], counts is not None)), None)
    others = [
        n
        for n in table.names
        if n in table.numbers and n not in (label, counts, *id_columns, *vectors)
    ]
    catalogue_options = features is not None or bool(exclude)
    if not catalogue_options and (spectrum or (counts is not None and _spectral(others, counts))):
        if placeholders:
            raise UsageError(f"{table.path}: --placeholder applies to catalogue tables, but this table holds spectra; "
                             f"drop it")
        if counts is None:
            raise InputError(
                f"{table.path}: spectra in column {spectrum} but no net-counts column; add one named net_counts"
            )
        values = spectrum or others
        return _spectra(table, values, counts, label, id_columns, unknown_labels)
    from latentlapse.xray.data.catalog import catalog_dataset  # it builds on this module's Table

    return catalog_dataset(table, label, id_columns, features, missing, exclude, placeholders, unknown_labels)


def _spectral(columns: list[str], counts: str) -> bool:
    """Beside a counts column, wide columns are spectra when they are all bin-named (v1, E0.5125),
    or are exactly the standard grid's 380, or number at least 50 and either half of them are
    bin-named or the counts column is called net counts: a catalogue often has more than 50
    columns and one of plain ``counts``."""
    if not columns:
        return False
    named = sum(bool(_BIN_NAME.fullmatch(n)) for n in columns)
    if named == len(columns) or len(columns) == grid.N_BINS:
        return True
    return len(columns) >= MIN_SPECTRAL_COLUMNS and (2 * named >= len(columns) or counts.lower() in NET_COUNTS_NAMES)


def _spectrum_vector(name: str, length: int, beside_counts: bool) -> bool:
    """A vector column holds spectra when it has the standard grid's bins, or at least 50 values
    beside a counts column or under a spectrum's name (SPECTRUM, spec, counts, ...); a short
    array (aperture fluxes, one value per band) is a catalogue column."""
    spectrum_name = "spec" in name.lower() or name.lower() in COUNTS_NAMES + ("rate", "pha", "values")
    return length == grid.N_BINS or (length >= MIN_SPECTRAL_COLUMNS and (spectrum_name or beside_counts))


def _label_column(table: Table, requested: str | None) -> str | None:
    """The label column: the one requested, else one named True_Class, label or class (in that order)."""
    if requested is None:
        by_name = {n.lower(): n for n in reversed(table.names)}
        return next((by_name[name] for name in LABEL_NAMES if name in by_name), None)
    if requested in table.names:
        return requested
    folded = [n for n in table.names if n.lower() == requested.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"{table.path}: no column '{requested}' for --label_column; the columns are: {', '.join(table.names)}"
    )


def _looks_like_id(name: str) -> bool:
    """Column names such as src_id, CSCv2_name, Source, ObjID (words split at _ and case changes)."""
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)
    return bool({word.lower() for word in words} & _ID_TOKENS)


def _spectra(
    table: Table, values: str | list[str], counts: str, label: str | None, id_columns: list[str],
    unknown_labels: UnknownLabels | None,
) -> Dataset:
    """Spectra from one vector column or from wide per-bin columns."""
    ids, labels, notes = ids_and_labels(table, label, id_columns, unknown_labels)
    if isinstance(values, str):
        matrix = table.numbers[values]
        where = [f"element {j + 1} of column {values}" for j in range(matrix.shape[1])]
        names = None
    else:
        values = _bin_order(table, values, notes)
        matrix = np.column_stack([table.numeric(name, "spectra values") for name in values])
        where, names = [table.positions[name] for name in values], values
        _refuse_missing_cells(table, values, "spectra values")
    net = table.numeric(counts, "net counts")
    _refuse_missing_cells(table, [counts], "net counts")
    return spectra_dataset(
        table.path, matrix, net, ids, labels, table.rows, where, feature_names=names, notes=notes
    )


def _refuse_missing_cells(table: Table, names: list[str], purpose: str) -> None:
    """A spectrum has no missing values: the first cell (in file order) of a text table that
    is empty or a missing-value token such as ``--`` is named as the text it is, not as NaN."""
    first: tuple[int, int, str] | None = None
    for j, name in enumerate(names):
        if name not in table.text:
            continue
        for i in np.flatnonzero(np.isnan(table.numbers[name])):
            token = str(table.text[name][i]).strip()
            if token.lower() != "nan":
                first = min(first, (int(i), j, token)) if first else (int(i), j, token)
                break
    if first is not None:
        i, j, token = first
        what = "the cell is empty" if not token else f"'{token}' is not a number"
        raise InputError(f"{table.path}: {table.rows.at(i)}, {table.positions[names[j]]}: {what}; {purpose} must be "
                         f"numeric (a spectrum has no missing values): give the value, or remove the row")


def _bin_order(table: Table, names: list[str], notes: list[str]) -> list[str]:
    """The bin columns in bin order. Named v1, v2, ... or by the standard grid's centres
    (E0.5125, ...), they are ordered by their names, whatever the file's order, and must not skip
    one (a spectrum without a bin would be read shifted, every later bin out of place); a column
    of another name among them is refused. Columns of other names are read in the file's order."""
    grid_names = bin_names(grid.N_BINS)
    if all(re.fullmatch(r"v\d+", n) for n in names):
        ordered = sorted(names, key=lambda n: int(n[1:]))
        expected = [f"v{j}" for j in range(1, int(ordered[-1][1:]) + 1)]
    elif set(names) <= set(grid_names):
        ordered = sorted(names, key=grid_names.index)
        expected = list(grid_names[grid_names.index(ordered[0]):grid_names.index(ordered[-1]) + 1])
    else:
        on_grid = [n for n in names if n in grid_names]
        numbered = [n for n in names if re.fullmatch(r"v\d+", n)]
        named = on_grid if len(on_grid) >= len(numbered) else numbered
        if len(named) * 2 < len(names):
            return names
        odd = [n for n in names if n not in named]
        lacking = _absent(named, grid_names if named is on_grid else None)
        raise InputError(f"{table.path}: {table.positions[odd[0]]} is not a bin name among bin columns named "
                         f"{named[0]}, {named[1] if len(named) > 1 else '...'}, ...{lacking} ({len(odd)} such "
                         f"column{'s' if len(odd) > 1 else ''}); rename it to the bin it holds, or remove it")
    absent = sorted(set(expected) - set(names), key=expected.index)
    if absent:
        shown = ", ".join(absent[:_SHOWN]) + (", ..." if len(absent) > _SHOWN else "")
        plural = "s" if len(absent) > 1 else ""
        raise InputError(f"{table.path}: the bin columns {expected[0]} to {expected[-1]} lack {shown} "
                         f"({len(absent)} of {len(expected)}); add the missing bin column{plural}")
    if ordered != names:
        notes.append(f"the bin columns are read in the order of their names ({ordered[0]} to {ordered[-1]}), "
                     f"not in the file's order")
    return ordered


def _absent(named: list[str], grid_names: tuple[str, ...] | None) -> str:
    """", which lack E0.9375" (the first of the bins the named columns skip), or nothing."""
    if grid_names is None:
        numbers = {int(n[1:]) for n in named}
        gaps = [f"v{j}" for j in range(1, max(numbers) + 1) if j not in numbers]
    else:
        places = sorted(grid_names.index(n) for n in named)
        gaps = [grid_names[j] for j in range(places[0], places[-1] + 1) if grid_names[j] not in named]
    return f", which lack {gaps[0]}" if gaps else ""
