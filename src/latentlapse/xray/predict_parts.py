"""``latentlapse predict`` under torchrun: each rank classifies one contiguous slice of the file
and rank 0 merges the parts, in input order, into the one output file.

Every rank counts the file's rows (without parsing values) and takes its slice
(:func:`latentlapse.xray.distributed.contiguous_slice`: no padding, no duplicates). It writes its rows
to a hidden part file beside the output (``.NAME.part<R>-of-<N>.tmp``, so the output's folder must
be shared by every rank). The ranks then tell each other how they ended: if any failed, every rank
removes its part and stops with that rank's message, and no output is written; otherwise rank 0
streams the parts, re-cut into the single-process run's pieces, through the same writer, so the
output is the file one process would have written, atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from latentlapse.core import atomic, errors
from latentlapse.xray.distributed import World, contiguous_slice

log = logging.getLogger(__name__)


def predict_in_parts(world: World, out: Path, data: str, pieces: Callable[[slice], Iterator], scan,
                     class_names: Sequence[str], about: dict[str, str]) -> tuple[Path, int, np.ndarray]:
    """Classify this rank's slice of ``data`` with ``pieces(span)`` (ids, true classes,
    probabilities); rank 0 writes ``out``. Returns (path, rows, predicted counts per class) on
    every rank. ``scan`` (catalogues) gathers the whole-file checks, run on the ranks' scans
    together; ``about`` goes into a FITS output's header."""
    from latentlapse.xray.data.chunks import count_rows

    part = part_path(out, world.rank, world.size)
    failure = None
    try:
        span = contiguous_slice(count_rows(data), world.rank, world.size)
        log.info("rank %d of %d: rows %d to %d", world.rank, world.size, span.start + 1, span.stop)
        with atomic.atomic_writer(part, "wb") as handle:
            for ids, y_true, proba in pieces(span):
                for array in (np.asarray(ids, dtype=str), np.asarray(y_true, dtype=np.int64), proba):
                    np.save(handle, array, allow_pickle=False)
    except errors.LatentlapseError as exc:
        failure = (type(exc).__name__, str(exc))
    except Exception as exc:  # a bug or a broken disk on one rank must still end the others
        failure = ("RunFailed", f"{type(exc).__name__}: {exc}".splitlines()[0])
    try:
        outcomes = world.gather_objects((failure, scan))
        _raise_first_failure(world, [failure for failure, _ in outcomes])
        if scan is not None:
            others = [other for rank, (_, other) in enumerate(outcomes) if rank != world.rank]  # copies, own included
            for note in scan.merge(others).finish():
                log.info("%s: %s", data, note)
        merged, failure = world.broadcast(_merge(world, out, class_names, about) if world.is_main else None)
        if failure is not None:
            _raise_first_failure(world, [failure])
        return merged
    finally:
        if world.is_main:
            for rank in range(world.size):
                part_path(out, rank, world.size).unlink(missing_ok=True)
        else:
            part.unlink(missing_ok=True)


def part_path(out: Path, rank: int, size: int) -> Path:
    """Where rank ``rank`` keeps its rows until rank 0 has merged them (hidden, ``.tmp``)."""
    return out.with_name(f".{out.name}.part{rank}-of-{size}{atomic.TMP_SUFFIX}")


def _merge(world: World, out: Path, class_names: Sequence[str], about: dict[str, str]):
    """Rank 0: the parts, in rank order, through the single-process writer; (result, None) or
    (None, the failure)."""
    from latentlapse.core.prediction_writer import write_stream

    try:
        return write_stream(out, _repieced(_read_parts(out, world.size)), class_names, about), None
    except errors.LatentlapseError as exc:
        return None, (type(exc).__name__, str(exc))
    except Exception as exc:
        return None, ("RunFailed", f"{out}: merging the ranks' parts failed: {type(exc).__name__}: {exc}")


def _read_parts(out: Path, size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for rank in range(size):
        with open(part_path(out, rank, size), "rb") as handle:
            while handle.peek(1):
                yield tuple(np.load(handle, allow_pickle=False) for _ in range(3))


def _repieced(parts: Iterator[tuple[np.ndarray, ...]]) -> Iterator[tuple[np.ndarray, ...]]:
    """The rows re-cut into pieces of ``CHUNK_ROWS``, as one process would have handed them over
    (the writer decides on a true-class column from the first piece)."""
    from latentlapse.xray.data import chunks

    held: list[tuple[np.ndarray, ...]] = []
    count = 0
    for piece in parts:
        held.append(piece)
        count += len(piece[0])
        while count >= chunks.CHUNK_ROWS:
            joined = tuple(np.concatenate(column) for column in zip(*held))
            yield tuple(column[:chunks.CHUNK_ROWS] for column in joined)
            held = [tuple(column[chunks.CHUNK_ROWS:] for column in joined)]
            count -= chunks.CHUNK_ROWS
    if count:
        yield tuple(np.concatenate(column) for column in zip(*held))


def _raise_first_failure(world: World, failures: list) -> None:
    """Every rank stops when one did: that rank with its own message, the others with a line
    naming it (so the exit code is the same everywhere)."""
    failed = [(rank, failure) for rank, failure in enumerate(failures) if failure is not None]
    if not failed:
        return
    rank, (kind, message) = failed[0]
    if rank == world.rank:
        _raise(kind, message)
    _raise(kind, f"rank {rank} of {world.size} stopped ({message.splitlines()[0]}); no output written")


def _raise(kind: str, message: str):
    known = {cls.__name__: cls for cls in (errors.InputError, errors.UsageError, errors.RunFailed)}
    raise known.get(kind, errors.RunFailed)(message)
