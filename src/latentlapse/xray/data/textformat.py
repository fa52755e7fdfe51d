"""The whitespace text format: ``src_id v1 ... vK net_counts [label]``, one source a line.

Labelled (K+3 fields) and unlabelled (K+2 fields) rows mix in one file; K is fixed by the first
data line and enforced on every line. Blank lines and ``#`` comments are skipped but still
counted, so messages give the line number an editor shows. A byte-order mark and CRLF line
endings read exactly like clean input.

The file is read line by line and parsed in chunks with ``float`` on whole rows (3000 × 383
fields in ~0.1 s); only when a chunk fails is it scanned token by token for the exact message.
A file of garbage therefore fails on its first lines instead of being read whole.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import numpy as np

from latentlapse.xray.data.encoding import not_utf8_message
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.spectra_checks import (
    Rows, UnknownLabels, bin_names, canonical_labels, is_number, spectra_dataset,
)
from latentlapse.core.errors import InputError

_CHUNK_ROWS = 1024
# A 380-bin row is ~5 KB; a "line" far longer than this is not the text format.
_MAX_LINE_CHARS = 1 << 20
_FORMAT = "src_id v1 ... vK net_counts [label]"


def read_text(path: Path, unknown_labels: UnknownLabels | None = None) -> Dataset:
    """Read a text-format spectra file (see the module docstring) into a Dataset; labels of no
    known class are refused, or counted in ``unknown_labels`` and read as unlabelled."""
    lines = _data_lines(path)
    first_line, first, header_note = _first_row(path, lines)
    k = _values_per_row(path, first_line, first)
    line_numbers: list[int] = []
    ids: list[str] = []
    raw_labels: list[str] = []
    blocks: list[np.ndarray] = []
    chunk: list[tuple[int, list[str]]] = [(first_line, first)]
    for line_no, tokens in lines:
        _check_field_count(path, line_no, tokens, k, first_line)
        chunk.append((line_no, tokens))
        if len(chunk) == _CHUNK_ROWS:
            blocks.append(_parse_chunk(path, chunk, k))
            _collect(chunk, k, line_numbers, ids, raw_labels)
            chunk = []
    if chunk:
        blocks.append(_parse_chunk(path, chunk, k))
        _collect(chunk, k, line_numbers, ids, raw_labels)
    numbers = np.vstack(blocks)
    rows = Rows("line", np.asarray(line_numbers))
    labels = canonical_labels(path, raw_labels, rows, unknown_labels)
    return spectra_dataset(
        path,
        numbers[:, :k],
        numbers[:, k],
        np.asarray(ids),
        labels,
        rows,
        [f"column {j + 2}" for j in range(k)],
        feature_names=bin_names(k),
        notes=header_note,
    )


def text_chunks(path: Path, rows: int, span: slice | None = None,
                unknown_labels: UnknownLabels | None = None) -> Iterator[Dataset]:
    """The file as Datasets of ``rows`` sources each, read as they are needed (for ``predict``):
    every check of :func:`read_text` applies to each piece, and messages keep the file's line
    numbers. ``span`` keeps the data rows (from 0) of one contiguous stretch; the others are
    skipped unparsed."""
    lines = _data_lines(path)
    first_line, first, header_note = _first_row(path, lines)
    k = _values_per_row(path, first_line, first)
    start, stop = (0, None) if span is None else (span.start or 0, span.stop)
    chunk: list[tuple[int, list[str]]] = []
    for index, (line_no, tokens) in enumerate(itertools.chain([(first_line, first)], lines)):
        if stop is not None and index >= stop:
            break
        if index < start:
            continue
        if index:
            _check_field_count(path, line_no, tokens, k, first_line)
        chunk.append((line_no, tokens))
        if len(chunk) == rows:
            yield _chunk_dataset(path, chunk, k, header_note, unknown_labels)
            chunk = []
    if chunk:
        yield _chunk_dataset(path, chunk, k, header_note, unknown_labels)


def count_rows(path: Path) -> int:
    """The number of data rows (a header line not counted), without parsing their values."""
    lines = _data_lines(path)
    _first_row(path, lines)
    return 1 + sum(1 for _ in lines)


def _chunk_dataset(path: Path, chunk: list[tuple[int, list[str]]], k: int, notes: tuple[str, ...],
                   unknown_labels: UnknownLabels | None) -> Dataset:
    numbers = _parse_chunk(path, chunk, k)
    line_numbers: list[int] = []
    ids: list[str] = []
    raw_labels: list[str] = []
    _collect(chunk, k, line_numbers, ids, raw_labels)
    rows = Rows("line", np.asarray(line_numbers))
    labels = canonical_labels(path, raw_labels, rows, unknown_labels)
    return spectra_dataset(path, numbers[:, :k], numbers[:, k], np.asarray(ids), labels,
                           rows, [f"column {j + 2}" for j in range(k)], feature_names=bin_names(k), notes=notes)


def _data_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each line that is neither blank nor a ``#`` comment."""
    # utf-8-sig drops a byte-order mark; newline=None turns CRLF and CR into "\n".
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        line_no = 0
        while True:
            line_no += 1
            try:
                line = handle.readline(_MAX_LINE_CHARS)
            except UnicodeDecodeError:
                raise InputError(not_utf8_message(path)) from None
            if not line:
                return
            if len(line) == _MAX_LINE_CHARS and not line.endswith("\n"):
                raise InputError(
                    f"{path}: line {line_no} is longer than {_MAX_LINE_CHARS} characters; "
                    f"this is not a spectra text file ({_FORMAT})"
                )
            tokens = line.split()
            if tokens and not tokens[0].startswith("#"):
                yield line_no, tokens


