"""A training run from start to finish: run folder, trainer, callbacks, interrupts, results.

``train(config)`` starts a new run in the next free ``run_NNN`` folder; ``resume(run_dir)``
continues an interrupted one from its ``last.pt`` in the same folder. Either way the run's
status in ``run_metadata.json`` ends as ``completed``, ``interrupted`` or ``failed``.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from latentlapse import __version__, atomic, checkpoints, rng, runs
from latentlapse.config import TrainConfig
from latentlapse.errors import InputError, RunFailed, UsageError
from latentlapse.prepare import Prepared, prepare

log = logging.getLogger(__name__)

Announce = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its folder, final status, the exit code for the CLI, and metrics."""

    run_dir: Path
    status: str
    exit_code: int
    metrics: dict | None = None


def _log_announce(line: str) -> None:
    log.info(line)


def resolve_device(requested: str) -> str:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda is a usage error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was requested but PyTorch sees no CUDA device; use --device cpu or auto")
    return requested


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a run's numbers and pictures."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"latentlapse": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "scipy", "scikit-learn", "openTSNE", "umap-learn", "matplotlib", "astropy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def train(config: TrainConfig, announce: Announce = _log_announce) -> RunResult:
    """Run a new training job as configured; returns its RunResult (also on interrupt/failure)."""
    device = resolve_device(config.device)
    prepared = prepare(config)
    method = _viz_method(config)
    run_dir = runs.allocate_run_dir(config.runs_dir)
    announce(str(run_dir))
    _write_start_metadata(run_dir, config, prepared, device, method)
    return _Session(run_dir, config, prepared, device, method, checkpoint=None, announce=announce).run()


