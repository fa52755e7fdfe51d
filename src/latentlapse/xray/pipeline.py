"""Starting and resuming runs: the run folder, its recorded settings, and the hand-over.

``train(config)`` starts a new run in the next free ``run_NNN`` folder; ``resume(run_dir)``
continues an interrupted one from its ``last.pt`` in the same folder. Either way a
:class:`~latentlapse.xray.session.Session` then trains, and the run's status in
``run_metadata.json`` ends as ``completed``, ``interrupted`` or ``failed``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import socket
import sys
from pathlib import Path

from latentlapse import __version__
from latentlapse.core import atomic, runs
from latentlapse.xray import checkpoints, distributed
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.schema import from_checkpoint
from latentlapse.core.errors import InputError, UsageError
from latentlapse.xray.prepare import Prepared, prepare
from latentlapse.xray.session import Announce, RunResult, Session, command_name

__all__ = ["RunResult", "resume", "train"]

log = logging.getLogger(__name__)


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
    """Run a new training job as configured; returns its RunResult (also on interrupt/failure).

    Under ``torchrun`` every rank prepares the same data and trains its shard; rank 0 creates
    the run folder and tells the others its name.
    """
    device = resolve_device(config.device)
    world = distributed.init_from_env(device)
    try:
        if world is not None:
            device = world.device
        prepared = prepare(config)
        config = prepared.config  # the model's defaults filled in: what trains and what is recorded
        method = _viz_method(config)
        if world is not None and not world.is_main:
            run_dir = Path(world.broadcast(None))
            return Session(run_dir, config, prepared, device, method, checkpoint=None, announce=_log_announce,
                           ckpt_dir=checkpoint_dir(config, run_dir), world=world).run()
        run_dir = runs.allocate_run_dir(config.runs_dir)
        if world is not None:
            world.broadcast(str(run_dir))
        announce(str(run_dir))
        try:
            _write_start_metadata(run_dir, config, prepared, device, method, world)
        except KeyboardInterrupt:
            runs.update_metadata(run_dir, status="interrupted", end_time=runs.now_iso(), epochs_run=0)
            log.warning("interrupted before training started; resume with: %s --resume %s", command_name(), run_dir)
            return RunResult(run_dir, "interrupted", 130)
        return Session(run_dir, config, prepared, device, method, checkpoint=None, announce=announce,
                       ckpt_dir=checkpoint_dir(config, run_dir), world=world).run()
    finally:
        distributed.shutdown(world)


def resume(run_dir: str | os.PathLike, announce: Announce = _log_announce) -> RunResult:
    """Continue an interrupted (or crashed) run from its last checkpoint, in its own folder.

    A run trained under ``torchrun`` resumes under torchrun with the same number of processes.
    """
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
    if "config" not in metadata or "data" not in metadata:
        raise InputError(f"{run_dir}: the run was stopped before its settings were recorded; nothing to resume; "
                         f"start a new run")
    config = TrainConfig.from_dict(metadata["config"])
    if config.data and metadata.get("data", {}).get("path") and not Path(config.data).exists():
        # a relative --data from another working directory: use the absolute path recorded at the start
        config = dataclasses.replace(config, data=metadata["data"]["path"])
    preds_folder = Path(config.save_preds or ".").parent
    if not preds_folder.is_dir():  # the run's end writes there: found only then, the resume would fail
        raise InputError(f"{run_dir}: the folder {preds_folder} of the run's --save_preds {config.save_preds} does not "
                         f"exist here; create it (or resume from the folder the run started in) and resume again")
    ckpt_dir = checkpoint_dir(config, run_dir)
    last = checkpoints.checkpoint_path(ckpt_dir, "last")
    checkpoint = None
    if last.exists() or metadata.get("epochs_run"):
        checkpoint = checkpoints.load(last)
    device = resolve_device(config.device)
    recorded, started = int(metadata.get("world_size", 1)), distributed.requested_world_size()
    if recorded != started:
        how = f"torchrun --nproc_per_node {recorded} main.py" if recorded > 1 else command_name()
        raise UsageError(f"{run_dir}: the run trained with {recorded} process(es), this resume has {started}; "
                         f"resume with the same number: {how} --resume {run_dir}")
    prepared = prepare(config, schema=from_checkpoint(checkpoint))  # the run's own schema, not refitted
    if prepared.data_sha256 != metadata["data"]["sha256"]:
        raise InputError(f"{run_dir}: the data has changed since the run started ({config.data or 'built-in set'}); "
                         f"resume needs the same data; start a new run instead")
    config = prepared.config
    world = distributed.init_from_env(device)  # every rank has checked the folder before any rank writes
    try:
        if world is not None:
            device = world.device
        if world is None or world.is_main:
            atomic.remove_stale_temps(run_dir)
            atomic.remove_stale_temps(ckpt_dir)
            announce(str(run_dir))
            start = int(checkpoint["trainer"]["epoch"]) if checkpoint is not None else 0
            runs.record_resume(run_dir, start, status="running", pid=os.getpid(), host=socket.gethostname(),
                               end_time=None, error=None)
            if checkpoint is None:
                log.info("the run was stopped before its first checkpoint; starting it again from epoch 1 in %s",
                         run_dir)
        method = metadata.get("method") or _viz_method(config)
        return Session(run_dir, config, prepared, device, method, checkpoint=checkpoint, announce=announce,
                       ckpt_dir=ckpt_dir, world=world).run()
    finally:
        distributed.shutdown(world)


def checkpoint_dir(config: TrainConfig, run_dir: Path) -> Path:
    """Where a run's best.pt and last.pt live: the run folder, or ``--out_dir/run_NNN``."""
    return Path(config.out_dir) / run_dir.name if config.out_dir else run_dir


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
        from latentlapse.core.timelapse.projection import umap_available

        if not umap_available():
            log.warning("UMAP not found, using t-SNE: pip install 'latentlapse[umap]' to use --viz_method umap")
            return "tsne"
    return config.viz.method


def _write_start_metadata(run_dir: Path, config: TrainConfig, p: Prepared, device: str, method: str | None,
                          world: distributed.World | None = None) -> None:
    from latentlapse.core.timelapse.projection import umap_available

    ckpt_dir = checkpoint_dir(config, run_dir)
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
        class_colors=list(p.scheme.colors),
        class_markers=list(p.scheme.markers),
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
        features=_feature_record(p),
        model=p.model_kind,
        focal_alpha=[float(a) for a in p.alpha],
        device=device,
        world_size=1 if world is None else world.size,
        checkpoint_dir=str(ckpt_dir),
        command=" ".join(sys.argv),
        versions=library_versions(),
        pid=os.getpid(),
        host=socket.gethostname(),
    )


def _feature_record(p: Prepared) -> dict | None:
    """For a catalogue: the columns used, those left out with the reason, and the fitted schema."""
    if p.schema is None:
        return None
    return {"used": list(p.schema.columns), "left_out": dict(p.schema.left_out), "schema": p.schema.to_dict()}
