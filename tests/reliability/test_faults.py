"""Fault injection: a crash or a full disk while writing a checkpoint or a frame, a NaN loss, a
frame worker that dies, degenerate latent features. Each leaves the previous files intact, no
temp file, a clear one-line message and the right status."""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlapse.xray import checkpoints, cli, pipeline
from latentlapse import RunFailed  # where docs/LIBRARY.md names it

from .support import INJECT, VIZ_FLAGS, assert_folder_consistent, cli_args, failing_fsync, metadata, process_gone

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/fd"),
                                reason="the injected full disk finds files via /proc")

FULL_DISK = ("no space left on device while writing; free some disk space "
             "(the previous version of the file, if any, is intact)")


def _quiet(line: str) -> None:
    pass


def _only_run(runs_dir):
    (run,) = runs_dir.iterdir()
    return run


def _epoch_of(path) -> int:
    return int(checkpoints.load(path)["trainer"]["epoch"])


def _error_line(capsys) -> str:
    """The CLI's error: exactly one ``error:`` line on stderr, and the last line."""
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and errors[0] == err[-1], err
    return errors[0]


# --- checkpoints ---------------------------------------------------------------------------------------


def test_exception_inside_a_checkpoint_save_keeps_the_previous_one_and_no_temp(tmp_path, monkeypatch):
    path = checkpoints.checkpoint_path(tmp_path, "last")
    checkpoints.save(path, {"trainer": {"epoch": 1}})
    good = path.read_bytes()

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"the first bytes of a checkpoint")
        raise RuntimeError("simulated crash inside torch.save")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        checkpoints.save(path, {"trainer": {"epoch": 2}})
    assert path.read_bytes() == good and _epoch_of(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_no_inode_left_for_the_temp_file_is_a_full_disk_too(tmp_path, monkeypatch):
    import tempfile

    path = checkpoints.checkpoint_path(tmp_path, "last")
    checkpoints.save(path, {"trainer": {"epoch": 1}})

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    with pytest.raises(RunFailed, match=re.escape(f"{path}: {FULL_DISK}")):
        checkpoints.save(path, {"trainer": {"epoch": 2}})
    assert _epoch_of(path) == 1


def test_crash_inside_a_checkpoint_save_during_a_run_fails_it_keeping_epoch_1(make_config, monkeypatch):
    real_save = torch.save

    def crash_at_epoch_2(obj, handle, *args, **kwargs):
        if obj["trainer"]["epoch"] == 2:
            handle.write(b"the first bytes of a checkpoint")
            raise RuntimeError("simulated crash inside torch.save")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", crash_at_epoch_2)
    config = make_config(3)
    expected = r"run_001: run failed after the checkpoint of epoch 1: RuntimeError: simulated crash"
    with pytest.raises(RunFailed, match=expected):
        pipeline.train(config, announce=_quiet)
    run = _only_run(Path(config.runs_dir))
    assert metadata(run)["status"] == "failed" and metadata(run)["epochs_run"] == 1
    assert "RuntimeError: simulated crash inside torch.save" in metadata(run)["error"]
    assert _epoch_of(run / "last.pt") == 1 and _epoch_of(run / "best.pt") == 1
    assert len((run / "history.csv").read_text().splitlines()) == 2  # ends, like last.pt, at epoch 1
    assert_folder_consistent(run)


def test_full_disk_during_a_checkpoint_fails_the_run_with_one_line(tiny_spectra, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "fsync", failing_fsync(".last.pt.*.tmp", skip=1))  # epoch 1 saves, epoch 2 does not
    code = cli.train_main(cli_args(tiny_spectra, tmp_path / "runs", 3, "--quiet"))
    line = _error_line(capsys)
    run = _only_run(tmp_path / "runs")
    assert code == 1
    assert line == f"main.py: error: {run / 'last.pt'}: {FULL_DISK}"
    assert metadata(run)["status"] == "failed" and metadata(run)["epochs_run"] == 1
    assert _epoch_of(run / "last.pt") == 1  # the previous checkpoint, whole
    assert_folder_consistent(run)


# --- frames ---------------------------------------------------------------------------------------------


def _spec_and_snapshots(run_dir):
    """A four-class time-lapse spec and the snapshots of epochs 1 and 2 (separable random features)."""
    from latentlapse.xray.data.taxonomy import scheme
    from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec

    classes = scheme(4)
    train_y, val_y = np.repeat(np.arange(4), 15), np.repeat(np.arange(4), 8)
    spec = TimelapseSpec(run_dir=str(run_dir), class_names=classes.names, colors=classes.colors,
                         markers=classes.markers, method="pca", total_epochs=3, seed=0,
                         train_ids=np.arange(60), val_ids=np.arange(32), train_labels=train_y, val_labels=val_y)
    scores = {"train_acc": 0.5, "val_acc": 0.5, "train_loss": 1.0, "val_loss": 1.0, "val_balanced_acc": 0.5,
              "val_macro_f1": 0.5, "lr": 1e-3}
    rng = np.random.default_rng(0)
    snapshots = [
        Snapshot(epoch=epoch, train_features=(rng.normal(size=(60, 8)) + epoch * train_y[:, None]).astype(np.float32),
                 val_features=(rng.normal(size=(32, 8)) + epoch * val_y[:, None]).astype(np.float32),
                 val_pred=val_y, val_true_all=val_y, val_pred_all=val_y, scores=scores)
        for epoch in (1, 2)
    ]
    return spec, snapshots


def test_full_disk_while_the_worker_writes_a_frame_raises_naming_it(tmp_path, monkeypatch):
    from latentlapse.core.timelapse.worker import _failure_line, _FrameState

    spec, (first, second) = _spec_and_snapshots(tmp_path)
    state = _FrameState()
    state.start(spec)
    assert state.draw(first)[0] == "frame"
    monkeypatch.setattr(os, "fsync", failing_fsync(".epoch_002_*.png.*.tmp"))
    with pytest.raises(RunFailed, match=r"epoch_002_acc0\.5000\.png: " + re.escape(FULL_DISK)) as failure:
        state.draw(second)
    line = _failure_line("frame", second, failure.value)
    assert line.startswith("frame worker failed while drawing the frame of epoch 2: ") and line.endswith(FULL_DISK)
    assert [p.name for p in tmp_path.glob("epoch_*.png")] == ["epoch_001_acc0.5000.png"]
    assert not list(tmp_path.rglob("*.tmp"))
    oserror = OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "x.png"))
    assert _failure_line("finish", None, oserror) == (
        f"frame worker failed while finishing the time-lapse: {tmp_path / 'x.png'}: {os.strerror(errno.EROFS)}")


