"""Tables of spectra or catalogue features: CSV (no extra needed), ECSV, FITS and VOTable.

Every table becomes a :class:`Table` of named columns first, then a Dataset. A table holds
spectra when it has a vector column of 380 values (or of at least 50 under a spectrum's name),
or a counts column beside bin-named columns only (v1…, E0.5125…, as ``write_dataset`` writes
them), or beside at least 50 other numeric columns half of them bin-named or the counts column
called net_counts; with ``--features`` or ``--exclude``, or otherwise, it is a catalogue (see :mod:`.catalog`): fluxes, hardness ratios, magnitudes, with their quoted
errors kept apart and missing values handled by an explicit policy recorded in the notes.
"""

from __future__ import annotations

import csv
import logging
import re
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from latentlapse.xray.data import grid
from latentlapse.xray.data.encoding import not_utf8_message
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
_MISSING_TOKENS = {"", "nan", "na", "n/a", "null", "none", "--"}
_BIN_NAME = re.compile(r"v\d+|E\d+(\.\d+)?")
_SHOWN = 5  # how many absent bin columns a message names before "..."
_ASTROPY_FORMATS = {"ecsv": "ascii.ecsv", "votable": "votable", "fits": "fits"}


def read_csv(path: Path, typed: bool = True) -> Table:
    """Read a CSV (or tab-separated) file with a header row; blank lines and leading ``#``
    comments are skipped.

    ``typed`` decides which columns are numeric (by majority of their values); without it every
    column stays text, for a reader that takes the types from a model's schema instead.
    """
    header, header_line, records, line_numbers, empty_rows = _csv_records(path)
    notes = _commented_header_note(path, header_line)
    if empty_rows:
        rows = Rows("line", np.asarray(empty_rows))
        notes.append(f"{len(empty_rows)} rows with every field empty were skipped "
                     f"({rows.several(list(range(len(empty_rows))))})")
    return csv_table(path, header, records, line_numbers, typed=typed, notes=notes)


def csv_chunks(path: Path, rows: int, typed: bool = True, span: slice | None = None) -> Iterator[Table]:
    """The CSV file's :class:`Table` in pieces of ``rows`` data rows (line numbers as in the file);
    ``span`` keeps the data rows (from 0) of one contiguous stretch."""
    start, stop = (0, None) if span is None else (span.start or 0, span.stop)
    header, header_line, records, line_numbers, first = None, 0, [], [], start
    for index, (header, header_line, record, line_no) in enumerate(_records_only(_csv_lines(path))):
        if stop is not None and index >= stop:
            break
        if index < start:
            continue
        if not records:
            first = index
        records.append(record)
        line_numbers.append(line_no)
        if len(records) == rows:
            yield csv_table(path, header, records, line_numbers, typed=typed, first_index=first,
                            notes=_commented_header_note(path, header_line) if first == start else None)
            records, line_numbers = [], []
    if records:
        yield csv_table(path, header, records, line_numbers, typed=typed, first_index=first,
                        notes=_commented_header_note(path, header_line) if first == start else None)


def _records_only(lines):
    """The CSV lines that hold a record (rows of empty fields left out)."""
    return (line for line in lines if line[2] is not None)


def count_csv_rows(path: Path) -> int:
    """The number of data records (rows of empty fields not counted), values left unparsed."""
    return sum(record is not None for _, _, record, _ in _csv_lines(path))


def csv_table(path: Path, header: list[str], records: list[list[str]], line_numbers: list[int],
              typed: bool = True, notes: list[str] | None = None, first_index: int = 0) -> Table:
    """A :class:`Table` of CSV records (lists of strings) under ``header``; the first is the
    file's data record ``first_index`` (from 0)."""
    numbers, text, bad = {}, {}, {}
    for name, values in zip(header, zip(*records)):
        text[name] = values
        parsed, first_bad = _parse_numbers(values) if typed else (None, None)
        if parsed is not None:
            numbers[name] = parsed
            if first_bad is not None:
                bad[name] = first_bad
    positions = {name: f"column {i + 1} ({name})" for i, name in enumerate(header)}
    return Table(path, header, numbers, text, Rows("line", np.asarray(line_numbers)), positions, bad, notes or [],
                 first_index)


def _csv_records(path: Path) -> tuple[list[str], int, list[list[str]], list[int], list[int]]:
    """Header, its line number, the data records, their line numbers and those of empty records."""
    header, header_line, records, line_numbers, empty_rows = None, 0, [], [], []
    for header, header_line, record, line_no in _csv_lines(path):
        if record is None:
            empty_rows.append(line_no)
        else:
            records.append(record)
            line_numbers.append(line_no)
    return header, header_line, records, line_numbers, empty_rows


