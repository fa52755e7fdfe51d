"""What a :class:`~latentlapse.core.timelapse.live.Timelapse` writes about each epoch, kept off the loop.

``log_epoch`` only keeps the epoch's labels and probabilities (:class:`LoggedEpoch`); the
history rows, the per-source dynamics records and the TensorBoard scalars are computed and
written by one background thread (:class:`Writer`) in batches (:class:`EpochBook`): by the
first ``log_epoch`` at least ``flush_seconds`` after the previous batch, when the loop calls
``flush()``, and when the run ends for any reason (completed, Ctrl-C, SIGTERM, an exception).
Only a hard kill (SIGKILL, power loss) can lose the epochs logged since the last batch; a resumed
run names the epochs whose dynamics are missing. Measured on the digits example (35-55 ms
epochs, ``bench/api_overhead.py``): making and queueing the records every epoch took 3.9-6.1 %
of the loop; keeping the arrays and writing in batches, all of ``log_epoch`` 0.4-0.7 %.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from latentlapse.core.timelapse import dynamics, history_file, loop_arrays

FLUSH_SECONDS = 5.0  # default: how long logged epochs may wait in memory before they are written


@dataclass
class LoggedEpoch:
    """One logged epoch, as ``log_epoch`` received it (private copies), not yet written."""

    epoch: int
    y_tr: np.ndarray
    p_tr: np.ndarray
    y_va: np.ndarray
    p_va: np.ndarray
    metrics: dict[str, float]
    logits: tuple[Any, Any] | None
    history: bool  # add a row to history.csv (the owner, not while catching up after a resume)
    dynamics: bool  # write the per-source record
    board: bool  # add TensorBoard scalars (not while catching up: the resumed board has them)
    wall_time: float = field(default_factory=time.time)


class Writer:
    """One background thread that runs file writes in the order given; the first failure is kept
    and raised by every :meth:`check` (the loop's next epoch) and by :meth:`stop` (the end of the
    run). After a failed write the later ones are skipped: they would leave the folder
    inconsistent, so a loop that catches the error and goes on must not end as if all were written."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="latentlapse-writes", daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        self._jobs.put((function, args))

    def check(self) -> None:
        """Raise the first failed write, if any (every time: the writes after it were skipped)."""
        if self._failure is not None:
            raise self._failure

    def wait(self) -> None:
        """Return once every write submitted so far is done (or skipped)."""
        done = threading.Event()
        self._jobs.put(done)
        done.wait()

    def stop(self) -> None:
        """Finish every write submitted, end the thread, raise the first failure."""
        self._jobs.put(None)
        self._thread.join()
        self.check()

    def _run(self) -> None:
        failed = False
        while (job := self._jobs.get()) is not None:
            if isinstance(job, threading.Event):
                job.set()
                continue
            if failed:
                continue
            function, args = job
            try:
                function(*args)
            except BaseException as exc:  # handed to the loop's thread
                self._failure, failed = exc, True


