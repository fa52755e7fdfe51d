"""The training callback that records every source's training dynamics at every epoch.

It runs in every run, with or without the time-lapse: the per-source history costs no forward
pass (it reads the probabilities and logits of the evaluation pass the loop already makes) and
about 20 KB an epoch for the built-in set, and it is what ``dynamics.csv``, the data map and
``latentlapse inspect`` are made from. Storage and statistics: :mod:`latentlapse.timelapse.dynamics`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from latentlapse.timelapse import dynamics
from latentlapse.training import Callback, EpochResult

log = logging.getLogger(__name__)


class DynamicsRecorder(Callback):
    """Writes ``dynamics/epoch_XXX.npz`` after each epoch for the training and validation splits.

    Columns are the training split's sources (unaugmented originals, in split order) followed by
    the validation split's. The record is made in the loop (under a millisecond) and written by
    one background thread: the write's fsync takes 10-20 ms on this machine's disk, more than the
    1 % of an epoch the recording may cost. A write that fails (a full disk) fails the run at the
    next epoch's end; :meth:`on_train_end` waits for every write, whatever the ending.

    A resumed run drops records after its checkpoint's epoch and re-records that epoch if the
    interruption cut it off, so its history equals an uninterrupted run's.
    """

    def __init__(self, run_dir: Path, ids: np.ndarray, train_labels: np.ndarray, val_labels: np.ndarray,
                 class_names: tuple[str, ...], *, resume: bool = False):
        self.run_dir = Path(run_dir)
        self.ids = np.asarray(ids)
        self.labels = np.concatenate([train_labels, val_labels]).astype(np.int64)
        self.split = np.array(["train"] * len(train_labels) + ["val"] * len(val_labels))
        self.class_names = tuple(class_names)
        self.resume = resume
        self.seconds = 0.0  # spent in the training loop (making and queueing the records)
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    @classmethod
    def for_run(cls, run_dir: Path, prepared, *, resume: bool = False) -> "DynamicsRecorder":
        p = prepared
        ids = np.concatenate([p.dataset.ids[p.split.train], p.dataset.ids[p.split.val]])
        return cls(run_dir, ids, p.y[p.split.train], p.y[p.split.val], p.scheme.names, resume=resume)

    def on_train_start(self, trainer) -> None:
        sources = self.run_dir / dynamics.DYNAMICS_DIR / dynamics.SOURCES_FILE
        if not (self.resume and sources.exists()):
            dynamics.write_sources(self.run_dir, self.ids, self.split, self.labels, self.class_names)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dynamics")
        if not self.resume:
            return
        dynamics.drop_epochs_after(self.run_dir, trainer.epoch)
        if trainer.epoch > 0 and not dynamics.epoch_path(self.run_dir, trainer.epoch).exists():
            log.info("recording the training dynamics of epoch %d, which the interruption cut off", trainer.epoch)
            self.on_epoch_end(trainer, trainer.evaluate_last_epoch())
        missing = sorted(set(range(1, trainer.epoch)) - set(dynamics.recorded_epochs(self.run_dir)))
        if missing:
            log.warning("the training dynamics of epoch%s %s were lost when the run was stopped; the per-source "
                        "statistics leave them out", "s" if len(missing) > 1 else "", ", ".join(map(str, missing)))

    def on_epoch_end(self, trainer, result: EpochResult) -> None:
        started = time.perf_counter()
        self._raise_failed_write()
        proba = np.concatenate([result.train_proba, result.val_proba])
        logits = np.concatenate([result.train_logits, result.val_logits])
        record = dynamics.epoch_record(self.labels, proba, logits)
        self._pending.append(self._writer.submit(dynamics.write_epoch, self.run_dir, result.epoch, record))
        self.seconds += time.perf_counter() - started

    def on_train_end(self, trainer, status: str) -> None:
        """Wait for the records still being written; a failed write is raised (the first one)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
        self._raise_failed_write()

    def _raise_failed_write(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
