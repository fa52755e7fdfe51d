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
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from latentlapse.core import atomic, runs
from latentlapse.core.errors import RunFailed
from latentlapse.core.timelapse import dynamics, history_file, loop_arrays, messages
from latentlapse.core.timelapse.sample import SAMPLES_FILE, choose_sample, samples_csv
from latentlapse.core.timelapse.schedule import should_visualize
from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec
from latentlapse.core.timelapse.styles import check_style, default_style

log = logging.getLogger(__name__)

Split = tuple  # (features (n, d), labels (n,), class probabilities (n, k)); features may be None without frames


class Timelapse:
    """A run folder filmed from your loop; use as a context manager (see docs/LIBRARY.md).

    Parameters
    ----------
    runs_dir : folder under which the next free ``run_NNN`` is created.
    class_names : display names of the classes, index order (2-20 classes for frames).
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
    """

    def __init__(self, runs_dir: str | os.PathLike = "runs", *, class_names: Sequence[str], epochs: int,
                 method: str = "tsne", every: int = 10, train_samples: int = 500, val_samples: int = 300,
                 seed: int = 0, colors: Sequence[str] | None = None, markers: Sequence[str] | None = None,
                 frames: bool = True, tensorboard: bool = False, inputs: Any = None,
                 config: Mapping[str, Any] | None = None, run_dir: str | os.PathLike | None = None,
                 resume_after: int | None = None, owner: bool = True, signals: bool = True):
        names = tuple(str(n) for n in class_names)
        if len(names) < 2:
            raise ValueError(f"{len(names)} class name(s): a classification needs at least 2 classes")
        if epochs < 1 or every < 1:
            raise ValueError(f"epochs={epochs}, every={every}: both must be at least 1")
        if method not in ("tsne", "umap", "pca"):
            raise ValueError(f"method {method!r}: choose tsne, umap or pca")
        default_colors, default_markers = default_style(len(names))
        self.colors = tuple(colors or default_colors)
        self.markers = tuple(markers or default_markers)
        check_style(names, self.colors, self.markers)
        self.runs_dir, self.class_names, self.epochs = Path(runs_dir), names, int(epochs)
        self.method, self.every, self.seed, self.frames = method, int(every), int(seed), bool(frames)
        self.train_samples, self.val_samples = int(train_samples), int(val_samples)
        self.tensorboard, self.inputs, self.owner, self.signals = bool(tensorboard), inputs, bool(owner), bool(signals)
        self.config = dict(config or {})
        self.resume_after = resume_after
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.seconds = 0.0  # spent inside log_epoch (the loop's cost of the time-lapse)
        self.frame_seconds = 0.0  # of which: copying the frame sample and handing it to the worker
        self.frames_written = 0
        self.worker = None
        self._history: list[dict[str, float]] = []
        self._sources = None  # set on the first epoch: labels, ids, the fixed sample
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._last_epoch = 0
        self._last_val: tuple[np.ndarray, np.ndarray] | None = None
        self._abort = False
        self._closing = False
        self._signals: dict = {}
        self._board = None

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, after_epoch: int, **overrides: Any) -> "Timelapse":
        """Reopen an interrupted run made by a ``Timelapse`` to go on after ``after_epoch`` (the
        epoch of your own checkpoint): later history and dynamics are dropped, frames go on."""
        run_dir = Path(run_dir)
        meta = runs.read_metadata(run_dir)
        if not meta.get("class_names"):
            raise ValueError(f"{run_dir}: not a latentlapse run (no class names in {runs.METADATA}); nothing to resume")
        viz = meta.get("config", {}).get("viz", {})
        settings = dict(class_names=meta["class_names"], epochs=meta["config"]["epochs"], method=meta.get("method") or "tsne",
                        every=viz.get("every", 10), train_samples=viz.get("train_samples", 500),
                        val_samples=viz.get("val_samples", 300), seed=meta.get("seed", 0),
                        colors=meta.get("class_colors"), markers=meta.get("class_markers"),
                        frames=viz.get("enabled", True), config=meta.get("config"))
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
        if self.run_dir is None:
            self.run_dir = runs.allocate_run_dir(self.runs_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resuming = self.resume_after is not None
        if resuming:
            atomic.remove_stale_temps(self.run_dir)
            dynamics.drop_epochs_after(self.run_dir, self.resume_after)
            self._last_epoch = self.resume_after
        if self.owner:
            self._record_start(resuming)
            if self.signals:
                self._catch_signals()
        else:
            runs.update_metadata(self.run_dir, class_colors=list(self.colors), class_markers=list(self.markers))
        if self.tensorboard:
            from latentlapse.core.timelapse.board import Board

            self._board = Board(self.run_dir, self.class_names)
        # Everything slow happens here, before the loop: the writer thread (files and their fsyncs
        # leave the loop), and the worker process, which gets its spec with the first epoch.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentlapse-writes")
        if self.frames:
            from latentlapse.core.timelapse import explorer  # noqa: F401  (imported now, used at the first epoch)
            from latentlapse.core.timelapse.animate import write_animation_script
            from latentlapse.core.timelapse.worker import FrameWorker

            self._write(write_animation_script, self.run_dir)
            self.worker = FrameWorker()
            runs.update_metadata(self.run_dir, worker_pid=self.worker.pid)  # lets a check find a stray worker
        log.info("time-lapse run folder: %s", self.run_dir)
        return self.run_dir

    def set_sources(self, train_labels: Any, val_labels: Any, ids: Any = None, inputs: Any = None) -> None:
        """Fix the sources once (labels, ids, the frame sample) and start the worker; the first
        :meth:`log_epoch` calls it when you have not."""
        if self._sources is not None:
            return
        from latentlapse.core import rng

        y_tr, y_va = loop_arrays.labels(train_labels), loop_arrays.labels(val_labels)
        n = len(self.class_names)
        for split, y in (("train", y_tr), ("val", y_va)):
            if len(y) and (y.min() < 0 or y.max() >= n):
                raise ValueError(f"{split} labels run from {y.min()} to {y.max()}, but there are {n} class names")
        train_ids, val_ids = loop_arrays.source_ids(ids, len(y_tr), len(y_va))
        generator = rng.generator(self.seed, "subsample")
        train_pos = choose_sample(y_tr, self.train_samples, n, generator)
        val_pos = choose_sample(y_va, self.val_samples, n, generator)
        self._sources = dict(y_tr=y_tr, y_va=y_va, train_pos=train_pos, val_pos=val_pos,
                             labels=np.concatenate([y_tr, y_va]).astype(np.int64))
        self._start_dynamics(np.concatenate([train_ids, val_ids]), len(y_tr), len(y_va))
        if self.frames:
            self._start_frames(train_ids[train_pos], val_ids[val_pos], y_tr[train_pos], y_va[val_pos],
                               inputs if inputs is not None else self.inputs)

    def log_epoch(self, epoch: int, train: Split, val: Split, *, metrics: Mapping[str, float] | None = None,
                  ids: Any = None, logits: tuple[Any, Any] | None = None) -> None:
        """Record one finished epoch: its history row, every source's dynamics and, on the
        schedule, a frame of the fixed sample (drawn by the worker; this returns at once).

        ``train`` and ``val`` are ``(features, labels, proba)`` of the unaugmented splits in a
        fixed order; ``metrics`` adds or overrides numbers of the history row (``train_loss``,
        ``val_loss``, ...; the losses default to the log-loss of ``proba``); ``ids`` is
        ``(train_ids, val_ids)`` (first call only); ``logits`` ``(train, val)`` gives the margins
        (else log-probabilities stand in). An epoch at or before ``resume_after`` records only
        what the interruption cut off.
        """
        started = time.perf_counter()
        f_tr, y_tr, p_tr = loop_arrays.split_arrays(train, "train")
        f_va, y_va, p_va = loop_arrays.split_arrays(val, "val")
        self.set_sources(y_tr, y_va, ids=ids)
        catching_up = self.resume_after is not None and epoch <= self.resume_after
        if not catching_up:
            self._raise_failed_write()
        scores = history_file.scores(epoch, self.class_names, y_tr, p_tr, y_va, p_va, metrics)
        writes = []  # one hand-over to the writer thread per epoch: each wake-up costs the loop
        if self.owner and not catching_up:
            self._history = history_file.add(self._history, {"epoch": epoch, **scores})
            writes.append((history_file.write, self.run_dir, list(self._history)))
        if not catching_up or not dynamics.epoch_path(self.run_dir, epoch).exists():
            l_tr, l_va = logits if logits is not None else (None, None)
            writes.append((dynamics.write_epoch, self.run_dir, epoch, self._dynamics_record(p_tr, p_va, l_tr, l_va)))
        if writes:
            self._write(_in_order, writes)
        due = self.frames and (should_visualize(epoch, self.epochs, self.every) or epoch == self.epochs)
        if due and (not catching_up or self.missing_frame(epoch)):
            frame_started = time.perf_counter()
            self.worker.submit(self._snapshot(epoch, scores, f_tr, f_va, p_tr, p_va))
            self.frame_seconds += time.perf_counter() - frame_started
        if self._board is not None and not catching_up:
            self._board.epoch(epoch, scores)
            if due:
                self._board.embedding(epoch, f_va[self._sources["val_pos"]], y_va[self._sources["val_pos"]],
                                      p_va[self._sources["val_pos"]].argmax(axis=1), self._sample_val_ids)
        self._last_epoch = max(self._last_epoch, epoch)
        self._last_val = (y_va, p_va)
        self.poll()
        self.seconds += time.perf_counter() - started

    def missing_frame(self, epoch: int) -> bool:
        """Whether ``epoch`` is due a frame that is not on disk (a resumed run's first epoch)."""
        from latentlapse.core.timelapse.layouts import layout_path

        due = should_visualize(epoch, self.epochs, self.every) or epoch == self.epochs
        return self.frames and due and not layout_path(self.run_dir, epoch, self.epochs).exists()

    def missing_dynamics(self, epoch: int) -> bool:
        """Whether ``epoch``'s per-source record is not on disk."""
        return not dynamics.epoch_path(self.run_dir, epoch).exists()

    def poll(self) -> None:
        """Pass on the worker's messages; raise RunFailed if it failed (called by log_epoch)."""
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
        the status. Idempotent; the worker never outlives it."""
        if self._closing:
            return
        self._closing = True
        try:
            try:
                if status == "completed" and self.owner and self._last_val is not None:
                    self._final_results()
                self._stop_writes()
            except BaseException:
                self._stop_frames("failed")  # never leave the worker behind, nor pretend the run completed
                raise
            self._stop_frames(status)
            if status == "completed" and not self.frames:
                from latentlapse.core.timelapse.end_of_run import write_curves, write_dynamics

                write_curves(self.run_dir)
                write_dynamics(self.run_dir)
            if self._board is not None:
                self._board.close()
        except BaseException as exc:
            if self.owner:
                self._record_end("failed", exc)
            raise
        finally:
            self._restore_signals()
        if self.owner:
            self._record_end(status, error)

    # ------------------------------------------------------------------------------- details
    def _record_start(self, resuming: bool) -> None:
        from latentlapse import __version__

        common = dict(status="running", pid=os.getpid(), host=socket.gethostname(), end_time=None, error=None)
        if resuming:
            self._history = history_file.truncate(self.run_dir, self.resume_after)
            runs.update_metadata(self.run_dir, resumed_from_epoch=self.resume_after, resumed_at=runs.now_iso(), **common)
            return
        config = {"epochs": self.epochs, **self.config,
                  "viz": {"enabled": self.frames, "every": self.every, "method": self.method,
                          "train_samples": self.train_samples, "val_samples": self.val_samples}}
        runs.update_metadata(self.run_dir, run_directory=str(self.run_dir), num_classes=len(self.class_names),
                             method=self.method if self.frames else None, start_time=runs.now_iso(), seed=self.seed,
                             config=config, class_names=list(self.class_names), class_colors=list(self.colors),
                             class_markers=list(self.markers), made_by=f"latentlapse {__version__} Timelapse", **common)

    def _record_end(self, status: str, error: BaseException | None) -> None:
        fields = dict(status=status, end_time=runs.now_iso(), epochs_run=self._last_epoch,
                      viz_seconds_in_loop=round(self.seconds, 4))
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
        runs.update_metadata(self.run_dir, **fields)
        if status == "interrupted":
            log.warning("interrupted after epoch %d; go on with Timelapse.resume(%r, after_epoch=...)",
                        self._last_epoch, str(self.run_dir))

    def _final_results(self) -> None:
        from latentlapse.core.results import write_results

        y, proba = self._last_val
        write_results(self.run_dir, y, proba.argmax(axis=1), self.class_names, best_epoch=self._last_epoch,
                      last_scores=dict(self._history[-1]) if self._history else {}, epochs_run=self._last_epoch,
                      evaluated="the model at the last logged epoch")

    def _catch_signals(self) -> None:
        """SIGTERM takes Ctrl-C's path; a second signal while closing only skips queued frames."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._signals = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_signal)}
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._signals[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if not self._closing:
            raise KeyboardInterrupt
        self._abort = True
        log.warning("still cleaning up so the run folder stays consistent; frames not yet drawn are skipped")

    def _restore_signals(self) -> None:
        for sig, handler in self._signals.items():
            signal.signal(sig, handler)
        self._signals = {}

    def _write(self, function, *args) -> None:
        """Run a file write on the writer thread, in order; a failure is raised at the next epoch."""
        self._pending.append(self._writer.submit(function, *args))

    def _start_dynamics(self, ids: np.ndarray, n_train: int, n_val: int) -> None:
        split = np.array(["train"] * n_train + ["val"] * n_val)
        sources = self.run_dir / dynamics.DYNAMICS_DIR / dynamics.SOURCES_FILE
        if not (self.resume_after is not None and sources.exists()):
            self._write(dynamics.write_sources, self.run_dir, ids, split, self._sources["labels"], self.class_names)
        if self.resume_after:
            missing = sorted(set(range(1, self.resume_after)) - set(dynamics.recorded_epochs(self.run_dir)))
            if missing:
                log.warning("the training dynamics of epoch%s %s were lost when the run was stopped; the per-source "
                            "statistics leave them out", "s" if len(missing) > 1 else "", ", ".join(map(str, missing)))

    def _dynamics_record(self, p_tr, p_va, l_tr, l_va) -> dict[str, np.ndarray]:
        """The epoch's per-source record, made here (under a millisecond); the writer thread
        writes it (the fsync is slow)."""
        proba = np.concatenate([p_tr, p_va])
        if l_tr is None or l_va is None:
            logits = np.log(np.clip(proba, 1e-12, None))
        else:
            logits = np.concatenate([np.asarray(l_tr), np.asarray(l_va)])
        return dynamics.epoch_record(self._sources["labels"], proba, logits)

    def _stop_writes(self) -> None:
        """Wait for every file being written (dynamics, history, the sample's files); a failed write is raised (the first one)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
        self._raise_failed_write()

    def _raise_failed_write(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            if future.exception() is not None:
                raise future.exception()

    def _start_frames(self, train_ids, val_ids, train_labels, val_labels, inputs) -> None:
        """Write the sample's files (on the writer thread) and send the worker its spec."""
        from latentlapse.core import rng
        from latentlapse.core.timelapse import explorer

        resuming = self.resume_after is not None
        self._sample_val_ids = val_ids
        if not (resuming and (self.run_dir / SAMPLES_FILE).exists()):
            self._write(atomic.write_text, self.run_dir / SAMPLES_FILE,
                        samples_csv(self.class_names, train_ids, train_labels, val_ids, val_labels))
        if inputs is not None and not (resuming and (self.run_dir / explorer.INPUTS_FILE).exists()):
            rows = loop_arrays.sample_inputs(inputs, self._sources, train_ids, val_ids)
            self._write(lambda: explorer.save_inputs(self.run_dir, **rows))
        spec = TimelapseSpec(run_dir=str(self.run_dir), class_names=self.class_names, colors=self.colors,
                             markers=self.markers, method=self.method, total_epochs=self.epochs,
                             seed=rng.projection_seed(self.seed), train_ids=train_ids, val_ids=val_ids,
                             train_labels=train_labels, val_labels=val_labels)
        self.worker.send_spec(spec)
        log.info("latent-space time-lapse: %s of %d training + %d validation sources, frames at epochs %s",
                 self.method, len(train_ids), len(val_ids), messages.epochs_text(self.epochs, self.every))

    def _snapshot(self, epoch: int, scores: dict, f_tr, f_va, p_tr, p_va) -> Snapshot:
        """Copies of the fixed sample's features and the epoch's numbers (fancy indexing copies)."""
        s = self._sources
        tr, va = s["train_pos"], s["val_pos"]
        val_pred_all = p_va.argmax(axis=1)
        return Snapshot(epoch=epoch, train_features=np.asarray(f_tr)[tr], val_features=np.asarray(f_va)[va],
                        val_pred=val_pred_all[va], val_true_all=s["y_va"].copy(), val_pred_all=val_pred_all,
                        scores=dict(scores), train_proba=p_tr[tr].astype(np.float32),
                        val_proba=p_va[va].astype(np.float32), epoch_end=time.time())

    def _stop_frames(self, status: str) -> None:
        """Drain and stop the worker (see FrameWorker.finish); a worker that died before a
        completed run's end fails it, after an interrupt or failure it is only reported."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        if not worker.has_spec:  # no epoch was logged: nothing to draw
            worker.terminate()
            return
        if worker.pending:
            log.info("drawing the last %d frame%s ...", worker.pending, "s" if worker.pending > 1 else "")
        try:
            finished = worker.finish(status, self._on_message, lambda: self._abort)
        finally:
            worker.terminate()
            atomic.remove_stale_temps(self.run_dir)
        if finished:
            return
        if status == "completed" and not self._abort:
            raise RunFailed(f"{self.run_dir}: the frame worker stopped (exit code {worker.exitcode}) before it "
                            f"finished the time-lapse; frames already written are complete")
        log.warning("frame worker stopped before it finished; frames already written are complete")

    def _on_message(self, message: tuple) -> None:
        if message[0] == "frame":
            self.frames_written += 1
        messages.log_message(message)


def _in_order(writes: list[tuple]) -> None:
    """Run ``(function, *args)`` writes one after another (on the writer thread)."""
    for function, *args in writes:
        function(*args)