class EpochBook:
    """The logged epochs not yet on disk, and the run's history rows (kept by the writer thread)."""

    def __init__(self, run_dir: Path, class_names: Sequence[str], labels_of_sources: Callable[[], np.ndarray],
                 history: list[dict[str, float]], flush_seconds: float, board: Any = None):
        self.run_dir, self.class_names = run_dir, tuple(class_names)
        self._labels = labels_of_sources
        self.history = history  # touched only by the writer thread while the run goes on
        self.flush_seconds = float(flush_seconds)
        self.board = board
        self.pending: list[LoggedEpoch] = []
        self.jobs: list[tuple[Callable[..., Any], tuple]] = []  # run-wide files, written with the next batch
        self._last_flush = time.monotonic()

    def add(self, entry: LoggedEpoch) -> None:
        self.pending.append(entry)

    def later(self, function: Callable[..., Any], *args: Any) -> None:
        """Write a run-wide file (the sources, the sample) with the next batch, not in the loop."""
        self.jobs.append((function, args))

    @property
    def waiting(self) -> bool:
        return bool(self.pending or self.jobs)

    def has(self, epoch: int) -> bool:
        """Whether ``epoch``'s per-source record waits to be written."""
        return any(e.epoch == epoch and e.dynamics for e in self.pending)

    def due(self) -> bool:
        """Whether anything waits and ``flush_seconds`` have passed since the previous batch was
        taken (so after a slow epoch, the first epoch logged is due at once)."""
        return self.waiting and time.monotonic() - self._last_flush >= self.flush_seconds

    def take(self) -> tuple[list, list[LoggedEpoch]]:
        """The waiting files and epochs, handed over (to :meth:`write`); the clock restarts."""
        taken = (self.jobs, self.pending)
        self.jobs, self.pending = [], []
        self._last_flush = time.monotonic()
        return taken

    def write(self, taken: tuple[list, list[LoggedEpoch]]) -> None:
        """On the writer thread: the run-wide files, each epoch's dynamics record, then the
        history (rewritten once) and the TensorBoard scalars (rewritten once)."""
        jobs, batch = taken
        for function, args in jobs:
            function(*args)
        if not batch:
            return
        labels = self._labels()
        rows = []
        for entry in batch:  # the loop checked the first epoch's probabilities; the later ones, here
            for name, proba in (("train", entry.p_tr), ("val", entry.p_va)):
                try:
                    loop_arrays.check_proba(name, proba)
                except ValueError as exc:
                    raise ValueError(f"epoch {entry.epoch}, {exc}") from None
            if entry.dynamics:
                dynamics.write_epoch(self.run_dir, entry.epoch, record(labels, entry))
            if entry.history or entry.board:
                rows.append((entry, history_file.scores(
                    entry.epoch, self.class_names, entry.y_tr, entry.p_tr, entry.y_va, entry.p_va, entry.metrics)))
        if any(entry.history for entry, _ in rows):
            for entry, scores in rows:
                if entry.history:
                    self.history = history_file.add(self.history, {"epoch": entry.epoch, **scores})
            history_file.write(self.run_dir, self.history)
        scalars = [(entry.epoch, entry.wall_time, scores) for entry, scores in rows if entry.board]
        if self.board is not None and scalars:
            self.board.scalars(scalars)


def record(labels: np.ndarray, entry: LoggedEpoch) -> dict[str, np.ndarray]:
    """The epoch's per-source record (true-class probability, margin, prediction)."""
    proba = np.concatenate([entry.p_tr, entry.p_va])
    if entry.logits is None:  # private_logits made a partial pair None
        logits = np.log(np.clip(proba, 1e-12, None))
    else:
        logits = np.concatenate([np.asarray(entry.logits[0]), np.asarray(entry.logits[1])])
    return dynamics.epoch_record(labels, proba, logits)


def private(array: np.ndarray, given: Any) -> np.ndarray:
    """``array`` (made from ``given``) as memory the loop cannot change later: copied when it is
    what the loop handed over or a view of it (a tensor's buffer, a slice); not when the
    conversion made a new array already."""
    if array is given or array.base is not None:
        return array.copy()
    return array


def metrics_of(metrics: Mapping[str, float] | None) -> dict[str, float]:
    """The loop's own numbers as plain floats (a tensor or numpy scalar is read now)."""
    values = {}
    for key, value in (metrics or {}).items():
        try:
            values[str(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"metrics[{key!r}]: {value!r} is not a number") from None
    return values


def private_logits(logits: tuple[Any, Any] | None, shapes: tuple[tuple, tuple]) -> tuple[np.ndarray, np.ndarray] | None:
    """The loop's ``(train, val)`` logits as arrays it cannot change later (None: not given),
    each of the shape of its split's probabilities."""
    if logits is None or logits[0] is None or logits[1] is None:
        return None
    arrays = tuple(loop_arrays.as_array(part) for part in logits)
    for name, array, shape in zip(("train", "val"), arrays, shapes):
        if array.shape != shape:
            raise ValueError(f"logits ({name}): shape {array.shape}, but its proba is {shape}; give one row per "
                             f"source and one column per class")
    return tuple(private(array, part) for array, part in zip(arrays, logits))


def write_sources(run_dir: Path, ids: tuple[np.ndarray, np.ndarray] | None, n_train: int, n_val: int,
                  labels: np.ndarray, class_names: tuple[str, ...]) -> None:
    """``dynamics/sources.csv`` (on the writer thread: the ids the loop did not give are made here)."""
    train_ids, val_ids = ids if ids is not None else loop_arrays.ids_at(None, np.arange(n_train), np.arange(n_val))
    split = np.array(["train"] * n_train + ["val"] * n_val)
    dynamics.write_sources(run_dir, np.concatenate([train_ids, val_ids]), split, labels, class_names)