def resume(run_dir: str | os.PathLike, announce: Announce = _log_announce) -> RunResult:
    """Continue an interrupted (or crashed) run from its last checkpoint, in its own folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder; give the path of an interrupted run (e.g. training_feature_visualizations/run_003)")
    metadata = runs.read_metadata(run_dir)
    if not metadata:
        raise InputError(f"{run_dir}: not a latentlapse run (no {runs.METADATA}); nothing to resume")
    status = metadata.get("status")
    if status == "completed":
        raise InputError(f"{run_dir}: the run is already completed; start a new run instead of resuming")
    if status == "running" and _owner_alive(metadata):
        raise InputError(f"{run_dir}: the run is still running (process {metadata['pid']}); wait for it or stop it first")
    config = TrainConfig.from_dict(metadata["config"])
    ckpt_dir = Path(metadata["checkpoint_dir"])
    checkpoint = checkpoints.load(checkpoints.checkpoint_path(ckpt_dir, "last"))
    device = resolve_device(config.device)
    prepared = prepare(config)
    if prepared.data_sha256 != metadata["data"]["sha256"]:
        raise InputError(f"{run_dir}: the data has changed since the run started ({config.data or 'built-in set'}); "
                         f"resume needs the same data; start a new run instead")
    atomic.remove_stale_temps(run_dir)
    announce(str(run_dir))
    runs.update_metadata(run_dir, status="running", pid=os.getpid(), host=socket.gethostname(),
                         resumed_from_epoch=int(checkpoint["trainer"]["epoch"]))
    method = metadata.get("method") or _viz_method(config)
    return _Session(run_dir, config, prepared, device, method, checkpoint=checkpoint, announce=announce).run()


def _owner_alive(metadata: dict) -> bool:
    if metadata.get("host") != socket.gethostname() or not metadata.get("pid"):
        return False
    try:
        os.kill(int(metadata["pid"]), 0)
    except (ProcessLookupError, PermissionError):
        return False
    return int(metadata["pid"]) != os.getpid()


def _viz_method(config: TrainConfig) -> str | None:
    """The projection actually used: umap falls back to t-SNE (one warning) when not installed."""
    if not config.viz.enabled:
        return None
    if config.viz.method == "umap":
        from latentlapse.timelapse.projection import umap_available

        if not umap_available():
            log.warning("UMAP not found, using t-SNE: pip install 'latentlapse[umap]' to use --viz_method umap")
            return "tsne"
    return config.viz.method


def _write_start_metadata(run_dir: Path, config: TrainConfig, p: Prepared, device: str, method: str | None) -> None:
    from latentlapse.timelapse.projection import umap_available

    ckpt_dir = Path(config.out_dir) / run_dir.name if config.out_dir else run_dir
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    names = list(p.scheme.names)
    runs.update_metadata(
        run_dir,
        run_directory=str(run_dir),
        num_classes=config.classes,
        method=method,
        start_time=runs.now_iso(),
        has_umap=umap_available(),
        status="running",
        seed=config.seed,
        config=config.to_dict(),
        class_names=names,
        class_counts={
            "train_before_oversampling": dict(zip(names, p.oversampled.counts_before.tolist())),
            "train_after_oversampling": dict(zip(names, p.oversampled.counts_after.tolist())),
            "validation": dict(zip(names, p.val_counts.tolist())),
        },
        data={
            "source": p.dataset.source,
            "path": str(Path(config.data).resolve()) if config.data else None,
            "sha256": p.data_sha256,
            "kind": p.dataset.kind,
            "n_sources": len(p.dataset),
            "n_features": p.dataset.n_features,
            "notes": list(p.dataset.notes),
        },
        model=p.model_kind,
        focal_alpha=[float(a) for a in p.alpha],
        device=device,
        checkpoint_dir=str(ckpt_dir),
        command=" ".join(sys.argv),
        versions=library_versions(),
        pid=os.getpid(),
        host=socket.gethostname(),
    )


class _Session:
    """One (new or resumed) run's lifecycle; see :func:`train` and :func:`resume`."""

    def __init__(self, run_dir: Path, config: TrainConfig, prepared: Prepared, device: str,
                 method: str | None, checkpoint: dict | None, announce: Announce):
        self.run_dir = run_dir
        self.config = config
        self.prepared = prepared
        self.device = device
        self.method = method
        self.checkpoint = checkpoint
        self.announce = announce
        self.ckpt_dir = Path(runs.read_metadata(run_dir)["checkpoint_dir"])
        self.cleanup_interrupts = 0

    def run(self) -> RunResult:
        for line in self.prepared.messages:
            log.info(line)
        for line in self.prepared.warnings:
            log.warning(line)
        trainer = self._build_trainer()
        visualizer = next((c for c in trainer.callbacks if hasattr(c, "request_abort")), None)
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            trainer.fit()
        except KeyboardInterrupt:
            return self._finish_interrupted(trainer, visualizer)
        except BaseException as exc:
            return self._finish_failed(trainer, exc)
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
        return self._finish_completed(trainer)

    # ------------------------------------------------------------------------------- building
    def _build_trainer(self):
        import torch

        from latentlapse.losses import FocalLoss
        from latentlapse.model import build_model, describe
        from latentlapse.training import FitData, FitOptions, Trainer

        p, c = self.prepared, self.config
        data = p.dataset
        init = torch.Generator().manual_seed(rng.int_seed(c.seed, "init"))
        model = build_model(p.model_kind, data.n_features, p.scheme.n_classes, init)
        model.scaler.fit(data.X[p.split.train], p.log_mask)
        fit_data = FitData(
            train_X=p.oversampled.X, train_y=p.oversampled.y,
            eval_X=data.X[p.split.train], eval_y=p.y[p.split.train],
            val_X=data.X[p.split.val], val_y=p.y[p.split.val],
        )
        options = FitOptions(
            epochs=c.epochs, batch_size=c.batch_size, n_classes=p.scheme.n_classes, class_names=p.scheme.names,
            sampler=c.sampler, patience=c.patience, sample_weights=p.sample_weights,
        )
        device = torch.device(self.device)
        trainer = Trainer(
            model, FocalLoss(p.alpha, c.focal_gamma), fit_data, options,
            lr=c.lr, weight_decay=c.weight_decay, device=device,
            loader_generator=torch.Generator().manual_seed(rng.int_seed(c.seed, "loader")),
            dropout_generator=torch.Generator(device=device).manual_seed(rng.int_seed(c.seed, "dropout")),
            save_checkpoint=self._save_checkpoint, write_history=self._write_history,
            callbacks=self._callbacks(),
        )
        if self.checkpoint is not None:
            trainer.load_state_dict(self.checkpoint["trainer"])
            self._write_history(trainer.history)
            log.info("resuming after epoch %d of %d", trainer.epoch, c.epochs)
        else:
            runs.update_metadata(self.run_dir, model_description=describe(model))
        if c.num_workers:
            log.info("--num_workers %d accepted; batches come from in-memory tensors, no loader workers are used", c.num_workers)
        log.info("best checkpoint chosen by validation balanced accuracy; last.pt is rewritten every epoch")
        return trainer

    def _callbacks(self) -> list:
        if not self.config.viz.enabled:
            return []
        from latentlapse.training_visualizer import TrainingVisualizer

        return [TrainingVisualizer(self.run_dir, self.config, self.prepared, self.method,
                                   resume=self.checkpoint is not None)]

    def _checkpoint_payload(self, trainer) -> dict:
        p = self.prepared
        return {
            "config": self.config.to_dict(),
            "model_spec": {"kind": p.model_kind, "n_features": p.dataset.n_features, "n_classes": p.scheme.n_classes},
            "class_names": list(p.scheme.names),
            "feature_names": list(p.dataset.feature_names),
            "data": {"source": p.dataset.source, "sha256": p.data_sha256, "kind": p.dataset.kind},
            "run_dir": str(self.run_dir),
            "scores": dict(trainer.history.rows[-1]) if trainer.history.rows else {},
            "trainer": trainer.state_dict(),
        }

    def _save_checkpoint(self, trainer, name: str) -> None:
        checkpoints.save(checkpoints.checkpoint_path(self.ckpt_dir, name), self._checkpoint_payload(trainer))

    def _write_history(self, history) -> None:
        from latentlapse.training import history_path

        atomic.write_text(history_path(self.run_dir), history.to_csv())

    # -------------------------------------------------------------------------------- endings
    def _finish_completed(self, trainer) -> RunResult:
        metrics = self._final_results(trainer)
        self._end_callbacks(trainer, "completed")
        runs.update_metadata(self.run_dir, status="completed", end_time=runs.now_iso(), **self._timing(trainer),
                             best_epoch=trainer.best_epoch, epochs_run=trainer.epoch,
                             final={k: metrics[k] for k in ("acc", "balanced_acc", "macro_f1")})
        self.announce(f"run completed: {self.run_dir}")
        return RunResult(self.run_dir, "completed", 0, metrics)

    def _finish_interrupted(self, trainer, visualizer) -> RunResult:
        previous = signal.signal(signal.SIGINT, self._on_cleanup_interrupt)
        try:
            log.warning("interrupted during epoch %d; saving state (the checkpoint of epoch %d is on disk)",
                        trainer.epoch + 1, trainer.epoch)
            self._visualizer = visualizer
            self._end_callbacks(trainer, "interrupted")
            runs.update_metadata(self.run_dir, status="interrupted", end_time=runs.now_iso(),
                                 epochs_run=trainer.epoch, **self._timing(trainer))
        finally:
            signal.signal(signal.SIGINT, previous)
        resume_cmd = f"python main.py --resume {self.run_dir}"
        if trainer.epoch == 0:
            log.warning("interrupted before the first epoch finished; nothing to resume (status interrupted)")
        else:
            log.warning("interrupted after epoch %d of %d; resume with: %s", trainer.epoch, self.config.epochs, resume_cmd)
        return RunResult(self.run_dir, "interrupted", 130)

    def _on_cleanup_interrupt(self, signum, frame) -> None:
        self.cleanup_interrupts += 1
        visualizer = getattr(self, "_visualizer", None)
        if visualizer is not None:
            visualizer.request_abort()
        log.warning("still cleaning up so the run folder stays consistent; frames not yet drawn are skipped")

    def _finish_failed(self, trainer, exc: BaseException) -> RunResult:
        try:
            self._end_callbacks(trainer, "failed")
        finally:
            try:
                runs.update_metadata(self.run_dir, status="failed", end_time=runs.now_iso(), epochs_run=trainer.epoch,
                                     error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            except Exception:  # the disk may be full; the one-line error below still reaches the user
                log.debug("could not record the failed status", exc_info=True)
        if isinstance(exc, RunFailed):
            raise exc
        raise RunFailed(f"{self.run_dir}: run failed at epoch {trainer.epoch + 1}: {type(exc).__name__}: {exc}") from exc

    def _end_callbacks(self, trainer, status: str) -> None:
        for callback in trainer.callbacks:
            callback.on_train_end(trainer, status)

    def _timing(self, trainer) -> dict[str, float]:
        return {"loop_seconds": round(trainer.loop_seconds, 3), "viz_seconds_in_loop": round(trainer.callback_seconds, 4)}

    def _final_results(self, trainer) -> dict:
        from latentlapse.results import summary_text, write_predictions, write_results

        p = self.prepared
        best = checkpoints.load(checkpoints.checkpoint_path(self.ckpt_dir, "best"))
        trainer.model.load_state_dict(best["trainer"]["model"])
        proba = trainer.predict_proba(p.dataset.X[p.split.val])
        y_val = p.y[p.split.val]
        metrics = write_results(
            self.run_dir, y_val, proba.argmax(axis=1), p.scheme.names, best_epoch=trainer.best_epoch,
            last_scores=dict(trainer.history.rows[-1]), epochs_run=trainer.epoch,
        )
        if self.config.save_preds:
            path = write_predictions(self.config.save_preds, p.dataset.ids[p.split.val], y_val, proba, p.scheme.names)
            log.info("validation predictions written to %s", path)
        log.info(summary_text(metrics))
        return metrics


def _raise_interrupt(signum, frame) -> None:
    """SIGTERM takes the same clean path as Ctrl-C."""
    raise KeyboardInterrupt

