"""The spectra trainer's callback: a thin adapter from the training loop to :class:`Timelapse`.

Every run records its per-source training dynamics (the evaluation pass the loop already makes
gives them, no extra forward pass); with ``--visualize_training`` it also films the fixed sample
through the frame worker. Both go through :class:`latentlapse.core.timelapse.live.Timelapse`, the
class library users drive from their own loops, so the CLI and the API write the same files the
same way. The session owns the run's metadata, history, checkpoints and signals
(``owner=False``).

To change the schedule or the colours, see ``latentlapse/core/timelapse/schedule.py``
(``should_visualize``) and ``latentlapse/xray/data/taxonomy.py`` (``CLASS_COLORS``,
``CLASS_MARKERS``); ``latentlapse/core/timelapse/styles.py`` holds the colours of library runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from latentlapse.xray.config import TrainConfig
from latentlapse.xray.prepare import Prepared
from latentlapse.core.timelapse.live import Timelapse
from latentlapse.xray.training import Callback, EpochResult

log = logging.getLogger(__name__)


class TrainingVisualizer(Callback):
    """Hands each epoch's evaluation to a :class:`Timelapse` (frames only when ``method``)."""

    def __init__(self, run_dir: Path, config: TrainConfig, prepared: Prepared, method: str | None, *,
                 resume_after: int | None = None):
        p = prepared
        self.run_dir = Path(run_dir)
        self.prepared = p
        self.timelapse = Timelapse(
            self.run_dir.parent, run_dir=self.run_dir, owner=False, class_names=p.scheme.names,
            colors=p.scheme.colors, markers=p.scheme.markers, epochs=config.epochs,
            method=method or "tsne", frames=bool(method), every=config.viz.every,
            train_samples=config.viz.train_samples, val_samples=config.viz.val_samples, seed=config.seed,
            tensorboard=config.tensorboard, resume_after=resume_after,
            flush_seconds=0,  # the session saves a checkpoint every epoch: its dynamics go to disk with it
        )
        self._train, self._val = p.split.train, p.split.val

    @property
    def worker(self):
        """The frame worker (None before the run starts, after it ends, or without frames)."""
        return self.timelapse.worker

    @property
    def seconds(self) -> float:
        """Time spent in the loop on the time-lapse and the dynamics."""
        return self.timelapse.seconds

    def on_train_start(self, trainer) -> None:
        p, tl = self.prepared, self.timelapse
        tl.open()
        X, names, counts = p.dataset.X, p.dataset.feature_names, p.dataset.counts
        if p.values_read is not None:  # a catalogue's values as read, not imputed, without the derived indicators
            X, names = p.values_read, p.schema.columns
        inputs = dict(kind=p.dataset.kind, train_X=X[self._train], val_X=X[self._val],
                      train_counts=counts[self._train], val_counts=counts[self._val],
                      energy=p.dataset.energy, feature_names=names)
        tl.set_sources(p.y[self._train], p.y[self._val], ids=(p.dataset.ids[self._train], p.dataset.ids[self._val]),
                       inputs=inputs)
        epoch = trainer.epoch
        if epoch and (tl.missing_frame(epoch) or tl.missing_dynamics(epoch)):
            log.info("recording epoch %d, which the interruption cut off", epoch)
            self.on_epoch_end(trainer, trainer.evaluate_last_epoch())

    def on_epoch_end(self, trainer, result: EpochResult) -> None:
        self.timelapse.log_epoch(
            result.epoch, (result.train_features, self.prepared.y[self._train], result.train_proba),
            (result.val_features, self.prepared.y[self._val], result.val_proba), metrics=result.scores,
            logits=(result.train_logits, result.val_logits), last=result.is_last,
        )

    def on_train_end(self, trainer, status: str) -> None:
        """Wait for the dynamics, drain and stop the worker, make the end-of-run outputs."""
        self.timelapse.close(status)

    def request_abort(self) -> None:
        """Stop waiting for frames still queued (a second Ctrl-C during cleanup)."""
        self.timelapse.request_abort()
