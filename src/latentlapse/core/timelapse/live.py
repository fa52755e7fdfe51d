"""``Timelapse``: film any classifier's latent space from your own training loop.

One object does for a user's loop what the spectra trainer gets: a ``run_NNN`` folder, a fixed
stratified sample drawn in every frame by a low-priority worker process, ``latent_metrics.csv``,
per-source training dynamics, and at the end the GIF, curves, diagnosis and the report with its
explorer. The spectra trainer's callback (:mod:`latentlapse.xray.training_visualizer`) is a thin
adapter over this class, so both paths write the same files the same way (atomically).

Numpy only at import (the worker and ``import latentlapse`` stay light); arrays may be numpy
arrays or CPU tensors.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from latentlapse.core import atomic, rng, runs
from latentlapse.core.timelapse import dynamics, end_of_run, epoch_writes, loop_arrays, messages, run_record
from latentlapse.core.timelapse.epoch_writes import EpochBook, LoggedEpoch, Writer
from latentlapse.core.timelapse.sample import SAMPLES_FILE, choose_sample, samples_csv
from latentlapse.core.timelapse.schedule import should_visualize
from latentlapse.core.timelapse.snapshot import TimelapseSpec, frame_snapshot
from latentlapse.core.timelapse.styles import check_style, default_style

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
Split = tuple  # (features (n, d), labels (n,), class probabilities (n, k)); features may be None without frames


class Timelapse:
    """A run folder filmed from your loop; use as a context manager (see docs/LIBRARY.md).

    Parameters
    ----------
    runs_dir : folder under which the next free ``run_NNN`` is created.
    class_names : display names of the classes, index order (2-20 classes).
    epochs : the epochs the loop will run (the schedule, titles and "half the run" use it).
    method : ``tsne``, ``umap`` or ``pca``; every : a frame every N-th epoch (plus epoch 1, the
        milestones and the last). ``frames=False`` records history and dynamics only.
    train_samples, val_samples : cap of the fixed frame sample per split (stratified).
    seed : drives the sample and the projection; colors, markers : one per class (never red).
    inputs : optional ``(train_X, val_X)`` input rows (or the explorer's full dict) so the
        report's explorer can show a point's input.
    owner : True (the default) when this object owns the run: it writes the metadata, the
        history, the final metrics and the status. The spectra trainer passes False and
        ``run_dir``, as its session does those.
    signals : an owner turns SIGTERM into Ctrl-C's path while open (False where a framework,
        such as Lightning, handles signals itself).
    flush_seconds : history rows and per-source records are written in batches by a background
        thread (:mod:`epoch_writes`): by the first ``log_epoch`` this long after the previous
        batch, at :meth:`flush` and whenever the run ends; 0 writes every epoch.
    """

    def __init__(self, runs_dir: str | os.PathLike = "runs", *, class_names: Sequence[str], epochs: int,
                 method: str = "tsne", every: int = 10, train_samples: int = 500, val_samples: int = 300,
                 seed: int = 0, colors: Sequence[str] | None = None, markers: Sequence[str] | None = None,
                 frames: bool = True, tensorboard: bool = False, inputs: Any = None,
                 config: Mapping[str, Any] | None = None, run_dir: str | os.PathLike | None = None,
                 resume_after: int | None = None, owner: bool = True, signals: bool = True,
                 flush_seconds: float = epoch_writes.FLUSH_SECONDS):
        names = tuple(str(n) for n in class_names)
        if len(names) < 2:
            raise ValueError(f"{len(names)} class name(s): a classification needs at least 2 classes")
        if epochs < 1 or every < 1:
            raise ValueError(f"epochs={epochs}, every={every}: both must be at least 1")
        if method not in ("tsne", "umap", "pca"):
            raise ValueError(f"method {method!r}: choose tsne, umap or pca")
        if train_samples < 1 or val_samples < 1:
            raise ValueError(f"train_samples={train_samples}, val_samples={val_samples}: both must be at least 1")
        if not flush_seconds >= 0:
            raise ValueError(f"flush_seconds={flush_seconds}: give 0 (write every epoch) or more")
        if tensorboard:
            from latentlapse.core.timelapse.board import require_tensorboard

            require_tensorboard()
        default_colors, default_markers = default_style(len(names))
        self.colors = tuple(colors or default_colors)
        self.markers = tuple(markers or default_markers)
        check_style(names, self.colors, self.markers)
        self.runs_dir, self.class_names, self.epochs = Path(runs_dir), names, int(epochs)
        self.method, self.every, self.seed, self.frames = method, int(every), int(seed), bool(frames)
        self.train_samples, self.val_samples = int(train_samples), int(val_samples)
        self.tensorboard, self.inputs, self.owner, self.signals = bool(tensorboard), inputs, bool(owner), bool(signals)
        self.config = dict(config or {})
        self.flush_seconds = float(flush_seconds)
        self.resume_after = resume_after
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.seconds = 0.0  # spent inside log_epoch (the loop's cost of the time-lapse)
        self.frames_written = 0
        self.worker = None
        self._history: list[dict[str, float]] = []
        self._sources = None  # set on the first epoch: labels, ids, the fixed sample
        self._writer: Writer | None = None
        self._book: EpochBook | None = None
        self._last_epoch = 0
        self._logged = 0  # the last epoch given to log_epoch by this object (they must increase)
        self._state = "new"  # open, then closed (from the start of close: signals then only skip frames)
        self._last_val: tuple[np.ndarray, np.ndarray] | None = None
        self._abort = False
        self._closing_status: str | None = None  # the status close() ends the run with, once it has begun
        self._signals = run_record.Signals(lambda: self._closing_status, self.request_abort)
        self._board = None
        self._polled = 0.0  # when the worker's messages were last read (time.monotonic)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, after_epoch: int, **overrides: Any) -> "Timelapse":
        """Reopen an interrupted run made by a ``Timelapse`` to go on after ``after_epoch`` (the
        epoch of your own checkpoint): later history and dynamics are dropped, frames go on."""
        run_dir = Path(run_dir)
        settings = run_record.resume_settings(run_dir)
        run_record.check_resume_point(run_dir, after_epoch)
        settings.update(overrides)
        return cls(run_dir.parent, run_dir=run_dir, resume_after=int(after_epoch), **settings)

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> "Timelapse":
        self.open()
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            self.close("completed")
        elif isinstance(error, KeyboardInterrupt):
            self.close("interrupted")
        else:
            self.close("failed", error=error)
        return False

    def open(self) -> Path:
        """Create (or reopen) the run folder and record the run's settings; returns the folder."""
        if self._state != "new":
            raise RuntimeError(f"this Timelapse is {self._state}: one object films one run; make a new one, or "
                               f"continue a stopped run with Timelapse.resume(run_dir, after_epoch)")
        if loop_arrays.starting_as_spawned_child():
            raise RuntimeError("a Timelapse was opened while a worker process imported your script: the frame "
                               "worker starts by re-importing it, so put the training under "
                               "`if __name__ == \"__main__\":`")
        self._state = "open"
        if self.run_dir is None:
            self.run_dir = runs.allocate_run_dir(self.runs_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resuming = self.resume_after is not None
        if resuming:
            run_record.cut_back(self.run_dir, self.resume_after)
            self._last_epoch = self.resume_after
        if self.owner:
            self._history = run_record.record_start(self)
            if self.signals:
                self._signals.catch()
        else:
            runs.update_metadata(self.run_dir, class_colors=list(self.colors), class_markers=list(self.markers))
        if self.tensorboard:
            from latentlapse.core.timelapse.board import Board

            self._board = Board(self.run_dir, self.class_names, resume_after=self.resume_after)
        # Everything slow happens here, before the loop: the writer thread (files and their fsyncs
        # leave the loop), and the worker process, which gets its spec with the first epoch.
        self._writer = Writer()
        self._book = EpochBook(self.run_dir, self.class_names, lambda: self._sources["labels"], self._history,
                               self.flush_seconds, self._board)
        if self.frames:
            from latentlapse.core.timelapse import explorer  # noqa: F401  (imported now, used at the first epoch)
            from latentlapse.core.timelapse.animate import write_animation_script
            from latentlapse.core.timelapse.worker import FrameWorker

            self._writer.submit(write_animation_script, self.run_dir)
            self.worker = FrameWorker()
            runs.update_metadata(self.run_dir, worker_pid=self.worker.pid)  # lets a check find a stray worker
            self._polled = time.monotonic()
        log.info("time-lapse run folder: %s", self.run_dir)
        return self.run_dir

    def set_sources(self, train_labels: Any, val_labels: Any, ids: Any = None, inputs: Any = None) -> None:
        """Fix the sources once (labels, ids, the frame sample) and start the worker; the first
        :meth:`log_epoch` calls it when you have not."""
        if self._sources is not None:
            return
        y_tr, y_va = loop_arrays.labels(train_labels), loop_arrays.labels(val_labels)
        n = len(self.class_names)
        for split, y in (("train", y_tr), ("val", y_va)):
            if len(y) and (y.min() < 0 or y.max() >= n):
                raise ValueError(f"{split} labels run from {y.min()} to {y.max()}, but there are {n} class names")
        given = loop_arrays.source_ids(ids, len(y_tr), len(y_va))
        generator = rng.generator(self.seed, "subsample")
        train_pos = choose_sample(y_tr, self.train_samples, n, generator)
        val_pos = choose_sample(y_va, self.val_samples, n, generator)
        self._sources = dict(y_tr=y_tr, y_va=y_va, train_pos=train_pos, val_pos=val_pos,
                             labels=np.concatenate([y_tr, y_va]).astype(np.int64),
                             probe_tr=loop_arrays.source_probe(y_tr), probe_va=loop_arrays.source_probe(y_va))
        self._start_dynamics(given, len(y_tr), len(y_va))
        if self.frames:
            self._start_frames(*loop_arrays.ids_at(given, train_pos, val_pos), y_tr[train_pos], y_va[val_pos],
                               inputs if inputs is not None else self.inputs)
        if self.resume_after:
            run_record.warn_lost(self.run_dir, self.resume_after, self.missing_frame if self.frames else None)

    def log_epoch(self, epoch: int, train: Split, val: Split, *, metrics: Mapping[str, float] | None = None,
                  ids: Any = None, logits: tuple[Any, Any] | None = None, last: bool = False) -> None:
        """Record one finished epoch: its history row, every source's dynamics and, on the
        schedule, a frame of the fixed sample. Returns at once: the worker draws the frame, the
        writer thread writes the rest in batches (see ``flush_seconds``).

        ``train`` and ``val`` are ``(features, labels, proba)`` of the unaugmented splits in a
        fixed order; ``metrics`` adds or overrides numbers of the history row (``train_loss``,
        ``val_loss``, ...; the losses default to the log-loss of ``proba``); ``ids`` is
        ``(train_ids, val_ids)`` (first call only); ``logits`` ``(train, val)`` gives the margins
        (else log-probabilities stand in); ``last`` says the loop stops after this epoch before
        ``epochs`` (early stopping), so it gets a frame as the last epoch does. An epoch at or
        before ``resume_after`` records only what the interruption cut off.
        """
        started = time.perf_counter()
        self._require_open("log_epoch")
        epoch = loop_arrays.check_epoch(epoch, self._logged, self.epochs)
        n, first = len(self.class_names), self._sources is None
        f_tr, y_tr, p_tr = loop_arrays.split_arrays(train, "train", n, values=first)
        f_va, y_va, p_va = loop_arrays.split_arrays(val, "val", n, values=first)
        self.set_sources(y_tr, y_va, ids=ids)
        loop_arrays.check_same_sources(epoch, y_tr, y_va, self._sources)
        catching_up = self.resume_after is not None and epoch <= self.resume_after
        if not catching_up:
            self._writer.check()
        history = self.owner and not catching_up
        record = not catching_up or not dynamics.epoch_path(self.run_dir, epoch).exists()
        due = self.frames and (should_visualize(epoch, self.epochs, self.every) or epoch == self.epochs or last)
        frame = due and (not catching_up or self.missing_frame(epoch))
        board = self._board is not None and not catching_up
        entry = LoggedEpoch(epoch, y_tr, epoch_writes.private(p_tr, train[2]), y_va, epoch_writes.private(p_va, val[2]),
                            epoch_writes.metrics_of(metrics), epoch_writes.private_logits(logits, (p_tr.shape, p_va.shape)),
                            history, record, board)
        if history or record or board:
            self._book.add(entry)
        if frame:
            self.worker.submit(frame_snapshot(epoch, entry, f_tr, f_va, self._sources))
        if due and board:
            va = self._sources["val_pos"]
            self._book.later(self._board.embedding, epoch, np.asarray(f_va)[va], y_va[va], p_va[va].argmax(axis=1),
                             self._sample_val_ids)
        if self._book.due():
            self._writer.submit(self._book.write, self._book.take())
        self._last_epoch = epoch
        self._logged = epoch
        self._last_val = (entry.y_va, entry.p_va)
        if self.flush_seconds == 0 or self._poll_due():
            self.poll()
        self.seconds += time.perf_counter() - started

    def _require_open(self, what: str) -> None:
        if self._state != "open":
            raise RuntimeError(f"{what}: this Timelapse is {'not open yet' if self._state == 'new' else 'closed'}; "
                               f"use it as `with Timelapse(...) as tl:` (or call open() first, close() last)")

    def flush(self) -> None:
        """Write every epoch logged so far (history, per-source records, TensorBoard scalars) and
        wait for it: call it where you save a checkpoint, so that even a hard kill (SIGKILL)
        cannot lose what the checkpoint covers. A failed write is raised here."""
        if self._book is not None and self._book.waiting:
            self._writer.submit(self._book.write, self._book.take())
        if self._writer is not None:
            self._writer.wait()
            self._writer.check()

    def missing_frame(self, epoch: int) -> bool:
        """Whether ``epoch`` is due a frame that is not on disk (a resumed run's first epoch)."""
        from latentlapse.core.timelapse.layouts import layout_path

        due = should_visualize(epoch, self.epochs, self.every) or epoch == self.epochs
        return self.frames and due and not layout_path(self.run_dir, epoch, self.epochs).exists()

    def missing_dynamics(self, epoch: int) -> bool:
        """Whether ``epoch``'s per-source record is neither on disk nor waiting to be written."""
        waiting = self._book is not None and self._book.has(epoch)
        return not waiting and not dynamics.epoch_path(self.run_dir, epoch).exists()

    def poll(self) -> None:
        """Pass on the worker's messages; raise the worker's RunFailed if it failed (called by log_epoch)."""
        self._polled = time.monotonic()
        if self.worker is None:
            return
        for message in self.worker.poll():
            self._on_message(message)
        self.worker.check()
        self.worker.keep_up()

    def request_abort(self) -> None:
        """Stop waiting for frames still queued (a second Ctrl-C during cleanup)."""
        self._abort = True

    def close(self, status: str = "completed", *, error: BaseException | None = None) -> None:
        """End the run: wait for the dynamics, let the worker draw what is queued and (completed)
        make the GIF, curves, diagnosis and report; the owner also writes the final metrics and
        the status ("completed" with no epoch logged ends failed: nothing was filmed).
        Idempotent; the worker never outlives it."""
        if self._state != "open":  # closed already, or never opened: nothing to end
            return
        reason: BaseException | str | None = error
        if status == "completed" and self.owner and not self._logged:
            status, reason = "failed", run_record.nothing_logged(self.run_dir, self.resume_after)
        self._closing_status, self._state = status, "closed"
        try:
            try:
                self._stop_writes()
                if status == "completed" and self.owner and self._last_val is not None:
                    run_record.final_results(self.run_dir, self.class_names, self._last_val, self._last_epoch, self._history)
            except BaseException:
                self._stop_frames("failed")  # never leave the worker behind, nor pretend the run completed
                raise
            self._stop_frames(status)
            if status == "completed" and not self.frames:
                from latentlapse.core.timelapse.end_of_run import write_curves, write_dynamics

                write_curves(self.run_dir)
                write_dynamics(self.run_dir)
        except BaseException as exc:
            if self.owner:
                run_record.record_end(self.run_dir, "failed", exc, self._last_epoch, self.seconds)
            raise
        finally:
            self._signals.restore()
        if self.owner:
            run_record.record_end(self.run_dir, status, reason, self._last_epoch, self.seconds)

    # ------------------------------------------------------------------------------- details
    def _poll_due(self) -> bool:
        """Whether the worker's messages were last read ``POLL_SECONDS`` ago (a failed worker is
        noticed within it; reading them every epoch cost a fast loop up to 1 ms an epoch)."""
        return time.monotonic() - self._polled >= POLL_SECONDS

    def _start_dynamics(self, ids: tuple[np.ndarray, np.ndarray] | None, n_train: int, n_val: int) -> None:
        sources = self.run_dir / dynamics.DYNAMICS_DIR / dynamics.SOURCES_FILE
        if not (self.resume_after is not None and sources.exists()):
            self._book.later(epoch_writes.write_sources, self.run_dir, ids, n_train, n_val, self._sources["labels"], self.class_names)

    def _stop_writes(self) -> None:
        """Write what is pending, wait for every file being written (dynamics, history, the
        sample's files); a failed write is raised (the first one)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self._book.waiting:
            writer.submit(self._book.write, self._book.take())
        try:
            writer.stop()
        finally:
            self._history = self._book.history

    def _start_frames(self, train_ids, val_ids, train_labels, val_labels, inputs) -> None:
        """Write the sample's files (on the writer thread) and send the worker its spec."""
        from latentlapse.core.timelapse import explorer

        resuming = self.resume_after is not None
        self._sample_val_ids = val_ids
        if not (resuming and (self.run_dir / SAMPLES_FILE).exists()):
            self._book.later(lambda: atomic.write_text(self.run_dir / SAMPLES_FILE, samples_csv(
                self.class_names, train_ids, train_labels, val_ids, val_labels)))
        if inputs is not None and not (resuming and (self.run_dir / explorer.INPUTS_FILE).exists()):
            rows = loop_arrays.sample_inputs(inputs, self._sources, train_ids, val_ids)
            self._book.later(lambda: explorer.save_inputs(self.run_dir, **rows))
        spec = TimelapseSpec(run_dir=str(self.run_dir), class_names=self.class_names, colors=self.colors,
                             markers=self.markers, method=self.method, total_epochs=self.epochs,
                             seed=rng.projection_seed(self.seed), train_ids=train_ids, val_ids=val_ids,
                             train_labels=train_labels, val_labels=val_labels)
        self.worker.send_spec(spec)
        log.info("latent-space time-lapse: %s of %d training + %d validation sources, frames at epochs %s",
                 self.method, len(train_ids), len(val_ids), messages.epochs_text(self.epochs, self.every))

    def _stop_frames(self, status: str) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            end_of_run.stop_worker(worker, status, self.run_dir, self._on_message, lambda: self._abort,
                                   lambda: self.frames_written)

    def _on_message(self, message: tuple) -> None:
        if message[0] == "frame":
            self.frames_written += 1
        messages.log_message(message)

