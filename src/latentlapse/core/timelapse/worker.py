"""The background process that turns snapshots into frames, so training never waits for a picture.

The training process sends a :class:`TimelapseSpec` once and then one :class:`Snapshot` per
visualised epoch; the worker projects, measures, renders and writes, and reports back one
message per frame. It runs with one thread at the lowest CPU priority (nice 19 and, on Linux,
the idle scheduling policy, so a training thread that wakes takes its core back at once),
ignores Ctrl-C (the parent decides when it stops), and exits by itself if the parent disappears.

On a busy machine the idle policy would starve it: other work always wants the cores, and frames
arrived half an hour late. So the parent raises the worker to its own priority while a frame has
waited longer than :data:`LAG_LIMIT_SECONDS` since its epoch ended (and while the run finishes),
and lowers it again once every frame is drawn (:func:`urgent`). Leaving the idle policy takes
CAP_SYS_NICE or an RLIMIT_NICE that allows it (``ulimit -e``); without, the log says frames lag.

A frame it cannot write (a full disk, a read-only folder, a bug) is not a silent death: the worker
sends one ``("failed", message)`` line and exits, and the parent turns that — or a worker that
vanished without a word — into a :class:`~latentlapse.core.errors.RunFailed`, so the run ends
``failed`` instead of ``completed`` with frames missing.

This module imports only the standard library (and ``latentlapse.core.errors``, which imports nothing
else) at the top: in the spawned child, thread limits must be set before numpy and friends load.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from latentlapse.core.errors import RunFailed

log = logging.getLogger(__name__)

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_PARENT_CHECK_SECONDS = 1.0
LAG_LIMIT_SECONDS = 20.0  # a frame waiting longer than this raises the worker's priority


def urgent(oldest_wait: float | None, limit: float, now_urgent: bool) -> bool:
    """Whether the worker should run at normal priority: from the moment the oldest frame not yet
    drawn has waited longer than ``limit`` seconds since its epoch ended, until none is waiting."""
    if oldest_wait is None:
        return False
    return now_urgent or oldest_wait > limit


class FrameWorker:
    """Parent-side handle of the worker process."""

    def __init__(self, spec: Any = None):
        """Start the process; the spec goes now or later with :meth:`send_spec` (so the process
        can start before the fixed sample is known, outside the training loop)."""
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue()
        self._outbox = context.Queue()
        self._process = context.Process(
            target=_worker_main, args=(self._inbox, self._outbox, os.getpid()), name="latentlapse-frames", daemon=True
        )
        self._process.start()
        set_priority(self._process.pid, urgent=False)
        # The queue's feeder thread starts with its first message: now, not in the training loop.
        self._inbox.put(("hello", None))
        self.has_spec = False
        self.pending = 0
        self.failure: str | None = None
        self._epoch_ends: list[float] = []  # of the snapshots sent and not yet drawn, oldest first
        self.urgent = False
        if spec is not None:
            self.send_spec(spec)

    def send_spec(self, spec: Any) -> None:
        """The run-wide facts every frame needs; once, before the first snapshot."""
        self._inbox.put(("spec", spec))
        self.has_spec = True

    @property
    def pid(self) -> int | None:
        """The worker's process id (recorded in the run's metadata)."""
        return self._process.pid

    def submit(self, snapshot: Any) -> None:
        """Queue a snapshot; returns at once."""
        self._inbox.put(("frame", snapshot))
        self.pending += 1
        end = getattr(snapshot, "epoch_end", float("nan"))
        self._epoch_ends.append(time.time() if end != end else end)

    def oldest_wait(self) -> float | None:
        """Seconds the oldest frame not yet drawn has waited since its epoch ended (None: none)."""
        return time.time() - self._epoch_ends[0] if self._epoch_ends else None

    def keep_up(self, limit: float = LAG_LIMIT_SECONDS, finishing: bool = False) -> None:
        """Raise the worker to normal priority while a frame is late (and while the run finishes,
        when training no longer needs the cores); back to idle once it has caught up. Said once
        per episode of lateness."""
        wait = self.oldest_wait()
        wanted = finishing or urgent(wait, limit, self.urgent)
        if wanted == self.urgent or not self._process.is_alive():
            return
        raised = set_priority(self._process.pid, urgent=wanted)
        self.urgent = wanted and raised
        if finishing or not wanted:
            if not wanted:
                log.info("frames caught up; the frame worker is back at idle priority")
            return
        from latentlapse.core.threads import machine_now

        machine = machine_now()
        busy = f"the machine is busy: {machine.load:.1f} of {machine.cores} cores busy, this run included"
        if raised:
            log.warning("frames are falling behind (a frame has waited %.0f s since its epoch ended; %s); the "
                        "frame worker runs at normal priority until it catches up", wait, busy)
        else:
            log.warning("frames are falling behind (a frame has waited %.0f s since its epoch ended; %s) and this "
                        "user may not raise the frame worker's priority (needs CAP_SYS_NICE or RLIMIT_NICE, e.g. "
                        "ulimit -e 20); frames will catch up when training ends", wait, busy)
            self.urgent = True  # do not retry (or warn) until it has caught up

    def poll(self) -> list[tuple]:
        """Messages the worker has sent so far (never blocks)."""
        messages = []
        while True:
            try:
                message = self._outbox.get_nowait()
            except queue.Empty:
                return messages
            messages.append(self._account(message))

    def check(self) -> None:
        """Raise RunFailed if the worker reported a failure or died; call after :meth:`poll`.

        A worker stopped by SIGTERM, SIGINT or SIGHUP was stopped from outside — a batch
        scheduler or ``kill`` signalling the whole process group, whose signal to this process
        may still be on its way — so the run stops as interrupted (KeyboardInterrupt), not failed.
        """
        if self.failure is None and not self._process.is_alive():
            self._process.join(timeout=1)
            code = self._process.exitcode
            if code is not None and -code in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                log.warning("the frame worker was stopped by signal %d; stopping the run", -code)
                raise KeyboardInterrupt
            self.failure = (f"the frame worker (process {self._process.pid}) stopped unexpectedly with exit code "
                            f"{code}; frames already written are complete")
        if self.failure is not None:
            raise RunFailed(self.failure)

    def finish(self, status: str, on_message: Callable[[tuple], None], should_abort: Callable[[], bool]) -> bool:
        """Let the worker draw what is queued and finish the run's pictures; True if it did.

        ``should_abort`` is polled while waiting; when it turns true the worker is stopped,
        which leaves only complete files behind (every write is atomic). A failure the worker
        reports (a full disk while writing a frame) is raised as RunFailed after its messages
        are passed on; a worker that died without a word returns False.
        """
        self._inbox.put(("finish", {"status": status}))
        self.keep_up(finishing=True)
        while True:
            if should_abort() or not self._process.is_alive():
                self.terminate()
                finished = False
                for message in self.poll():  # a worker that exited just now may have finished
                    on_message(message)
                    finished = finished or message[0] == "finished"
                if self.failure is not None:
                    raise RunFailed(self.failure)
                return finished
            try:
                message = self._account(self._outbox.get(timeout=0.1))
            except queue.Empty:
                continue
            on_message(message)
            if message[0] == "failed":
                self.terminate()
                raise RunFailed(self.failure)
            if message[0] == "finished":
                self._process.join(timeout=10)
                return True

    @property
    def exitcode(self) -> int | None:
        """The worker's exit code once it has stopped (negative: killed by that signal)."""
        return self._process.exitcode

    def terminate(self) -> None:
        """Stop the worker now (a frame being written is either complete or absent; the temp
        file a killed write leaves is the caller's to remove). SIGKILL if SIGTERM is ignored."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)
        # Snapshots nobody will read may still sit in the inbox's feeder thread, blocked on a
        # full pipe; without this, the interpreter would wait for it forever at exit.
        self._inbox.cancel_join_thread()
        self._inbox.close()

    def _account(self, message: tuple) -> tuple:
        if message[0] in ("frame", "skipped"):
            self.pending -= 1
            if self._epoch_ends:
                self._epoch_ends.pop(0)
        elif message[0] == "failed":
            self.failure = message[1]
        return message


def set_priority(pid: int, urgent: bool) -> bool:
    """Idle priority (nice 19 and, on Linux, ``SCHED_IDLE``) or, when ``urgent``, this process's
    own (``SCHED_OTHER`` at its nice), for every thread of ``pid``; False if not permitted.

    Set from the parent right after the start, so the spawned interpreter's start-up (and what the
    parent's ``__main__`` imports, which spawn imports again) never competes with training, and
    measured: 0.8 % of a run's wall clock under ``SCHED_IDLE`` against 2.8 % at nice 19 alone,
    where a waking torch thread can wait for the worker."""
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except (FileNotFoundError, NotADirectoryError, ValueError):
        tids = [pid]
    nice = os.getpriority(os.PRIO_PROCESS, 0) if urgent else 19
    policy = getattr(os, "SCHED_OTHER" if urgent else "SCHED_IDLE", None)
    done = True
    for tid in tids:
        try:
            if urgent and policy is not None:  # leave the idle policy first, then lower the nice value
                os.sched_setscheduler(tid, policy, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            if not urgent and policy is not None:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
        except ProcessLookupError:  # a thread that has just ended
            continue
        except PermissionError:
            done = False
        except (AttributeError, OSError):
            continue
    return done


# ----------------------------------------------------------------------------- child process
def _worker_main(inbox, outbox, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    state = _FrameState()
    while True:
        try:
            kind, payload = inbox.get(timeout=_PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        try:
            if kind == "hello":
                continue
            if kind == "spec":
                state.start(payload)
            elif kind == "frame":
                outbox.put(state.draw(payload))
            elif kind == "finish":
                for message in state.finish(payload):
                    outbox.put(message)
                outbox.put(("finished",))
                # Everything is written (atomically) and the messages are flushed below; skip
                # the interpreter's teardown of numpy/matplotlib/scikit-learn/numba, which kept
                # the parent waiting 0.2-0.4 s in join() at the end of every run.
                outbox.close()
                outbox.join_thread()
                os._exit(0)
        except Exception as exc:  # report, then stop: the parent fails the run with this line
            outbox.put(("failed", _failure_line(kind, payload, exc)))
            return


def _exit_with_parent(parent_pid: int) -> None:
    """End the worker as soon as its parent is gone (a crash, ``kill -9``), whatever the main
    thread is doing: drawing a long frame, or waiting for the rest of a snapshot the parent died
    while sending (a read that would otherwise never return). Files are atomic: at worst a temp
    file is left, which ``--resume`` removes."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _failure_line(kind: str, payload: Any, exc: Exception) -> str:
    """One line for the user: what the worker was doing and what went wrong (the file, for I/O)."""
    from latentlapse.core.errors import LatentlapseError

    doing = {"frame": f"drawing the frame of epoch {getattr(payload, 'epoch', '?')}",
             "finish": "finishing the time-lapse", "spec": "starting the time-lapse"}.get(kind, kind)
    if isinstance(exc, LatentlapseError):  # e.g. the atomic writer's "no space left on device"
        what = str(exc)
    elif isinstance(exc, OSError) and exc.filename:
        what = f"{exc.filename}: {exc.strerror}"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return f"frame worker failed while {doing}: {what}".splitlines()[0]