def _csv_lines(path: Path) -> Iterator[tuple[list[str], int, list[str] | None, int]]:
    """(header, its line number, record, the record's line number) for each data record; the
    record is None for a row whose fields are all empty (``,,,,``; blank lines are skipped)."""
    header: list[str] | None = None
    header_line = 0
    n_records = 0
    comment: tuple[list[str], int] | None = None  # the last '#' line before the header, and its line number
    # utf-8-sig drops a byte-order mark; the csv module handles CRLF itself with newline="".
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=_delimiter(path))
        try:
            for fields in reader:
                if not any(value.strip() for value in fields):
                    if header is not None and len(fields) > 1:  # ",,,," rows, not blank lines
                        yield header, header_line, None, reader.line_num
                    continue
                if header is None:
                    if fields[0].lstrip().startswith("#"):
                        comment = (fields, reader.line_num)
                        continue
                    names = _uncommented(comment[0], fields) if comment else None
                    if names is None:
                        header, header_line = _checked_header(path, fields, reader.line_num), reader.line_num
                        continue
                    header, header_line = _checked_header(path, names, comment[1]), comment[1]
                if fields[0].strip() == header[0] and [value.strip() for value in fields] == header:
                    raise InputError(f"{path}: line {reader.line_num} repeats the header of line {header_line} "
                                     f"(files joined together?); remove that line")
                if len(fields) != len(header):
                    raise InputError(
                        f"{path}: line {reader.line_num} has {len(fields)} fields, expected "
                        f"{len(header)} as set by the header on line {header_line}; fix or remove that row"
                    )
                n_records += 1
                yield header, header_line, fields, reader.line_num
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: malformed CSV ({exc}); fix the quoting") from None
        except UnicodeDecodeError:
            raise InputError(not_utf8_message(path)) from None
    if header is None:
        raise InputError(f"{path}: no header row (only blank lines or comments); add a header and one source per row")
    if not n_records:
        raise InputError(f"{path}: only a header (line {header_line}), no data rows; add one source per row")


def _uncommented(comment: list[str], first: list[str]) -> list[str] | None:
    """The names of a commented header (``#name,ra,...``, as astropy's commented_header writes):
    a ``#`` line of names with as many fields as the first row after it, which holds a number
    (a header would not). None when the comment is not such a header."""
    names = [comment[0].lstrip()[1:].strip(), *comment[1:]]
    if len(names) < 2 or len(names) != len(first) or not names[0]:
        return None
    return names if any(_is_number(v) for v in first) and not any(_is_number(n) for n in names) else None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _commented_header_note(path: Path, header_line: int) -> list[str]:
    """The note for a header read from a ``#`` line (see :func:`_uncommented`), else nothing."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line_no == header_line:
                if line.lstrip().startswith("#"):
                    return [f"line {line_no} read as the column header, its '#' ignored: a commented header"]
                return []
    return []


def _delimiter(path: Path) -> str:
    """A tab for a tab-separated table (``.tsv``, or tabs and no comma in the first line that is
    not a ``#`` comment), else a comma."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    return "\t" if "\t" in line and "," not in line else ","
    except UnicodeDecodeError:
        pass  # named by the reader, at its line
    return ","


def _checked_header(path: Path, fields: list[str], line_no: int) -> list[str]:
    """Column names, stripped; empty or repeated names are refused."""
    names = [value.strip() for value in fields]
    if len(names) == 1 and ";" in names[0]:
        raise InputError(f"{path}: line {line_no}: the header is a single column with ';' in it: a semicolon-separated "
                         f"file? save it with commas as the separator")
    for i, name in enumerate(names):
        if not name:
            raise InputError(f"{path}: line {line_no}: column {i + 1} of the header has no name; name it")
        if names.index(name) != i:
            raise InputError(
                f"{path}: line {line_no}: column name '{name}' appears twice (columns "
                f"{names.index(name) + 1} and {i + 1}); rename one"
            )
    return names


def _parse_numbers(values: Sequence[str]) -> tuple[np.ndarray | None, tuple[int, str] | None]:
    """Floats (NaN where missing) of a column and its first non-numeric token.

    A column where fewer than half of the present values are numbers is text (None).
    """
    try:
        return np.fromiter(map(float, values), dtype=np.float64, count=len(values)), None
    except ValueError:
        pass  # empty cells or text: go value by value
    parsed = np.full(len(values), np.nan)
    first_bad, n_bad = None, 0
    for i, value in enumerate(values):
        try:
            parsed[i] = float(value)
        except ValueError:
            if value.strip().lower() not in _MISSING_TOKENS:
                n_bad += 1
                first_bad = first_bad or (i, value.strip())
    present = int((~np.isnan(parsed)).sum()) + n_bad
    return (None if 2 * n_bad > present else parsed), first_bad


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
    spectrum = next((n for n in vectors if _spectrum_vector(n, table.numbers[n].shape[1])), None)
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
    or number at least 50 and either half of them are bin-named or the counts column is called
    net counts: a catalogue often has more than 50 columns and one of plain ``counts``."""
    if not columns:
        return False
    named = sum(bool(_BIN_NAME.fullmatch(n)) for n in columns)
    if named == len(columns):
        return True
    return len(columns) >= MIN_SPECTRAL_COLUMNS and (2 * named >= len(columns) or counts.lower() in NET_COUNTS_NAMES)


def _spectrum_vector(name: str, length: int) -> bool:
    """A vector column holds spectra when it has the standard grid's bins, or at least 50 values
    under a spectrum's name (SPECTRUM, spec, counts, ...); a short array (aperture fluxes, one
    value per band) is a catalogue column."""
    spectrum_name = "spec" in name.lower() or name.lower() in COUNTS_NAMES + ("rate", "pha", "values")
    return length == grid.N_BINS or (length >= MIN_SPECTRAL_COLUMNS and spectrum_name)


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
