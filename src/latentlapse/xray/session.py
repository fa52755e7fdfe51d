"""The lifecycle of one run once its folder exists: signals, checkpoints, and its three endings.

A :class:`Session` builds the trainer (with the time-lapse callback when asked), trains, and
ends the run ``completed`` (results written), ``interrupted`` (Ctrl-C or SIGTERM: the frames
already queued are drawn, history ends at the checkpoint on disk, exit 130) or ``failed`` (the
first error's line recorded and raised as :class:`~latentlapse.core.errors.RunFailed`).
:mod:`latentlapse.xray.pipeline` creates or reopens the folder and hands it over.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from latentlapse.core import atomic, runs
from latentlapse.xray import checkpoints
from latentlapse.xray.config import TrainConfig
from latentlapse.core.errors import RunFailed
from latentlapse.xray.prepare import Prepared

log = logging.getLogger(__name__)

Announce = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its folder, final status, the exit code for the CLI, and metrics."""

    run_dir: Path
    status: str
    exit_code: int
    metrics: dict | None = None


class Session:
    """One (new or resumed) run's lifecycle; see :func:`latentlapse.xray.pipeline.train` and ``resume``."""

    def __init__(self, run_dir: Path, config: TrainConfig, prepared: Prepared, device: str,
                 method: str | None, checkpoint: dict | None, announce: Announce, ckpt_dir: Path,
                 world=None):
        self.run_dir = run_dir
        self.config = config
        self.prepared = prepared
        self.device = device
        self.method = method
        self.checkpoint = checkpoint
        self.announce = announce
        self.ckpt_dir = ckpt_dir
        self.world = world  # under torchrun: every rank trains, rank 0 alone writes the folder
        self.writes = world is None or world.is_main
        self.signals_received = 0
        # the epoch whose last.pt is on disk: what --resume continues from, whatever failed after it
        self.saved_epoch = int(checkpoint["trainer"]["epoch"]) if checkpoint is not None else 0
        self._timing_before = _timing_before(run_dir, checkpoint)  # a resumed run's timing covers the whole run
        self._winding_down = False
        self._finishing = False  # training is done: the last frames and the results are being made
        self._saving = False  # inside a checkpoint save: a first signal waits until last.pt is written
        self._refitting = False  # training again on every labelled source: a first signal stops only that
        self._interrupt_pending = False
        self._visualizer = None
        self._threads_before = 0

    def run(self) -> RunResult:
        """Train and end the run as completed, interrupted or failed — whatever is raised where.

        SIGTERM takes Ctrl-C's path. Once training is complete, a first Ctrl-C does not stop the
        finishing (the last frames, the results): it says that a second one skips the frames not
        yet drawn, as after an interrupt; the first one during the refit (``--refit``) stops the
        refit, and best.pt stays the model trained on the training split.
        """
        for line in self.prepared.messages:
            log.info(line)
        for line in self.prepared.warnings:
            log.warning(line)
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_signal)}
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # nohup / background jobs keep ignoring it
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)
        trainer = None
        try:
            try:
                trainer = self._build_trainer()
                self._visualizer = next((c for c in trainer.callbacks if hasattr(c, "request_abort")), None)
                trainer.fit()
                self._finishing = True
                return self._finish_completed(trainer)
            except KeyboardInterrupt:
                return self._finish_interrupted(trainer, self._visualizer)
            except BaseException as exc:
                return self._finish_failed(trainer, exc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._threads_before:  # a library caller gets its own thread count back
                import torch

                torch.set_num_threads(self._threads_before)

    def _on_signal(self, signum, frame) -> None:
        """Ctrl-C and SIGTERM for the whole session, so there is no moment without a handler.

        The first one stops training (KeyboardInterrupt) — after the checkpoint being saved, if
        any, is written: torch.save turns an exception raised inside it into a RuntimeError. Any
        later one — or any while the run is being wound down after an interrupt or a failure —
        only skips the frames not yet drawn: the cleanup that keeps the folder consistent always
        runs to its end.
        """
        self.signals_received += 1
        if self._refitting:  # the first signal during the refit stops the refit alone; see _refit_window
            self._refitting = False
            raise KeyboardInterrupt
        if self.signals_received == 1 and self._finishing:
            log.warning("training is complete and the run is being finished (its last frames and results); "
                        "Ctrl-C again skips the frames not yet drawn")
            return
        if self.signals_received == 1 and not self._winding_down:
            if self._saving:
                self._interrupt_pending = True
                return
            raise KeyboardInterrupt
        if self._visualizer is not None:
            self._visualizer.request_abort()
        log.warning("still cleaning up so the run folder stays consistent; frames not yet drawn are skipped")

    # ------------------------------------------------------------------------------- building
    def _build_trainer(self):
        from latentlapse.xray.experiment import build_trainer
        from latentlapse.xray.model import describe

        c = self.config
        trainer = build_trainer(self.prepared, self.device, save_checkpoint=self._save_checkpoint,
                                write_history=self._write_history, callbacks=self._callbacks(), world=self.world)
        model = trainer.model
        self._use_threads(trainer)
        if self.checkpoint is not None:
            trainer.load_state_dict(self.checkpoint["trainer"])
            self._write_history(trainer.history)
            log.info("resuming after epoch %d of %d", trainer.epoch, c.epochs)
        elif self.writes:
            runs.update_metadata(self.run_dir, model_description=describe(model))
        if c.num_workers:
            log.info("--num_workers %d accepted; batches come from in-memory tensors, no loader workers are used", c.num_workers)
        from latentlapse.xray.training import selection_label

        refit = "; at the end it is trained again on every labelled source (--refit)" if c.refit else ""
        log.info("best checkpoint chosen by %s%s; last.pt is rewritten every epoch",
                 selection_label(trainer.options.select_by), refit)
        return trainer

    def _use_threads(self, trainer) -> None:
        """Choose torch's threads for this run (kept on --resume), log it once, record it, and
        watch for an epoch far slower than the ones before (the machine got busy)."""
        import torch

        from latentlapse.core import threads

        recorded = runs.read_metadata(self.run_dir).get("threads") if self.checkpoint is not None else None
        choice = threads.choose_for_run(self.config.threads, trainer.model, self.prepared.dataset.n_features,
                                        self.config.batch_size, recorded)
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(choice.intra_op)
        log.info(threads.describe(choice))
        if self.writes:
            runs.update_metadata(self.run_dir, threads=choice.to_dict())
        trainer.callbacks.append(threads.SlowEpochWatch(choice))

    def _callbacks(self) -> list:
        """The time-lapse adapter: per-source dynamics always (they cost no forward pass), frames when
        asked; none on the ranks of a torchrun job other than 0, which write nothing."""
        if not self.writes:
            return []
        from latentlapse.xray.training_visualizer import TrainingVisualizer

        resume_after = self.saved_epoch if self.checkpoint is not None else None
        method = self.method if self.config.viz.enabled else None
        return [TrainingVisualizer(self.run_dir, self.config, self.prepared, method, resume_after=resume_after)]

    def _save_checkpoint(self, trainer, name: str) -> None:
        """Save best.pt or last.pt; an interrupt that came meanwhile is raised once last.pt is on disk."""
        self._saving = True
        try:
            if self.writes:
                checkpoints.save(checkpoints.checkpoint_path(self.ckpt_dir, name),
                                 checkpoints.payload(self.prepared, self.run_dir, trainer))
        finally:
            self._saving = False
        if name == "last":
            self.saved_epoch = trainer.epoch
            if self._interrupt_pending:
                self._interrupt_pending = False
                raise KeyboardInterrupt

    def _write_history(self, history) -> None:
        from latentlapse.xray.training import history_path

        if self.writes:
            atomic.write_text(history_path(self.run_dir), history.to_csv())

    # -------------------------------------------------------------------------------- endings
    def _finish_completed(self, trainer) -> RunResult:
        if not self.writes:
            return RunResult(self.run_dir, "completed", 0)
        metrics = self._final_results(trainer)
        self._end_callbacks(trainer, "completed")  # the time-lapse makes the curves, dynamics and report
        runs.update_metadata(self.run_dir, status="completed", end_time=runs.now_iso(), **self._timing(trainer),
                             best_epoch=trainer.best_epoch, epochs_run=trainer.epoch,
                             final={k: metrics[k] for k in ("acc", "balanced_acc", "macro_f1")})
        self.announce(f"run completed: {self.run_dir}")
        return RunResult(self.run_dir, "completed", 0, metrics)

    def _finish_interrupted(self, trainer, visualizer) -> RunResult:
        """Drain the frames already queued, record ``interrupted``, print how to resume (exit 130).

        Further Ctrl-C / SIGTERM only skip the frames not yet drawn (see :meth:`_on_signal`): the
        folder stays consistent. A frame the worker then fails to write (full disk) ends the run
        ``failed``.
        """
        self._winding_down = True
        if not self.writes:
            return RunResult(self.run_dir, "interrupted", 130)
        epoch = self.saved_epoch
        on_disk = f"the checkpoint of epoch {epoch} is on disk" if epoch else "no checkpoint yet"
        during = "after the last epoch" if epoch >= self.config.epochs else f"during epoch {epoch + 1}"
        log.warning("interrupted %s; finishing up (%s)", during, on_disk)
        self._visualizer = visualizer
        try:
            self._sync_history(trainer)
            self._end_callbacks(trainer, "interrupted")
        except Exception as exc:
            return self._finish_failed(trainer, exc)
        runs.update_metadata(self.run_dir, status="interrupted", end_time=runs.now_iso(),
                             epochs_run=epoch, **self._timing(trainer))
        done = f"after epoch {epoch} of {self.config.epochs}" if epoch else "before the first epoch finished"
        log.warning("interrupted %s; resume with: %s --resume %s", done, command_name(), self.run_dir)
        return RunResult(self.run_dir, "interrupted", 130)

    def _finish_failed(self, trainer, exc: BaseException) -> RunResult:
        """Stop the worker, record ``failed`` with the error's first line, and raise RunFailed."""
        self._winding_down = True
        epoch = self.saved_epoch
        if not self.writes:
            raise RunFailed(f"rank {self.world.rank}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        try:
            self._sync_history(trainer)
            self._end_callbacks(trainer, "failed")
        except Exception:  # e.g. the worker hit the same full disk; the first error is the one to report
            log.debug("while stopping after a failure", exc_info=True)
        try:
            runs.update_metadata(self.run_dir, status="failed", end_time=runs.now_iso(), epochs_run=epoch,
                                 error=f"{type(exc).__name__}: {exc}".splitlines()[0], **self._timing(trainer))
        except Exception:  # the disk may be full; the one-line error below still reaches the user
            log.debug("could not record the failed status", exc_info=True)
        if isinstance(exc, RunFailed):
            raise exc
        where = f"after the checkpoint of epoch {epoch}" if epoch else "before its first checkpoint"
        raise RunFailed(f"{self.run_dir}: run failed {where}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc

    def _sync_history(self, trainer) -> None:
        """End ``history.csv`` at the epoch whose checkpoint is on disk, where --resume continues.

        The row of an epoch is written just before its checkpoint, so a stop between the two
        would otherwise leave a row the checkpoint (and ``epochs_run``) does not have.
        """
        if trainer is not None and len(trainer.history.rows) > self.saved_epoch:
            from latentlapse.xray.training import History

            self._write_history(History(rows=trainer.history.rows[:self.saved_epoch]))

    def _end_callbacks(self, trainer, status: str) -> None:
        """Every callback's on_train_end, even when one raises (the first error is re-raised)."""
        if trainer is None:
            return
        error = None
        for callback in trainer.callbacks:
            try:
                callback.on_train_end(trainer, status)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def _timing(self, trainer) -> dict[str, float]:
        """The loop's seconds and those of its time-lapse callbacks, before a resume included."""
        if trainer is None:
            return {}
        loop, viz = self._timing_before
        return {"loop_seconds": round(loop + trainer.loop_seconds, 3),
                "viz_seconds_in_loop": round(viz + trainer.callback_seconds, 4)}

    def _final_results(self, trainer) -> dict:
        """Score and calibrate the run's model and write its results (:mod:`latentlapse.xray.run_results`)."""
        from latentlapse.xray.run_results import final_results

        return final_results(self.run_dir, self.prepared, trainer, self.ckpt_dir, self.device, self._refit_window,
                             alone=self.world is not None)

    @contextlib.contextmanager
    def _refit_window(self):
        """While the refit trains, a first Ctrl-C or SIGTERM stops the refit alone (see :meth:`_on_signal`)."""
        self._refitting = True
        try:
            yield
        finally:
            self._refitting = False


def _timing_before(run_dir: Path, checkpoint: dict | None) -> tuple[float, float]:
    """(loop, time-lapse) seconds of the epochs up to the checkpoint a run resumes from: as the
    metadata recorded them when the run stopped there, else (a killed run records none) the
    epochs' own seconds in the checkpoint's history, without the time-lapse's share."""
    if checkpoint is None:
        return 0.0, 0.0
    recorded = runs.read_metadata(run_dir)
    if recorded.get("epochs_run") == checkpoint["trainer"]["epoch"] and "loop_seconds" in recorded:
        return float(recorded["loop_seconds"]), float(recorded.get("viz_seconds_in_loop") or 0.0)
    seconds = [row.get("seconds", math.nan) for row in checkpoint["trainer"].get("history") or []]
    return math.fsum(s for s in seconds if math.isfinite(s)), 0.0


def command_name() -> str:
    """The command the user ran, for the resume hint: ``python`` and main.py by the path they gave
    (``python /work/main/main.py``), else ``latentlapse train``."""
    import shlex
    import sys

    script = sys.argv[0]
    return f"python {shlex.quote(script)}" if Path(script).name == "main.py" else "latentlapse train"