def _first_row(path: Path, lines: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str], tuple[str, ...]]:
    """The first data row, skipping one header line (a line with no number after its first field)."""
    first = next(lines, None)
    notes: tuple[str, ...] = ()
    if first is not None and len(first[1]) > 1 and not any(is_number(token) for token in first[1][1:]):
        notes = (f"line {first[0]} read as a column header and skipped",)  # shown once, as the reader's note
        first = next(lines, None)
    if first is not None:
        return first[0], first[1], notes
    raise InputError(
        f"{path}: no data rows (only blank lines, comments or a header); "
        f"add one spectrum per line: {_FORMAT}"
    )


def _values_per_row(path: Path, line_no: int, tokens: list[str]) -> int:
    """K, from the first data row: its last field is the label unless it is a number."""
    labelled = not is_number(tokens[-1])
    k = len(tokens) - (3 if labelled else 2)
    if k < 1:
        raise InputError(
            f"{path}: line {line_no} has {len(tokens)} fields; a row needs src_id, at least one "
            f"value and net_counts, then optionally a label ({_FORMAT})"
        )
    return k


def _check_field_count(path: Path, line_no: int, tokens: list[str], k: int, first_line: int) -> None:
    """Every row has K+2 (unlabelled) or K+3 (labelled) fields; a row of K+2 fields that ends
    in a label is a labelled row with a value missing, and is named as such."""
    n_fields = len(tokens)
    if n_fields == k + 2 and not is_number(tokens[-1]):
        raise InputError(
            f"{path}: line {line_no} has {n_fields - 1} fields and the label '{tokens[-1]}', where {k + 2} "
            f"(unlabelled) or {k + 3} (labelled) fields are expected (src_id, {k} values, net_counts[, label]) "
            f"as set by line {first_line}; a value is missing: fix or remove that row"
        )
    if n_fields == k + 3 and is_number(tokens[-1]):
        raise InputError(
            f"{path}: line {line_no} has {n_fields} fields and ends in the number '{tokens[-1]}', not a label: "
            f"one value too many for the {k + 2} (src_id, {k} values, net_counts) set by line {first_line}; "
            f"fix or remove that row"
        )
    if n_fields not in (k + 2, k + 3):
        # a longer row may be the right one, after a first line short of a value
        first_short = f" (or line {first_line}, if it is the row short of values)" if n_fields > k + 3 else ""
        raise InputError(
            f"{path}: line {line_no} has {n_fields} fields, expected {k + 2} (unlabelled) or {k + 3} (labelled) "
            f"(src_id, {k} values, net_counts[, label]) as set by line {first_line}; "
            f"fix or remove that row{first_short}"
        )


def _parse_chunk(path: Path, chunk: list[tuple[int, list[str]]], k: int) -> np.ndarray:
    """The K values and net counts of each row of a chunk, as float64 (K+1 columns)."""
    try:
        return np.array([list(map(float, tokens[1 : k + 2])) for _, tokens in chunk], dtype=np.float64)
    except ValueError:
        _raise_first_non_number(path, chunk, k)
        raise  # pragma: no cover - the scan above always finds the bad token


def _raise_first_non_number(path: Path, chunk: list[tuple[int, list[str]]], k: int) -> None:
    """Find the token that ``float`` refused and say where it is."""
    for line_no, tokens in chunk:
        for column, token in enumerate(tokens[1 : k + 2], start=2):
            if not is_number(token):
                what = "net_counts" if column == k + 2 else "spectra values"
                raise InputError(
                    f"{path}: line {line_no}, column {column}: '{token}' is not a number; "
                    f"{what} must be numeric"
                )


def _collect(chunk, k: int, line_numbers: list[int], ids: list[str], raw_labels: list[str]) -> None:
    """Append the line numbers, ids and raw labels ("" when absent) of a parsed chunk."""
    for line_no, tokens in chunk:
        line_numbers.append(line_no)
        ids.append(tokens[0])
        raw_labels.append(tokens[k + 2] if len(tokens) == k + 3 else "")

