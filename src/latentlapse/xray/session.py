"""The lifecycle of one run once its folder exists: signals, checkpoints, and its three endings.

A :class:`Session` builds the trainer (with the time-lapse callback when asked), trains, and
ends the run ``completed`` (results written), ``interrupted`` (Ctrl-C or SIGTERM: the frames
already queued are drawn, history ends at the checkpoint on disk, exit 130) or ``failed`` (the
first error's line recorded and raised as :class:`~latentlapse.core.errors.RunFailed`).
:mod:`latentlapse.xray.pipeline` creates or reopens the folder and hands it over.
"""

from __future__ import annotations

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

CALIBRATION_PNG = "calibration.png"

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
        if self._refitting:  # the first signal during the refit stops the refit alone; see _refit
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

    def _checkpoint_payload(self, trainer, prepared: Prepared | None = None) -> dict:
        """What best.pt and last.pt hold; ``prepared``: the data the trainer trained on (a refit's)."""
        p = prepared or self.prepared
        return {
            "config": self.config.to_dict(),
            "model_spec": {"kind": p.model_kind, "n_features": p.dataset.n_features, "n_classes": p.scheme.n_classes,
                           "options": p.model_options},
            "class_names": list(p.scheme.names),
            "feature_names": list(p.dataset.feature_names),
            "feature_schema": p.schema.to_dict() if p.schema is not None else None,
            "data": {"source": p.dataset.source, "sha256": p.data_sha256, "kind": p.dataset.kind},
            "priors": self._priors(p),
            "run_dir": str(self.run_dir),
            "scores": dict(trainer.history.rows[-1]) if trainer.history.rows else {},
            "trainer": trainer.state_dict(),
        }

    def _priors(self, prepared: Prepared | None = None) -> dict[str, list[float]]:
        """``train``: class frequencies of the training split before oversampling; ``model``:
        those the raw network learns (:func:`~latentlapse.xray.prepare.learned_priors`) — the
        priors :mod:`latentlapse.xray.priors` re-weights from."""
        from latentlapse.xray.prepare import learned_priors

        p = prepared or self.prepared
        before = p.oversampled.counts_before.astype(float)
        model = learned_priors(self.config, p.oversampled.counts_after, p.alpha)
        return {"train": (before / before.sum()).tolist(), "model": model.tolist()}

    def _save_checkpoint(self, trainer, name: str) -> None:
        """Save best.pt or last.pt; an interrupt that came meanwhile is raised once last.pt is on disk."""
        self._saving = True
        try:
            if self.writes:
                checkpoints.save(checkpoints.checkpoint_path(self.ckpt_dir, name), self._checkpoint_payload(trainer))
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
        """Score best.pt on the validation split, fit its calibration there (stored back into
        best.pt), and write final_metrics.json, the report, calibration.png and --save_preds."""
        from latentlapse.xray import calibration
        from latentlapse.core import evaluation
        from latentlapse.xray.calibration_figure import reliability_png
        from latentlapse.xray.operating import both_points
        from latentlapse.xray.training import selection_label
        from latentlapse.core.results import (RAW_NETWORK, calibration_text, operating_points_text, summary_text,
                                              write_predictions, write_results)

        p = self.prepared
        names = p.scheme.names
        best_path = checkpoints.checkpoint_path(self.ckpt_dir, "best")
        if self.config.refit:  # the last epoch is kept, the trainer's own, whatever an earlier refit left in best.pt
            best = self._checkpoint_payload(trainer)
        else:
            best = checkpoints.load(best_path)
            trainer.model.load_state_dict(best["trainer"]["model"])
        logits = trainer.predict_logits(p.dataset.X[p.split.val])
        y_val = p.y[p.split.val]
        fitted = calibration.fit(logits, y_val)
        block = calibration.before_after(logits, y_val, fitted, names, "the validation split")
        points = {name: evaluation.scores(y_val, point.proba(logits).argmax(axis=1), len(names))
                  for name, point in both_points(fitted, self._priors()["train"], names).items()}
        best["calibration"] = fitted.to_dict()
        checkpoints.save(best_path, {k: v for k, v in best.items() if k != "format"})
        extra = {"calibration": block, "operating_points": points}
        if self.config.refit:
            extra["refit"] = self._refit(dict(trainer.history.rows[-1]), fitted.to_dict())
        raw = calibration.softmax(logits)
        evaluated = (f"last epoch's model (best.pt before its refit) on the validation split, {RAW_NETWORK}"
                     if self.config.refit else None)
        metrics = write_results(
            self.run_dir, y_val, raw.argmax(axis=1), names, best_epoch=trainer.best_epoch,
            last_scores=dict(trainer.history.rows[-1]), epochs_run=trainer.epoch, extra=extra,
            selected_by=selection_label(trainer.options.select_by), evaluated=evaluated,
            extra_text="\n" + calibration_text(block) + "\n" + operating_points_text(points)
            + ("\n" + refit_text(extra["refit"]) if "refit" in extra else ""),
        )
        scored = "last epoch, before the refit" if self.config.refit else "best epoch"
        atomic.write_bytes(self.run_dir / CALIBRATION_PNG, reliability_png(
            y_val, raw, fitted.apply(logits), f"Reliability on the validation split ({len(y_val)} sources), {scored}"))
        if self.config.save_preds:
            path = write_predictions(self.config.save_preds, p.dataset.ids[p.split.val], y_val, raw, names)
            same = ("the model before the refit, so predict with the refitted best.pt gives others"
                    if (extra.get("refit") or {}).get("completed")
                    else "latentlapse predict --uncalibrated --priors model gives the same")
            log.info("validation predictions written to %s (the raw network's probabilities, as the headline "
                     "scores: %s)", path, same)
        log.info(summary_text(metrics))
        log.info(calibration_text(block).rstrip())
        log.info(operating_points_text(points).rstrip())
        if "refit" in extra:
            log.info(refit_text(extra["refit"]).rstrip())
        return metrics

    def _refit(self, scores: dict, fitted_calibration: dict) -> dict:
        """Train the model again on every labelled source (``--refit``) and save it as best.pt with
        the calibration just fitted; the run's scores stay those of the model trained on the
        training split. A first Ctrl-C stops the refit alone, and a refit that fails (a NaN loss,
        a full disk) only warns: best.pt then stays that model, and the run completes. Returns
        what final_metrics.json records of it."""
        import time

        from latentlapse.xray.experiment import refit

        p = self.prepared
        n = len(p.split.train) + len(p.split.val)
        log.info("refit: training the model again on all %d labelled sources (the validation split's %d too), "
                 "%d epochs%s; it becomes best.pt (Ctrl-C stops the refit and keeps the model scored here)",
                 n, len(p.split.val), self.config.epochs,
                 ", in this process alone" if self.world is not None else "")
        started = time.perf_counter()
        kept = "best.pt stays the model trained on the training split, scored below"
        self._refitting = True
        try:
            trainer, again = refit(p, self.device)
            self._refitting = False
            payload = self._checkpoint_payload(trainer, again)
            # the calibration's priors stay those it was fitted at; the raw network's are the refit's
            payload["priors"] = {"train": self._priors()["train"], "model": payload["priors"]["model"]}
            payload["trainer"]["history"] = []  # its validation rows were training rows: no scores to keep
            record = {"sources": n, "epochs": trainer.epoch, "completed": True,
                      "seconds": round(time.perf_counter() - started, 1)}
            payload.update(scores=scores, calibration=fitted_calibration, refit=record)
            checkpoints.save(checkpoints.checkpoint_path(self.ckpt_dir, "best"), payload)
        except KeyboardInterrupt:
            log.warning("refit stopped: %s", kept)
            return {"sources": n, "completed": False, "stopped_by": "interrupt"}
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.warning("refit failed (%s): %s", error, kept)
            return {"sources": n, "completed": False, "error": error}
        finally:
            self._refitting = False
        return record


def refit_text(record: dict) -> str:
    """What ``--refit`` made of best.pt, said after the scores it leaves as they are."""
    if not record.get("completed"):
        why = f"failed ({record['error']})" if record.get("error") else "stopped before its end"
        return f"Refit: {why}; best.pt is the model trained on the training split, scored above.\n"
    return (f"Refit: best.pt was then trained again on all {record['sources']} labelled sources (the validation "
            f"split included) for {record['epochs']} epochs and keeps the calibration above; the scores above are "
            f"of the model trained on the training split alone (latentlapse cv scores the refitted one).\n")


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
