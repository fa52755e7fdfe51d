"""Crash and resume: a run interrupted at epoch k and resumed ends with exactly the weights of an
uninterrupted run (CPU, same seed); resuming what cannot be resumed is refused with one line."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from latentlapse.xray import checkpoints, cli, pipeline
from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import dynamics

from .support import assert_folder_consistent, metadata

EPOCHS = 4


def _quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_spectra):
    """The reference: the same config trained for EPOCHS epochs without a break."""
    from latentlapse.xray.config import TrainConfig

    config = TrainConfig(data=str(tiny_spectra), epochs=EPOCHS, device="cpu", threads=1,
                         runs_dir=str(tmp_path_factory.mktemp("reference")))
    result = pipeline.train(config, announce=_quiet)
    assert result.status == "completed"
    return result.run_dir


def _assert_same_training(run_dir, reference) -> None:
    """Model and optimiser state of last.pt identical tensor for tensor; same history but timing."""
    got = checkpoints.load(checkpoints.checkpoint_path(run_dir, "last"))["trainer"]
    want = checkpoints.load(checkpoints.checkpoint_path(reference, "last"))["trainer"]
    assert got["epoch"] == want["epoch"] == EPOCHS
    assert got["model"].keys() == want["model"].keys()
    for name in want["model"]:
        assert torch.equal(got["model"][name], want["model"][name]), name
    for param, state in want["optimizer"]["state"].items():
        for key, value in state.items():
            mine = got["optimizer"]["state"][param][key]
            assert torch.equal(torch.as_tensor(mine), torch.as_tensor(value)), (param, key)
    assert got["scheduler"] == want["scheduler"]
    assert torch.equal(got["loader_rng"], want["loader_rng"]) and torch.equal(got["dropout_rng"], want["dropout_rng"])
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert strip(got["history"]) == strip(want["history"])
    lines = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(e) for e in range(1, EPOCHS + 1)]
    # the per-source training dynamics continue exactly: every epoch recorded once, the same summary
    assert dynamics.recorded_epochs(run_dir) == list(range(1, EPOCHS + 1))
    assert (run_dir / "dynamics.csv").read_text() == (reference / "dynamics.csv").read_text()


def _rewrite_metadata(run_dir, **changes):
    meta = metadata(run_dir)
    meta.update(changes)
    (run_dir / "run_metadata.json").write_text(json.dumps(meta))


def _copy_as(reference, target, **changes):
    shutil.copytree(reference, target)
    _rewrite_metadata(target, **changes)
    return target


@pytest.mark.parametrize("k", [0, 1, 2], ids=["before-first-checkpoint", "k=1", "k=2-middle"])
def test_interrupted_at_epoch_k_and_resumed_equals_uninterrupted(k, make_config, batch_hooks, uninterrupted):
    batch_hooks.actions[(k + 1, 2)] = "interrupt"  # mid-epoch: batch 1 of epoch k+1 has already stepped
    first = pipeline.train(make_config(EPOCHS), announce=_quiet)
    assert (first.status, first.exit_code) == ("interrupted", 130)
    run_dir = first.run_dir
    assert metadata(run_dir)["status"] == "interrupted" and metadata(run_dir)["epochs_run"] == k
    assert (run_dir / "last.pt").exists() == (k > 0)
    if k:
        assert checkpoints.load(run_dir / "last.pt")["trainer"]["epoch"] == k
    assert_folder_consistent(run_dir)

    second = pipeline.resume(run_dir, announce=_quiet)
    assert (second.status, second.exit_code, second.run_dir) == ("completed", 0, run_dir)
    meta = metadata(run_dir)
    assert meta["status"] == "completed" and meta["resumed_from_epoch"] == k and meta["epochs_run"] == EPOCHS
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]  # appended, no new folder
    _assert_same_training(run_dir, uninterrupted)


def test_resume_with_the_time_lapse_continues_its_frames(make_config, batch_hooks, uninterrupted):
    batch_hooks.actions[(3, 2)] = "interrupt"
    first = pipeline.train(make_config(EPOCHS, viz=True), announce=_quiet)
    run_dir = first.run_dir
    assert first.status == "interrupted"
    samples = (run_dir / "viz_samples.csv").read_bytes()
    inputs = (run_dir / "viz_inputs.npz").stat().st_mtime_ns
    assert sorted(p.name[:9] for p in run_dir.glob("epoch_*.png")) == ["epoch_001", "epoch_002"]
    worker = metadata(run_dir)["worker_pid"]

    assert pipeline.resume(run_dir, announce=_quiet).status == "completed"
    assert (run_dir / "viz_samples.csv").read_bytes() == samples  # the fixed sample is not re-drawn
    assert (run_dir / "viz_inputs.npz").stat().st_mtime_ns == inputs  # nor its inputs re-written
    assert metadata(run_dir)["worker_pid"] != worker
    assert sorted(p.name[:9] for p in run_dir.glob("epoch_*.png")) == [f"epoch_{e:03d}" for e in range(1, EPOCHS + 1)]
    progress = (run_dir / "training_progress.txt").read_text().splitlines()[2:]
    assert [int(row.split("|")[0]) for row in progress] == list(range(1, EPOCHS + 1))  # no duplicate epochs
    rows = (run_dir / "latent_metrics.csv").read_text().splitlines()
    displacement = rows[0].split(",").index("displacement")
    epoch_3 = rows[3].split(",")
    assert epoch_3[0] == "3" and epoch_3[displacement] != ""  # measured against the stored frame of epoch 2
    assert (run_dir / "training_animation.gif").exists()
    assert_folder_consistent(run_dir)
    _assert_same_training(run_dir, uninterrupted)  # the time-lapse never touches the training streams


def test_a_frame_cut_off_by_ctrl_c_during_a_save_is_drawn_on_resume(make_config, monkeypatch, uninterrupted):
    """Ctrl-C while last.pt of epoch 2 is saved stops the run before epoch 2's snapshot; the
    resumed run draws that frame from the checkpoint's model, and its training is unchanged."""
    import os
    import signal

    real_save = torch.save

    def save_with_ctrl_c(obj, handle, *args, **kwargs):
        if obj["trainer"]["epoch"] == 2 and not save_with_ctrl_c.done:
            save_with_ctrl_c.done = True
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(obj, handle, *args, **kwargs)

    save_with_ctrl_c.done = False
    monkeypatch.setattr(torch, "save", save_with_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = pipeline.train(make_config(EPOCHS, viz=True), announce=_quiet)
    finally:
        signal.signal(signal.SIGINT, previous)
    run_dir = first.run_dir
    assert (first.status, metadata(run_dir)["epochs_run"]) == ("interrupted", 2)
    assert sorted(p.name[:9] for p in run_dir.glob("epoch_*.png")) == ["epoch_001"]  # epoch 2's was cut off

    assert pipeline.resume(run_dir, announce=_quiet).status == "completed"
    assert sorted(p.name[:9] for p in run_dir.glob("epoch_*.png")) == [f"epoch_{e:03d}" for e in range(1, EPOCHS + 1)]
    progress = (run_dir / "training_progress.txt").read_text().splitlines()[2:]
    assert [int(row.split("|")[0]) for row in progress] == list(range(1, EPOCHS + 1))
    assert_folder_consistent(run_dir)
    _assert_same_training(run_dir, uninterrupted)


def test_checkpoints_under_out_dir_are_where_resume_finds_them(make_config, batch_hooks, tmp_path):
    batch_hooks.actions[(2, 2)] = "interrupt"
    out_dir = tmp_path / "checkpoints"
    first = pipeline.train(make_config(EPOCHS, out_dir=str(out_dir)), announce=_quiet)
    assert first.status == "interrupted"
    saved = out_dir / first.run_dir.name
    assert checkpoints.load(saved / "last.pt")["trainer"]["epoch"] == 1
    assert not (first.run_dir / "last.pt").exists()
    assert pipeline.resume(first.run_dir, announce=_quiet).status == "completed"
    assert checkpoints.load(saved / "last.pt")["trainer"]["epoch"] == EPOCHS and (saved / "best.pt").exists()
    assert not (first.run_dir / "last.pt").exists()


def test_a_crashed_run_is_resumed_from_another_directory(make_config, batch_hooks, uninterrupted, tiny_spectra,
                                                          tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "project" / "spectra.txt").write_bytes(tiny_spectra.read_bytes())
    monkeypatch.chdir(tmp_path / "project")  # relative --data and --runs_dir, as a user types them
    batch_hooks.actions[(3, 1)] = "interrupt"
    run_dir = pipeline.train(make_config(EPOCHS, data="spectra.txt", runs_dir="runs"), announce=_quiet).run_dir
    run_dir = run_dir.resolve()
    # what a kill -9 leaves: status running, its process gone, a half-written temp file
    dead = subprocess.Popen(["true"])
    dead.wait()
    _rewrite_metadata(run_dir, status="running", pid=dead.pid)
    (run_dir / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")

    monkeypatch.chdir(tmp_path / "elsewhere")
    assert pipeline.resume(run_dir, announce=_quiet).status == "completed"
    assert metadata(run_dir)["resumed_from_epoch"] == 2
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert_folder_consistent(run_dir)
    _assert_same_training(run_dir, uninterrupted)


# --- refusals: one line, nothing written --------------------------------------------------------------


def test_resuming_a_completed_run_is_refused(uninterrupted):
    before = (uninterrupted / "run_metadata.json").read_bytes()
    with pytest.raises(InputError, match=r"the run is already completed; start a new run instead of resuming"):
        pipeline.resume(uninterrupted, announce=_quiet)
    assert (uninterrupted / "run_metadata.json").read_bytes() == before


def test_resuming_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"gone: no such run folder; give the path of an interrupted run"):
        pipeline.resume(tmp_path / "gone", announce=_quiet)
    assert not (tmp_path / "gone").exists()


def test_resuming_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "run_001").mkdir()
    expected = r"run_001: not a latentlapse run \(no run_metadata\.json\); nothing to resume"
    with pytest.raises(InputError, match=expected):
        pipeline.resume(tmp_path / "run_001", announce=_quiet)
    assert list((tmp_path / "run_001").iterdir()) == []


