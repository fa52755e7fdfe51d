"""A visualised run's end: the frame worker drained and stopped, and for a completed run the
animation, curves, diagnosis and report.

Made by the frame worker once the last frame is drawn (the main process has written
``final_metrics.json`` before it asks the worker to finish), or by the main process from the
frames on disk when a second Ctrl-C skipped the rest. Each output is made on its own: a
bug in one (say the curves) is reported as a warning message and does not cost the others, nor
turn a completed run into a failed one. A full disk (RunFailed) still propagates, as for frames.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from latentlapse.core.errors import RunFailed

log = logging.getLogger(__name__)


def stop_worker(worker, status: str, run_dir: Path, on_message: Callable[[tuple], None],
                aborted: Callable[[], bool], frames_written: Callable[[], int]) -> None:
    """Drain and stop the frame worker at the run's end (see ``FrameWorker.finish``). Frames a
    second Ctrl-C skipped are left out, but a completed run still gets :func:`finish_outputs`,
    made here; a worker that died before a completed run's end fails it, after an interrupt or a
    failure it is only reported."""
    from latentlapse.core import atomic
    from latentlapse.core.timelapse import messages

    if not worker.has_spec:  # no epoch was logged: nothing to draw
        worker.terminate()
        return
    if worker.pending and worker.exitcode is None:  # a dead worker draws nothing more
        log.info("drawing the last %d frame%s ...", worker.pending, "s" if worker.pending > 1 else "")
    try:
        finished = worker.finish(status, on_message, aborted)
    finally:
        worker.terminate()
        atomic.remove_stale_temps(run_dir)
    if finished:
        return
    if aborted():
        log.warning("the frames not yet drawn were skipped, as asked; those already written are complete")
        if status == "completed":  # the model is trained: the run still gets its animation, curves and report
            for message in finish_outputs(run_dir):
                messages.log_message(message)
        return
    written = frames_written()
    done = (f"the {written} frame{'s' if written > 1 else ''} written are complete" if written else
            "no frame was written (the worker's own error, if it had one, is printed above)")
    if status == "completed":
        raise RunFailed(f"{run_dir}: the frame worker stopped (exit code {worker.exitcode}) before it finished the "
                        f"time-lapse; {done}")
    log.warning("frame worker stopped before it finished; %s", done)


def finish_outputs(run_dir: str | os.PathLike, thumbnails: dict | None = None) -> list[tuple]:
    """A completed run's end: the animation of the frames on disk (``thumbnails``: the worker's
    palette images, made as it drew them), then :func:`write_outputs`; return messages. Made by
    the worker, or by the main process when a second Ctrl-C stopped the worker first."""
    from latentlapse.core.timelapse import animate

    messages: list[tuple] = []
    if animate.frame_paths(run_dir):
        gif = _attempt(messages, "training_animation.gif", animate.write_gif, run_dir, thumbnails=thumbnails)
        if gif is not None:
            messages.append(("animation", str(gif)))
    return messages + write_outputs(run_dir, status="completed")


def write_outputs(run_dir: str | os.PathLike, status: str = "completed") -> list[tuple]:
    """Write ``metrics.png``, ``dynamics.csv``/``.png``, ``diagnosis.txt``/``.json`` and ``report.html``;
    return messages.

    Messages: ``("curves", path)``, ``("dynamics", path)``, ``("diagnosis", text)``, ``("report", path)`` and, for an
    output that could not be made, ``("warning", line)``.
    """
    from latentlapse.core.timelapse import curves, diagnose, report, runfiles

    folder = Path(run_dir)
    messages: list[tuple] = []
    run = _attempt(messages, "curves, diagnosis and report", runfiles.load_run, folder)  # read once for all three
    if run is None:
        return messages
    path = _attempt(messages, "metrics.png", curves.save_curves, run)
    if path is not None:
        messages.append(("curves", str(path)))
    written = _attempt(messages, "dynamics.csv and dynamics.png", _dynamics, folder)
    if written is not None:
        messages.append(("dynamics", str(written)))
    diagnosis = _attempt(messages, "the diagnosis", diagnose.diagnose_files, run)
    if diagnosis is None:
        return messages + [("warning", "report.html not written: it shows the diagnosis, which failed")]
    _attempt(messages, "diagnosis.txt", diagnose.write_diagnosis, folder, diagnosis)
    messages.append(("diagnosis", diagnose.format_text(diagnosis)))
    path = _attempt(messages, "report.html", report.save_report, run, diagnosis, status=status)
    if path is not None:
        messages.append(("report", str(path)))
    return messages


def write_curves(run_dir: str | os.PathLike) -> Path | None:
    """``metrics.png`` alone (for a run without a time-lapse); logs the path or a warning."""
    from latentlapse.core.timelapse import curves

    messages: list[tuple] = []
    path = _attempt(messages, "metrics.png", curves.plot_curves, Path(run_dir))
    for _, line in messages:
        log.warning(line)
    if path is not None:
        log.info("learning curves: %s", path)
    return path


def write_dynamics(run_dir: str | os.PathLike) -> Path | None:
    """``dynamics.csv`` and ``dynamics.png`` alone (for a run without a time-lapse); logs them or a warning."""
    messages: list[tuple] = []
    path = _attempt(messages, "dynamics.csv and dynamics.png", _dynamics, Path(run_dir))
    for _, line in messages:
        log.warning(line)
    if path is not None:
        log.info("training dynamics: %s", path)
    return path


def _dynamics(folder: Path) -> Path | None:
    """Write the dynamics outputs when the run recorded any; the path of dynamics.csv, else None."""
    from latentlapse.core.timelapse import dynamics, dynamics_summary

    if not dynamics.recorded_epochs(folder):
        return None
    csv_path, _, summary = dynamics_summary.write_summary(folder)
    log.info("%s", summary.sentence())
    return csv_path


def _attempt(messages: list[tuple], what: str, function: Callable[..., Any], *args, **kwargs) -> Any:
    """``function(*args, **kwargs)``, or None with a warning message when it raises (but a full
    disk, RunFailed, propagates: the run cannot finish cleanly then)."""
    try:
        return function(*args, **kwargs)
    except RunFailed:
        raise
    except Exception as exc:  # a bug here must not fail a run whose model is trained and saved
        log.debug("%s failed", what, exc_info=True)
        messages.append(("warning", f"{what} not written: {type(exc).__name__}: {exc}".splitlines()[0]))
        return None
