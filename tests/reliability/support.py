"""Helpers of the reliability tests: folder checks, process checks, fault hooks, subprocess setup."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INJECT = Path(__file__).resolve().parent / "inject"  # sitecustomize.py: a full disk for chosen files
MAIN = REPO / "main.py"
PYTHON = sys.executable
PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every complete PNG
VIZ_FLAGS = ("--visualize_training", "--viz_every", "1", "--viz_method", "pca",
             "--viz_train_samples", "50", "--viz_val_samples", "30")


def cli_args(data: Path, runs_dir: Path, epochs: int, *extra: str) -> list[str]:
    """A quick run on the tiny data as ``python main.py`` flags."""
    return ["--data", str(data), "--epochs", str(epochs), "--device", "cpu", "--runs_dir", str(runs_dir), *extra]


def metadata(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run_metadata.json").read_text())


def assert_folder_consistent(run_dir: Path) -> None:
    """No temp file anywhere, every PNG complete, metadata and checkpoints readable."""
    from latentlapse.xray import checkpoints

    run_dir = Path(run_dir)
    assert not list(run_dir.rglob("*.tmp")), sorted(run_dir.rglob("*.tmp"))
    for png in run_dir.glob("*.png"):
        assert png.read_bytes().endswith(PNG_END), f"{png.name} is truncated"
    metadata(run_dir)
    for name in ("last", "best"):
        path = checkpoints.checkpoint_path(run_dir, name)
        if path.exists():
            checkpoints.load(path)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class BatchHooks:
    """Act on a given (epoch, batch) of the training loop: raise KeyboardInterrupt, or make the loss NaN.

    It wraps ``Trainer._train_one_epoch`` (to know the epoch) and the focal loss (to know the
    batch: training calls run with autograd on, evaluation calls under inference mode).
    """

    def __init__(self, monkeypatch):
        import torch

        from latentlapse.xray.losses import FocalLoss
        from latentlapse.xray.training import Trainer

        self.epoch = self.batch = 0
        self.actions: dict[tuple[int, int], str] = {}
        hooks = self
        train_one_epoch, forward = Trainer._train_one_epoch, FocalLoss.forward

        def spy_epoch(trainer, epoch, *args, **kwargs):
            hooks.epoch, hooks.batch = epoch, 0
            return train_one_epoch(trainer, epoch, *args, **kwargs)

        def spy_loss(loss_fn, *args, **kwargs):
            value = forward(loss_fn, *args, **kwargs)
            if torch.is_grad_enabled():
                hooks.batch += 1
                action = hooks.actions.pop((hooks.epoch, hooks.batch), None)
                if action == "interrupt":
                    raise KeyboardInterrupt
                if action == "nan":
                    return value * float("nan")
            return value

        monkeypatch.setattr(Trainer, "_train_one_epoch", spy_epoch)
        monkeypatch.setattr(FocalLoss, "forward", spy_loss)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for ``python main.py`` children: this checkout's src (and ``extra``'s path) first."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra.get("PYTHONPATH"), str(REPO / "src")]))
    return env


def failing_fsync(pattern: str, skip: int = 0):
    """In-process twin of the injected sitecustomize: ``os.fsync`` failing with ENOSPC for ``pattern``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("latentlapse_test_inject", INJECT / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.failing_fsync(pattern, skip, os.fsync)
