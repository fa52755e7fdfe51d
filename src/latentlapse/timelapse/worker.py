"""The background process that turns snapshots into frames, so training never waits for a picture.

The training process sends a :class:`TimelapseSpec` once and then one :class:`Snapshot` per
visualised epoch; the worker projects, measures, renders and writes, and reports back one
message per frame. It runs at the lowest CPU priority with one thread, ignores Ctrl-C (the
parent decides when it stops), and exits by itself if the parent disappears.

This module imports only the standard library at the top: in the spawned child, thread limits
must be set before numpy and friends load.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

STATE_FILE = "viz_state.pkl"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_PARENT_CHECK_SECONDS = 1.0


class FrameWorker:
    """Parent-side handle of the worker process."""

    def __init__(self, spec: Any, *, finish_options: dict[str, Any] | None = None):
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue()
        self._outbox = context.Queue()
        self._process = context.Process(
            target=_worker_main, args=(self._inbox, self._outbox, os.getpid()), name="latentlapse-frames", daemon=True
        )
        self._process.start()
        self._inbox.put(("spec", spec))
        self.pending = 0
        self.finish_options = finish_options or {}

    def submit(self, snapshot: Any) -> None:
        """Queue a snapshot; returns at once."""
        self._inbox.put(("frame", snapshot))
        self.pending += 1

    def poll(self) -> list[tuple]:
        """Messages the worker has sent so far (never blocks)."""
        messages = []
        while True:
            try:
                message = self._outbox.get_nowait()
            except queue.Empty:
                return messages
            messages.append(self._account(message))

    def finish(self, status: str, on_message: Callable[[tuple], None], should_abort: Callable[[], bool]) -> bool:
        """Let the worker draw what is queued and finish the run's pictures; True if it did.

        ``should_abort`` is polled while waiting; when it turns true the worker is stopped,
        which leaves only complete files behind (every write is atomic).
        """
        self._inbox.put(("finish", {"status": status, **self.finish_options}))
        while True:
            if should_abort() or not self._process.is_alive():
                self.terminate()
                for message in self.poll():
                    on_message(message)
                return False
            try:
                message = self._account(self._outbox.get(timeout=0.1))
            except queue.Empty:
                continue
            on_message(message)
            if message[0] == "finished":
                self._process.join(timeout=10)
                return True

    def terminate(self) -> None:
        """Stop the worker now (a frame being written is either complete or absent)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)

    def _account(self, message: tuple) -> tuple:
        if message[0] in ("frame", "skipped"):
            self.pending -= 1
        return message


# ----------------------------------------------------------------------------- child process
def _worker_main(inbox, outbox, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        os.nice(19)
    except (AttributeError, OSError):
        pass
    state = _FrameState()
    while True:
        try:
            kind, payload = inbox.get(timeout=_PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        if kind == "spec":
            state.start(payload)
        elif kind == "frame":
            outbox.put(state.draw(payload))
        elif kind == "finish":
            for message in state.finish(payload):
                outbox.put(message)
            outbox.put(("finished",))
            return


class _FrameState:
    """What the worker keeps between frames: the spec, the previous layout, the metric columns."""

    def start(self, spec) -> None:
        from latentlapse.data.taxonomy import safe_name
        from latentlapse.timelapse import latent_metrics

        self.spec = spec
        self.run_dir = Path(spec.run_dir)
        self.columns = latent_metrics.metric_columns([safe_name(n) for n in spec.class_names])
        self.previous = _load_state(self.run_dir)
        if spec.method == "umap":
            _warm_up_umap()

    def draw(self, snapshot) -> tuple:
        """Project, measure, render and log one snapshot; a failure skips only this frame."""
        from latentlapse.timelapse import latent_metrics, progress, projection, render
        from latentlapse.timelapse.schedule import frame_name

        spec = self.spec
        started = time.perf_counter()
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
        render.render_frame(path, snapshot, spec, layout, metrics, method=layout.state.method)
        rendered = time.perf_counter()
        progress.append_metrics(self.run_dir, metrics, self.columns)
        self.previous = layout
        _save_state(self.run_dir, snapshot.epoch, layout)
        timing = {"project": projected - started, "metrics": measured - projected, "render": rendered - measured,
                  "total": time.perf_counter() - started}
        return ("frame", snapshot.epoch, str(path), metrics, timing)

    def finish(self, options: dict[str, Any]) -> list[tuple]:
        """End-of-run pictures for a completed run: the animation (and what the report needs)."""
        from latentlapse.timelapse import animate

        if options.get("status") != "completed":
            return []
        messages = []
        if animate.frame_paths(self.run_dir):
            messages.append(("animation", str(animate.write_gif(self.run_dir, fps=options.get("fps", 2.0)))))
        return messages


def _warm_up_umap() -> None:
    """Import umap and compile its numba kernels on a toy problem, off the training path."""
    import warnings

    import numpy as np

    try:
        import umap
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        toy = np.random.default_rng(0).normal(size=(60, 8))
        umap.UMAP(n_neighbors=10, n_epochs=20, random_state=0).fit(toy).transform(toy[:5])


def _save_state(run_dir: Path, epoch: int, layout) -> None:
    from latentlapse import atomic

    atomic.write_bytes(run_dir / STATE_FILE, pickle.dumps({"epoch": epoch, "layout": layout}))


def _load_state(run_dir: Path):
    """The previous frame's layout of a resumed run (None for a new run)."""
    path = run_dir / STATE_FILE
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return pickle.load(handle)["layout"]
