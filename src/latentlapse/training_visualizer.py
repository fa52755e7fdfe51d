"""The training callback that films the latent space: a fixed sample, snapshots, a worker.

At the start it chooses the sample once — stratified, every class present, from the original
(never oversampled) training split and the validation split — and writes its ids to
``viz_samples.csv`` and their input rows to ``viz_inputs.npz`` (for the report's explorer). At
each epoch chosen by :func:`should_visualize` it copies the sample's penultimate-layer features
and class probabilities (already computed by the loop's evaluation pass, so this costs training
almost nothing) into a :class:`Snapshot` and hands it to the frame worker.

To change the schedule or the colours, see ``latentlapse/timelapse/schedule.py``
(``should_visualize``) and ``latentlapse/data/taxonomy.py`` (``CLASS_COLORS``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from pathlib import Path

import numpy as np

from latentlapse import atomic, rng, runs
from latentlapse.config import TrainConfig
from latentlapse.errors import RunFailed
from latentlapse.prepare import Prepared
from latentlapse.timelapse import explorer
from latentlapse.timelapse.animate import write_animation_script
from latentlapse.timelapse.schedule import should_visualize
from latentlapse.timelapse.snapshot import Snapshot, TimelapseSpec
from latentlapse.timelapse.worker import FrameWorker
from latentlapse.training import Callback, EpochResult

log = logging.getLogger(__name__)

SAMPLES_FILE = "viz_samples.csv"


def choose_sample(y: np.ndarray, budget: int, n_classes: int, generator: np.random.Generator) -> np.ndarray:
    """Indices of at most ``budget`` rows of ``y``, stratified, every present class included.

    Classes no larger than a minimum share (a third of an equal split, at least 10) are taken
    in full; the rest of the budget is shared in proportion to class size (largest remainder).
    """
    counts = np.bincount(y, minlength=n_classes)
    if counts.sum() <= budget:
        return np.arange(len(y))
    minimum = max(10, budget // (3 * max(int((counts > 0).sum()), 1)))
    quota = np.minimum(counts, minimum)
    left = budget - quota.sum()
    if left > 0:
        spare = counts - quota
        share = left * spare / max(spare.sum(), 1)
        extra = np.floor(share).astype(np.int64)
        remainder = int(left - extra.sum())
        extra[np.argsort(-(share - extra), kind="stable")[:remainder]] += 1
        quota = np.minimum(counts, quota + extra)
    chosen = [
        np.sort(generator.choice(np.flatnonzero(y == c), size=int(quota[c]), replace=False))
        for c in range(n_classes) if quota[c] > 0
    ]
    return np.sort(np.concatenate(chosen))


class TrainingVisualizer(Callback):
    """Snapshots the fixed sample at the scheduled epochs and feeds the frame worker."""

    def __init__(self, run_dir: Path, config: TrainConfig, prepared: Prepared, method: str, *, resume: bool = False):
        self.run_dir = Path(run_dir)
        self.config = config
        self.every = config.viz.every
        self.method = method
        self.resume = resume
        p = prepared
        generator = rng.generator(config.seed, "subsample")
        y_train, y_val = p.y[p.split.train], p.y[p.split.val]
        n = p.scheme.n_classes
        self.train_pos = choose_sample(y_train, config.viz.train_samples, n, generator)
        self.val_pos = choose_sample(y_val, config.viz.val_samples, n, generator)
        self.y_val = y_val
        ids = p.dataset.ids
        self.spec = TimelapseSpec(
            run_dir=str(self.run_dir),
            class_names=p.scheme.names,
            colors=p.scheme.colors,
            markers=p.scheme.markers,
            method=method,
            total_epochs=config.epochs,
            seed=rng.projection_seed(config.seed),
            train_ids=ids[p.split.train][self.train_pos],
            val_ids=ids[p.split.val][self.val_pos],
            train_labels=y_train[self.train_pos],
            val_labels=y_val[self.val_pos],
        )
        train_rows, val_rows = p.split.train[self.train_pos], p.split.val[self.val_pos]
        self._inputs = dict(kind=p.dataset.kind, train_ids=self.spec.train_ids, val_ids=self.spec.val_ids,
                            train_X=p.dataset.X[train_rows], val_X=p.dataset.X[val_rows],
                            train_counts=p.dataset.counts[train_rows], val_counts=p.dataset.counts[val_rows],
                            energy=p.dataset.energy, feature_names=p.dataset.feature_names)
        self.worker: FrameWorker | None = None
        self._abort = False
        self.frames_written = 0

    # ------------------------------------------------------------------------------ callbacks
    def on_train_start(self, trainer) -> None:
        if not (self.resume and (self.run_dir / SAMPLES_FILE).exists()):
            atomic.write_text(self.run_dir / SAMPLES_FILE, self._samples_csv())
        if not (self.resume and (self.run_dir / explorer.INPUTS_FILE).exists()):
            explorer.save_inputs(self.run_dir, **self._inputs)
        write_animation_script(self.run_dir)
        self.worker = FrameWorker(self.spec)
        runs.update_metadata(self.run_dir, worker_pid=self.worker.pid)  # lets a check find a stray worker
        if self.resume:
            self._draw_missed_frame(trainer)
        log.info("latent-space time-lapse: %s of %d training + %d validation sources, frames at epochs %s",
                 self.method, len(self.train_pos), len(self.val_pos), _epochs_text(self.config.epochs, self.every))

    def on_epoch_end(self, trainer, result: EpochResult) -> None:
        if should_visualize(result.epoch, result.total_epochs, self.every) or result.is_last:
            self.worker.submit(self.snapshot(result))
        for message in self.worker.poll():
            self._report(message)
        self.worker.check()
        self.worker.keep_up()  # a frame waiting too long on a busy machine: the worker's priority goes up  # a frame the worker could not write fails the run here

    def on_train_end(self, trainer, status: str) -> None:
        """Drain and stop the worker; idempotent, and the worker never outlives this call.

        A worker that died before finishing a completed run fails it (its time-lapse is
        incomplete); after an interrupt or failure a stopped worker is only reported. The temp
        file of a frame cut short by stopping the worker is removed.
        """
        worker, self.worker = self.worker, None
        if worker is None:
            return
        waiting = worker.pending
        if waiting:
            log.info("drawing the last %d frame%s ...", waiting, "s" if waiting > 1 else "")
        try:
            finished = worker.finish(status, self._report, lambda: self._abort)
        finally:
            worker.terminate()
            atomic.remove_stale_temps(self.run_dir)
        if finished:
            return
        if status == "completed" and not self._abort:
            raise RunFailed(f"{self.run_dir}: the frame worker stopped (exit code {worker.exitcode}) before it "
                            f"finished the time-lapse; frames already written are complete")
        log.warning("frame worker stopped before it finished; frames already written are complete")

    def _draw_missed_frame(self, trainer) -> None:
        """Draw the frame of the epoch a resumed run starts after, if the interruption cut it off.

        A Ctrl-C during a checkpoint save stops the run right after the save, before that epoch's
        snapshot is taken, and a second Ctrl-C skips frames still queued; the checkpoint's model
        gives the same features again, so the time-lapse has no hole where the run was stopped.
        """
        from latentlapse.timelapse.layouts import layout_path

        epoch, total = trainer.epoch, self.config.epochs
        if epoch == 0 or not should_visualize(epoch, total, self.every) and epoch != total:
            return
        if layout_path(self.run_dir, epoch, total).exists():
            return
        log.info("drawing the frame of epoch %d, which the interruption cut off", epoch)
        self.worker.submit(self.snapshot(trainer.evaluate_last_epoch()))

    def request_abort(self) -> None:
        """Stop waiting for frames still queued (a second Ctrl-C during cleanup)."""
        self._abort = True

    # -------------------------------------------------------------------------------- helpers
    def snapshot(self, result: EpochResult) -> Snapshot:
        """Copies of the fixed sample's features and the epoch's numbers (fancy indexing copies)."""
        return Snapshot(
            epoch=result.epoch,
            train_features=result.train_features[self.train_pos],
            val_features=result.val_features[self.val_pos],
            val_pred=result.val_pred[self.val_pos],
            val_true_all=self.y_val.copy(),
            val_pred_all=result.val_pred.copy(),
            scores=dict(result.scores),
            train_proba=None if result.train_proba is None else result.train_proba[self.train_pos].astype(np.float32),
            val_proba=result.val_proba[self.val_pos].astype(np.float32),
            epoch_end=time.time(),
        )

    def _samples_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "split", "class"])
        names = self.spec.class_names
        for ids, labels, split in ((self.spec.train_ids, self.spec.train_labels, "train"),
                                   (self.spec.val_ids, self.spec.val_labels, "val")):
            writer.writerows((str(i), split, names[int(c)]) for i, c in zip(ids, labels))
        return buffer.getvalue()

    def _report(self, message: tuple) -> None:
        kind = message[0]
        if kind == "frame":
            _, epoch, path, metrics, timing = message
            self.frames_written += 1
            displacement = metrics.get("displacement", math.nan)
            moved = "" if math.isnan(displacement) else f", points moved {displacement:.3f} of the map's spread"
            log.info("frame: %s (silhouette %.3f, 5-NN acc %.3f%s; %.2fs, on disk %.1f s after its epoch ended)",
                     Path(path).name, metrics.get("silhouette", math.nan), metrics.get("knn_acc", math.nan), moved,
                     timing["total"], timing.get("lag", math.nan))
        elif kind == "skipped":
            log.warning(message[2])
        elif kind == "animation":
            log.info("animation: %s", message[1])
        elif kind in ("curves", "report", "dynamics"):
            what = {"curves": "learning curves", "report": "report", "dynamics": "training dynamics"}[kind]
            log.info("%s: %s", what, message[1])
        elif kind == "diagnosis":
            log.info("\n%s", message[1].rstrip())
        elif kind == "warning":
            log.warning(message[1])


def _epochs_text(total: int, every: int) -> str:
    from latentlapse.timelapse.schedule import visualized_epochs

    epochs = visualized_epochs(total, every)
    return ", ".join(map(str, epochs)) if len(epochs) <= 12 else ", ".join(map(str, epochs[:10])) + f", ... {epochs[-1]}"