class _FrameState:
    """What the worker keeps between frames: the spec, the previous layout, the metric columns."""

    def start(self, spec) -> None:
        from latentlapse.core.timelapse.styles import safe_name
        from latentlapse.core.timelapse import latent_metrics, layouts

        self.spec = spec
        self.run_dir = Path(spec.run_dir)
        self.columns = latent_metrics.metric_columns([safe_name(n) for n in spec.class_names]) + [latent_metrics.FRAME_LAG]
        self.previous = layouts.last_projection(self.run_dir)  # a resumed run goes on from its last frame
        self.thumbnails: dict[str, Any] = {}  # frame file name -> palette thumbnail (~0.2 MB each)
        if spec.method == "umap":
            _thread_only_progress_lock()
            _warm_up_umap()

    def draw(self, snapshot) -> tuple:
        """Project, measure, render and log one snapshot; a projection that fails skips this frame, and
        any other failure is raised (the worker reports it and stops, and the run fails)."""
        from latentlapse.core.timelapse import animate, latent_metrics, layouts, progress, projection, render
        from latentlapse.core.timelapse.schedule import frame_name
        from latentlapse.core.timelapse.snapshot import with_scores

        spec = self.spec
        started = time.perf_counter()
        snapshot = with_scores(snapshot, spec.class_names)
        progress.append_progress(self.run_dir, snapshot.epoch, snapshot.scores)
        try:
            layout = projection.project(snapshot.train_features, snapshot.val_features, spec.method,
                                        self.previous, spec.seed)
        except (projection.ProjectionError, ValueError, FloatingPointError) as exc:
            return ("skipped", snapshot.epoch, f"frame of epoch {snapshot.epoch} skipped: {exc}")
        projected = time.perf_counter()
        metrics = latent_metrics.frame_metrics(snapshot, spec, layout, self.previous)
        measured = time.perf_counter()
        path = self.run_dir / frame_name(snapshot.epoch, spec.total_epochs, snapshot.scores["val_acc"])
        pixels = render.render_frame(path, snapshot, spec, layout, metrics, method=layout.state.method)
        metrics[latent_metrics.FRAME_LAG] = time.time() - getattr(snapshot, "epoch_end", float("nan"))
        self.thumbnails[path.name] = animate.palette_thumbnail(pixels)  # the GIF's palette, made now
        layouts.save_layout(self.run_dir, snapshot, spec, layout)  # for `compare` and `--resume`
        rendered = time.perf_counter()
        progress.append_metrics(self.run_dir, metrics, self.columns)
        self.previous = layout
        # The frame's Figure is a reference cycle holding its 4.5 MB Agg buffer: collect it now
        # (1-2 ms) rather than at the next full collection (measured: +53 MB over 19 frames).
        gc.collect(1)
        timing = {"project": projected - started, "metrics": measured - projected, "render": rendered - measured,
                  "total": time.perf_counter() - started, "lag": metrics[latent_metrics.FRAME_LAG]}
        return ("frame", snapshot.epoch, str(path), metrics, timing)

    def finish(self, options: dict[str, Any]) -> list[tuple]:
        """End-of-run outputs for a completed run: the animation, then curves, diagnosis and report."""
        from latentlapse.core.timelapse import end_of_run

        if options.get("status") != "completed":
            return []
        return end_of_run.finish_outputs(self.run_dir, thumbnails=self.thumbnails)


def _thread_only_progress_lock() -> None:
    """Give tqdm a plain thread lock before umap-learn draws its (hidden) progress bars.

    tqdm's default lock includes a multiprocessing semaphore, registered with Python's resource
    tracker; the worker's fast exit (``os._exit``) skips the finaliser that unregisters it, so
    every UMAP run ended with "resource_tracker: ... leaked semaphore objects". No other process
    writes bars through this one, so a thread lock is all tqdm needs here.
    """
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def _warm_up_umap() -> None:
    """Import umap and compile (or load from numba's disk cache) the kernels that a first and a
    warm-started frame use, on a toy problem, before the first snapshot arrives."""
    import numpy as np

    from latentlapse.core.timelapse import projection

    if not projection.umap_available():
        return
    toy = np.random.default_rng(0).normal(size=(70, 8))
    first = projection.project(toy[:60], toy[60:], "umap", None, seed=0)
    projection.project(toy[:60] * 1.01, toy[60:], "umap", first, seed=0)