def test_resuming_a_run_stopped_before_its_settings_were_recorded_is_refused(tmp_path):
    (tmp_path / "run_001").mkdir()
    (tmp_path / "run_001" / "run_metadata.json").write_text('{"status": "interrupted", "epochs_run": 0}')
    expected = r"run_001: the run was stopped before its settings were recorded; nothing to resume"
    with pytest.raises(InputError, match=expected):
        pipeline.resume(tmp_path / "run_001", announce=_quiet)


def test_resuming_a_run_that_is_still_running_is_refused(uninterrupted, tmp_path):
    import os

    run = _copy_as(uninterrupted, tmp_path / "run_001", status="running", pid=os.getppid())
    expected = rf"the run is still running \(process {os.getppid()}\); wait for it or stop it first"
    with pytest.raises(InputError, match=expected):
        pipeline.resume(run, announce=_quiet)


def test_resuming_on_changed_data_is_refused(uninterrupted, tmp_path):
    data = dict(metadata(uninterrupted)["data"], sha256="0" * 64)
    run = _copy_as(uninterrupted, tmp_path / "run_001", status="interrupted", data=data)
    with pytest.raises(InputError, match=r"the data has changed since the run started .*; resume needs the same data"):
        pipeline.resume(run, announce=_quiet)
    assert metadata(run)["status"] == "interrupted"


