"""CSV (and tab-separated) tables read into a :class:`Table`: whole, or streamed in pieces.

Blank lines and leading ``#`` comments are skipped, but a commented header (``#name,ra,...``)
is recognised; a tab-separated file (``.tsv``, or tabs and no comma in its first line) is read
with tabs for commas. Every problem (a row of the wrong length, a repeated header, a name given
twice, bad quoting or encoding) is one line naming the file and line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from latentlapse.xray.data.encoding import not_utf8_message
from latentlapse.xray.data.spectra_checks import Rows, is_number
from latentlapse.xray.data.table_columns import Table
from latentlapse.core.errors import InputError

_MISSING_TOKENS = {"", "nan", "na", "n/a", "null", "none", "--"}


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
    return names if any(is_number(v) for v in first) and not any(is_number(n) for n in names) else None



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
