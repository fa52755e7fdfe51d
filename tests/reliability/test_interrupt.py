"""Real signals to a real ``python main.py --visualize_training`` run: Ctrl-C / SIGTERM mid-run stop
it cleanly (exit 130, status interrupted, complete files only, no worker left), a second signal
during the cleanup cannot corrupt the folder, a crash (SIGKILL) leaves no worker behind, and
``--resume`` then finishes the run (resuming a crashed run: test_resume.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from latentlapse.xray import checkpoints

from .support import MAIN, PYTHON, VIZ_FLAGS, assert_folder_consistent, cli_args, metadata, process_gone, subprocess_env

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="checks processes through /proc")

EPOCHS = 6
TIMEOUT = 600  # a ceiling for a busy machine: every wait below ends on an event (a file, an exit)


def _start(args, tmp_path):
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [PYTHON, str(MAIN), *args], stdout=stdout, stderr=stderr, env=subprocess_env(), cwd=tmp_path,
            # as from a terminal: a parent that ignores SIGINT (a background CI job) must not pass that on
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return process, out, err


def _wait_until(done, what: str, process, err: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never {what} (exit {process.poll()}):\n{err.read_text()[-3000:]}")
        time.sleep(0.05)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _interrupted_run(tmp_path, *signals):
    """Start a run, send ``signals`` (back to back) once epoch 3 is in history.csv (so the checkpoint
    of epoch 2 is on disk); return its folder, exit code and stderr."""
    process, out, err = _start(cli_args(tmp_path / "spectra.txt", tmp_path / "runs", EPOCHS, *VIZ_FLAGS), tmp_path)
    _wait_until(lambda: _lines(out), "printed its folder", process, err)
    run_dir = Path(_lines(out)[0])
    _wait_until(lambda: len(_lines(run_dir / "history.csv")) >= 4, "finished epoch 3", process, err)
    for sig in signals:
        process.send_signal(sig)
    try:
        code = process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return run_dir, code, err.read_text()


def _assert_stopped_cleanly(run_dir: Path, code: int, stderr: str) -> dict:
    meta = metadata(run_dir)
    assert code == 130, stderr[-3000:]
    assert meta["status"] == "interrupted"
    epochs = meta["epochs_run"]
    assert 2 <= epochs < EPOCHS
    assert f"resume with: python {MAIN} --resume {run_dir}" in stderr  # main.py by the path the command gave
    assert checkpoints.load(run_dir / "last.pt")["trainer"]["epoch"] == epochs  # the last checkpoint is written
    assert len(_lines(run_dir / "history.csv")) == 1 + epochs  # logs flushed, ending at the checkpoint
    assert_folder_consistent(run_dir)  # no temp file, every PNG complete
    assert process_gone(meta["worker_pid"]), f"frame worker {meta['worker_pid']} outlived the command"
    return meta


def _drawn(run_dir: Path) -> tuple[list[int], list[int]]:
    frames = sorted(int(p.name[6:9]) for p in run_dir.glob("epoch_*.png"))
    progress = [int(row.split("|")[0]) for row in (run_dir / "training_progress.txt").read_text().splitlines()[2:]]
    return frames, progress


@pytest.fixture
def data_here(tiny_spectra, tmp_path):
    (tmp_path / "spectra.txt").write_bytes(tiny_spectra.read_bytes())


def test_ctrl_c_stops_cleanly_and_resume_finishes_the_run(data_here, tmp_path):
    run_dir, code, stderr = _interrupted_run(tmp_path, signal.SIGINT)
    meta = _assert_stopped_cleanly(run_dir, code, stderr)
    frames, progress = _drawn(run_dir)
    assert frames == progress  # the first Ctrl-C lets every frame already queued finish

    resumed = subprocess.run([PYTHON, str(MAIN), "--resume", str(run_dir)], capture_output=True, text=True,
                             env=subprocess_env(), cwd=tmp_path, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.splitlines()[0] == str(run_dir)
    after = metadata(run_dir)
    assert (after["status"], after["epochs_run"]) == ("completed", EPOCHS)
    assert after["resumed_from_epoch"] == meta["epochs_run"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run_dir.name]
    frames, progress = _drawn(run_dir)
    assert progress == sorted(set(progress)) and progress[-1] == EPOCHS  # no duplicate epochs
    assert frames == progress and set(range(meta["epochs_run"] + 1, EPOCHS + 1)) <= set(frames)
    assert (run_dir / "training_animation.gif").exists()
    assert_folder_consistent(run_dir)
    assert process_gone(after["worker_pid"])


def test_sigterm_then_ctrl_c_during_cleanup_leaves_a_consistent_folder(data_here, tmp_path):
    run_dir, code, stderr = _interrupted_run(tmp_path, signal.SIGTERM, signal.SIGINT)
    _assert_stopped_cleanly(run_dir, code, stderr)
    assert "still cleaning up so the run folder stays consistent" in stderr
    assert "Traceback" not in stderr
    frames, progress = _drawn(run_dir) if (run_dir / "training_progress.txt").exists() else ([], [])
    assert set(frames) <= set(progress)  # frames cut short are absent, never half-written


def test_a_killed_run_leaves_no_worker_behind(data_here, tmp_path):
    run_dir, code, _ = _interrupted_run(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    meta = metadata(run_dir)
    assert meta["status"] == "running"  # nobody could record more; --resume sees its process is gone
    deadline = time.monotonic() + TIMEOUT  # the worker notices its parent is gone and exits by itself
    while not process_gone(meta["worker_pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_gone(meta["worker_pid"]), "the frame worker outlived its killed parent"
    saved = checkpoints.load(run_dir / "last.pt")["trainer"]["epoch"]  # whole, though the kill may cut a save
    assert 2 <= saved <= len(_lines(run_dir / "history.csv")) - 1


def test_ctrl_c_inside_a_checkpoint_save_waits_for_it(make_config, monkeypatch):
    """In-process: a real SIGINT delivered as last.pt of epoch 2 is being saved. The save completes
    first (raised inside torch's writer, the interrupt would become a RuntimeError and a failed run;
    raised before it, the epoch's checkpoint would be lost)."""
    import os

    import torch

    from latentlapse.xray import pipeline

    real_save = torch.save

    def save_with_ctrl_c(obj, handle, *args, **kwargs):
        if obj["trainer"]["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once, inside the save
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_with_ctrl_c)
    # as from a terminal, even when pytest itself was started as a background job that ignores SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = pipeline.train(make_config(4), announce=lambda line: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (result.status, result.exit_code) == ("interrupted", 130)
    meta = metadata(result.run_dir)
    assert meta["status"] == "interrupted" and meta["epochs_run"] == 2
    assert checkpoints.load(result.run_dir / "last.pt")["trainer"]["epoch"] == 2
    assert len(_lines(result.run_dir / "history.csv")) == 3
    assert_folder_consistent(result.run_dir)
