"""What a :class:`~latentlapse.core.timelapse.live.Timelapse` that owns its run records about it:
the settings, start and end in ``run_metadata.json`` (and the settings a resume reads back), the
last epoch's results, and SIGTERM taking Ctrl-C's path while the run is open."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from latentlapse.core import runs
from latentlapse.core.timelapse import dynamics, history_file

log = logging.getLogger(__name__)


def resume_settings(run_dir: Path) -> dict[str, Any]:
    """The ``Timelapse`` settings a run was made with, read back from its metadata."""
    from latentlapse.core.timelapse.runfiles import check_run_dir

    check_run_dir(run_dir)
    meta = runs.read_metadata(run_dir)
    if not meta.get("class_names"):
        raise ValueError(f"{run_dir}: not a latentlapse run (no class names in {runs.METADATA}); nothing to resume")
    viz = meta.get("config", {}).get("viz", {})
    return dict(class_names=meta["class_names"], epochs=meta["config"]["epochs"], method=meta.get("method") or "tsne",
                every=viz.get("every", 10), train_samples=viz.get("train_samples", 500),
                val_samples=viz.get("val_samples", 300), seed=meta.get("seed", 0),
                colors=meta.get("class_colors"), markers=meta.get("class_markers"),
                frames=viz.get("enabled", True), tensorboard=bool(meta["config"].get("tensorboard", False)),
                config=meta.get("config"))


def cut_back(run_dir: Path, epoch: int) -> None:
    """A resumed run's folder as it was after ``epoch``: stale temp files, and the per-source
    records, frames, layouts and per-frame rows of later epochs, removed (they are made again)."""
    from latentlapse.core import atomic
    from latentlapse.core.timelapse import progress

    atomic.remove_stale_temps(run_dir)
    dynamics.drop_epochs_after(run_dir, epoch)
    dropped = progress.drop_frames_after(run_dir, epoch)
    if dropped:
        log.info("frames of epoch%s %s came after epoch %d: dropped (they are drawn again)",
                 "s" if len(dropped) > 1 else "", ", ".join(map(str, dropped)), epoch)


def warn_lost(run_dir: Path, resume_after: int, frame_missing: Callable[[int], bool] | None) -> None:
    """Warn which epochs before a resumed run's checkpoint lost their per-source record or (with
    ``frame_missing``) their frame when the run was stopped: neither can be made again, the
    arrays they came from are gone."""
    def epochs(found: list[int]) -> tuple[str, str]:
        return ("s" if len(found) > 1 else ""), ", ".join(map(str, found))

    records = sorted(set(range(1, resume_after)) - set(dynamics.recorded_epochs(run_dir)))
    if records:
        log.warning("the training dynamics of epoch%s %s were lost when the run was stopped; the per-source "
                    "statistics leave them out", *epochs(records))
    frames = [e for e in range(1, resume_after) if frame_missing(e)] if frame_missing is not None else []
    if frames:
        log.warning("the frame%s of epoch%s %s %s not drawn before the run was stopped and cannot be drawn now "
                    "(the features they show were not kept): the time-lapse goes without them",
                    epochs(frames)[0], *epochs(frames), "were" if len(frames) > 1 else "was")


def check_resume_point(run_dir: Path, after_epoch: Any) -> None:
    """ValueError unless ``after_epoch`` is an epoch the run got to (0: from the start) and the
    run is not completed (a completed run is not resumed, as on the command line)."""
    meta = runs.read_metadata(run_dir)
    if meta.get("status") == "completed":
        raise ValueError(f"{run_dir}: the run completed; a completed run is not resumed (start a new Timelapse)")
    history = history_file.read_table(run_dir / history_file.HISTORY)
    reached = max([int(meta.get("epochs_run") or 0), *dynamics.recorded_epochs(run_dir),
                   *(int(row["epoch"]) for row in history)], default=0)
    if int(after_epoch) != after_epoch or not 0 <= after_epoch <= reached:
        raise ValueError(f"after_epoch={after_epoch!r}: {run_dir.name} recorded epochs up to {reached}; give the epoch "
                         f"of your checkpoint, 0 to {reached}")


def record_start(tl: Any) -> list[dict[str, float]]:
    """Mark the run running (a new run: with all its settings); returns the history kept (a
    resumed run's rows up to its checkpoint epoch, rewritten)."""
    from latentlapse import __version__

    common = dict(status="running", pid=os.getpid(), host=socket.gethostname(), end_time=None, error=None)
    if tl.resume_after is not None:
        rows = history_file.truncate(tl.run_dir, tl.resume_after)
        runs.record_resume(tl.run_dir, tl.resume_after, **common)
        return rows
    config = {"epochs": tl.epochs, **tl.config, "tensorboard": tl.tensorboard,
              "viz": {"enabled": tl.frames, "every": tl.every, "method": tl.method,
                      "train_samples": tl.train_samples, "val_samples": tl.val_samples}}
    runs.update_metadata(tl.run_dir, run_directory=str(tl.run_dir), num_classes=len(tl.class_names),
                         method=tl.method if tl.frames else None, start_time=runs.now_iso(), seed=tl.seed,
                         config=config, class_names=list(tl.class_names), class_colors=list(tl.colors),
                         class_markers=list(tl.markers), made_by=f"latentlapse {__version__} Timelapse", **common)
    return []


def record_end(run_dir: Path, status: str, error: BaseException | str | None, last_epoch: int, seconds: float) -> None:
    """The run's status, end time, epochs and the loop's time in the time-lapse; ``error`` is
    the exception that ended it, or the reason in words."""
    fields = dict(status=status, end_time=runs.now_iso(), epochs_run=last_epoch, viz_seconds_in_loop=round(seconds, 4))
    if error is not None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        fields["error"] = text.splitlines()[0]
    runs.update_metadata(run_dir, **fields)
    if status == "interrupted":
        log.warning("interrupted after epoch %d; go on with Timelapse.resume(%r, after_epoch=...)", last_epoch, str(run_dir))


def nothing_logged(run_dir: Path, resume_after: int | None) -> str:
    """Why a run that logged no epoch ends failed, not completed (the metadata's ``error``),
    said once in the log too."""
    reason = "no epoch was logged" + ("" if resume_after is None else
                                      f" after epoch {resume_after}, where the run was resumed")
    log.warning("%s: %s, so the run ends failed, with nothing filmed; call tl.log_epoch(epoch, train, val) "
                "once per epoch inside the `with` block", run_dir, reason)
    return reason


def final_results(run_dir: Path, class_names, last_val, last_epoch: int, history: list[dict[str, float]]) -> None:
    """``final_metrics.json`` and ``classification_report.txt`` of the last logged epoch."""
    from latentlapse.core.results import write_results

    y, proba = last_val
    write_results(run_dir, y, proba.argmax(axis=1), class_names, best_epoch=last_epoch,
                  last_scores=dict(history[-1]) if history else {}, epochs_run=last_epoch,
                  evaluated="the model at the last logged epoch")


class Signals:
    """While caught: SIGTERM (and Ctrl-C, when Python's default handler has it) raises
    KeyboardInterrupt, so both end the run ``interrupted``. While the run closes (``closing()``
    gives the status it ends with, None before) a signal only calls ``skip_frames``, so the
    cleanup that keeps the folder consistent runs to its end; closing a completed run, the
    first signal only says that a second one skips the frames, as the command line does."""

    def __init__(self, closing: Callable[[], str | None], skip_frames: Callable[[], None]):
        self._closing, self._skip = closing, skip_frames
        self._saved: dict = {}
        self._warned = False

    def catch(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._saved = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_signal)}
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._saved[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved = {}

    def _on_signal(self, signum, frame) -> None:
        status = self._closing()
        if status is None:
            raise KeyboardInterrupt
        if status == "completed" and not self._warned:
            self._warned = True
            log.warning("the loop is complete and the run is being finished (its last frames and results); "
                        "Ctrl-C again skips the frames not yet drawn")
            return
        self._skip()
        log.warning("still cleaning up so the run folder stays consistent; frames not yet drawn are skipped")