def test_resuming_a_run_whose_save_preds_folder_is_gone_is_refused(uninterrupted, tmp_path):
    """The predictions are written at the run's end: a missing folder found only then would fail
    every resume after the whole training again."""
    config = dict(metadata(uninterrupted)["config"], save_preds=str(tmp_path / "gone" / "p.csv"))
    run = _copy_as(uninterrupted, tmp_path / "run_001", status="failed", config=config)
    expected = (rf"run_001: the folder {tmp_path / 'gone'} of the run's --save_preds {tmp_path / 'gone' / 'p.csv'} "
                rf"does not exist here; create it \(or resume from the folder the run started in\) and resume again")
    with pytest.raises(InputError, match=expected):
        pipeline.resume(run, announce=_quiet)
    assert metadata(run)["status"] == "failed"


@pytest.mark.parametrize("extra", [["--epochs", "9"], ["--seed=3"], ["--visualize_training"]])
def test_resume_with_conflicting_flags_is_refused_with_one_line(extra, uninterrupted, capsys):
    before = (uninterrupted / "run_metadata.json").read_bytes()
    code = cli.train_main(["--resume", str(uninterrupted), *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    flag = extra[0].split("=")[0]
    assert f"--resume continues a run with its stored settings; drop {flag} (start a new run to change them)" in err
    assert (uninterrupted / "run_metadata.json").read_bytes() == before


def test_cli_refusal_of_a_completed_run_is_one_line_exit_1(uninterrupted, capsys):
    code = cli.train_main(["--resume", str(uninterrupted)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "already completed" in err, err


@pytest.mark.parametrize("killed", [False, True], ids=["interrupted", "killed"])
def test_a_resumed_runs_loop_timing_covers_the_whole_run(killed, make_config, batch_hooks):
    """loop_seconds / viz_seconds_in_loop counted only the epochs after the resume; a killed run
    recorded no timing, so the epochs' own seconds in the history stand in for the part before."""
    batch_hooks.actions[(3, 2)] = "interrupt"
    run_dir = pipeline.train(make_config(EPOCHS), announce=_quiet).run_dir
    before = metadata(run_dir)
    assert before["epochs_run"] == 2
    if killed:  # as after SIGKILL: status running, no timing, an older epochs_run
        meta = metadata(run_dir)
        for key in ("loop_seconds", "viz_seconds_in_loop", "epochs_run"):
            meta.pop(key)
        meta.update(status="running", pid=None)
        (run_dir / "run_metadata.json").write_text(json.dumps(meta))
    assert pipeline.resume(run_dir, announce=_quiet).status == "completed"
    after = metadata(run_dir)
    rows = (run_dir / "history.csv").read_text().splitlines()
    column = rows[0].split(",").index("seconds")
    seconds = [float(row.split(",")[column]) for row in rows[1:]]
    assert len(seconds) == EPOCHS
    # the loop's time of an epoch is at least its history seconds (they are timed from the same start)
    earlier = sum(seconds[:2]) if killed else before["loop_seconds"]
    assert after["loop_seconds"] >= earlier + sum(seconds[2:]) - 2e-3
    if not killed:
        assert after["viz_seconds_in_loop"] >= before["viz_seconds_in_loop"]