def test_full_disk_in_the_real_frame_worker_fails_the_run_with_one_line(tiny_spectra, tmp_path, monkeypatch, capsys):
    # The worker is a spawned interpreter: the fault reaches it through sitecustomize on PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("LATENTLAPSE_TEST_ENOSPC", ".epoch_002_*.png.*.tmp")
    code = cli.train_main(cli_args(tiny_spectra, tmp_path / "runs", 3, *VIZ_FLAGS, "--quiet"))
    line = _error_line(capsys)
    run = _only_run(tmp_path / "runs")
    assert code == 1
    assert line.startswith("main.py: error: frame worker failed while drawing the frame of epoch 2: ")
    assert line.endswith(FULL_DISK) and str(run) in line
    meta = metadata(run)
    assert meta["status"] == "failed" and "epoch_002" in meta["error"]
    assert [p.name[:9] for p in run.glob("epoch_*.png")] == ["epoch_001"]  # frame 1 complete, frame 2 absent
    assert not (run / "training_animation.gif").exists()
    assert_folder_consistent(run)
    assert process_gone(meta["worker_pid"])


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, "failed"), (signal.SIGTERM, "interrupted")],
                         ids=["killed-fails", "stopped-from-outside-interrupts"])
def test_a_frame_worker_that_dies_ends_the_run(sig, status, make_config, monkeypatch):
    from latentlapse.xray.training_visualizer import TrainingVisualizer

    on_epoch_end = TrainingVisualizer.on_epoch_end

    def kill_the_worker_at_epoch_2(self, trainer, result):
        if result.epoch == 2:
            os.kill(self.worker.pid, sig)
            # Wait until the worker can be reaped (exitcode polls waitpid): its /proc entry turns
            # zombie while its other threads are still exiting, before waitpid can report it.
            deadline = time.monotonic() + 300  # a ceiling for a busy machine; ends when it can be reaped
            while self.worker.exitcode is None and time.monotonic() < deadline:
                time.sleep(0.02)
        on_epoch_end(self, trainer, result)

    monkeypatch.setattr(TrainingVisualizer, "on_epoch_end", kill_the_worker_at_epoch_2)
    config = make_config(3, viz=True)
    if status == "failed":
        with pytest.raises(RunFailed, match=r"the frame worker \(process \d+\) stopped unexpectedly with exit code -9; "
                                            r"frames already written are complete"):
            pipeline.train(config, announce=_quiet)
    else:  # a scheduler stopping the whole process group: the run's own SIGTERM may come a moment later
        result = pipeline.train(config, announce=_quiet)
        assert (result.status, result.exit_code) == ("interrupted", 130)
    run = _only_run(Path(config.runs_dir))
    meta = metadata(run)
    assert meta["status"] == status and meta["epochs_run"] == 2
    assert_folder_consistent(run)


# --- inside the training loop ---------------------------------------------------------------------------


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_epoch_1(tiny_spectra, tmp_path, batch_hooks, capsys):
    batch_hooks.actions[(2, 3)] = "nan"
    code = cli.train_main(cli_args(tiny_spectra, tmp_path / "runs", 3, "--quiet"))
    line = _error_line(capsys)
    run = _only_run(tmp_path / "runs")
    assert code == 1
    assert line == ("main.py: error: the loss became nan at epoch 2, batch 3; the checkpoint of epoch 1 is kept; "
                    "check the data for extreme values, or try a lower --lr")
    meta = metadata(run)
    assert meta["status"] == "failed" and meta["epochs_run"] == 1 and "epoch 2, batch 3" in meta["error"]
    assert _epoch_of(run / "last.pt") == 1 and _epoch_of(run / "best.pt") == 1
    assert len((run / "history.csv").read_text().splitlines()) == 2
    assert_folder_consistent(run)


def test_degenerate_features_skip_their_frames_and_training_goes_on(make_config, monkeypatch, logs):
    from latentlapse.xray.training import Trainer

    evaluate = Trainer._evaluate

    def degenerate(self, epoch, *args, **kwargs):
        result = evaluate(self, epoch, *args, **kwargs)
        if epoch in (1, 2):  # epoch 1: all points equal; epoch 2: NaN features
            value = 0.5 if epoch == 1 else np.nan
            result.train_features = np.full_like(result.train_features, value)
            result.val_features = np.full_like(result.val_features, value)
        return result

    monkeypatch.setattr(Trainer, "_evaluate", degenerate)
    result = pipeline.train(make_config(3, viz=True), announce=_quiet)
    assert result.status == "completed"
    run = result.run_dir
    assert metadata(run)["status"] == "completed"
    assert "frame of epoch 1 skipped: all 50 training points have identical features" in logs.text
    assert "frame of epoch 2 skipped: 50 of 50 training points have NaN or infinite features" in logs.text
    assert [p.name[:9] for p in run.glob("epoch_*.png")] == ["epoch_003"]
    assert (run / "training_animation.gif").exists()
    assert_folder_consistent(run)
