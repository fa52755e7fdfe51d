"""The public API on its own: styles for any class count, the feature hook, a light import,
bad input named, and an interrupted loop resumed in its own folder."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from latentlapse import Timelapse
from latentlapse.core.timelapse import dynamics
from latentlapse.core.timelapse.styles import MAX_CLASSES, default_style


def test_up_to_twenty_classes_get_distinct_colours_none_red():
    from matplotlib.colors import to_rgb

    colors, markers = default_style(MAX_CLASSES)
    assert MAX_CLASSES == 20 and len(set(colors)) == 20 and len(markers) == 20
    assert not any(r > 0.6 and g < 0.35 and b < 0.35 for r, g, b in map(to_rgb, colors))
    with pytest.raises(ValueError, match="21 classes: the time-lapse draws at most 20 classes"):
        Timelapse("runs", class_names=[f"c{i}" for i in range(21)], epochs=3)
    with pytest.raises(ValueError, match="1 class name"):
        Timelapse("runs", class_names=["a"], epochs=3)
    with pytest.raises(ValueError, match="red, which marks misclassified"):
        Timelapse("runs", class_names=["a", "b"], epochs=3, colors=["#1f77b4", "red"])


def test_import_latentlapse_loads_no_torch_matplotlib_or_sklearn():
    code = "import sys, latentlapse; latentlapse.Timelapse; print(sorted({'torch','matplotlib','sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_features_hook_returns_a_named_modules_output_and_leaves_the_model_alone():
    torch = pytest.importorskip("torch")
    from latentlapse import features

    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = torch.arange(40, dtype=torch.float32).reshape(8, 5) / 40
    loader = [(X[:5], torch.tensor([0, 1, 2, 0, 1])), (X[5:], torch.tensor([2, 0, 1]))]
    got = features(model, "1", loader)
    assert got.features.shape == (8, 7) and got.proba.shape == (8, 3) and got.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert np.allclose(got.features, torch.relu(model[0](X)).detach().numpy(), atol=1e-6)
    assert np.allclose(got.proba.sum(axis=1), 1.0)
    assert model.training and not model[1]._forward_hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="no module named 'encoder'"):
        features(model, "encoder", loader)


def _epoch(rng, n, k, d=6):
    y = np.arange(n) % k
    f = rng.normal(size=(n, d)) + y[:, None]
    p = rng.dirichlet(np.ones(k), size=n)
    return f, y, p


def test_mismatched_arrays_are_named(tmp_path):
    rng = np.random.default_rng(0)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=2, frames=False) as tl:
        f, y, p = _epoch(rng, 30, 3)
        with pytest.raises(ValueError, match=r"val: proba must be \(n, n_classes\)"):
            tl.log_epoch(1, train=(f, y, p), val=(f, y, p[:5]))
        tl.log_epoch(1, train=(f, y, p), val=(f, y, p))
        tl.log_epoch(2, train=(f, y, p), val=(f, y, p))


def _bad(case, f, y, p):
    """(train, val, logits, metrics, epoch) of one loop mistake, from a good epoch (f, y, p)."""
    good = (f, y, p)
    return {
        "proba with a column too many": ((f, y, np.hstack([p, p[:, :1]])), good, None, None, 2),
        "one-hot labels": ((f, np.eye(3)[y], p), good, None, None, 2),
        "a shuffled loader": ((f[::-1], y[::-1], p[::-1]), good, None, None, 2),
        "a source fewer": ((f[1:], y[1:], p[1:]), good, None, None, 2),
        "logits of another shape": (good, good, (p, p[:-1]), None, 2),
        "a metric that is not a number": (good, good, None, {"lr": "0.1x"}, 2),
        "epoch 0": (good, good, None, None, 0),
        "the same epoch again": (good, good, None, None, 1),
        "an epoch beyond the run": (good, good, None, None, 4),
    }[case]


@pytest.mark.parametrize("case, message", [
    ("proba with a column too many", "train: proba has 4 columns for 3 class names"),
    ("one-hot labels", r"got \(30, 3\) \(one-hot rows\? give their argmax\)"),
    ("a shuffled loader", "the labels in another order at epoch 2"),
    ("a source fewer", "train: 29 sources at epoch 2"),
    ("logits of another shape", r"logits \(val\): shape \(29, 3\), but its proba is \(30, 3\)"),
    ("a metric that is not a number", "metrics\\['lr'\\]: '0.1x' is not a number"),
    ("epoch 0", "epochs are numbered 1 to 3"),
    ("the same epoch again", "epoch 1 after epoch 1: log each epoch once"),
    ("an epoch beyond the run", "epochs are numbered 1 to 3"),
])
def test_loop_mistakes_are_named_at_log_epoch(tmp_path, case, message):
    rng = np.random.default_rng(5)
    f, y, p = _epoch(rng, 30, 3)
    train, val, logits, metrics, epoch = _bad(case, f, y, p)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=3, frames=False) as tl:
        tl.log_epoch(1, train=(f, y, p), val=(f, y, p))
        with pytest.raises(ValueError, match=message):
            tl.log_epoch(epoch, train=train, val=val, logits=logits, metrics=metrics)
        tl.log_epoch(2, train=(f, y, p), val=(f, y, p))  # the run goes on
        tl.log_epoch(3, train=(f, y, p), val=(f, y, p))
    assert json.loads((tmp_path / "run_001" / "run_metadata.json").read_text())["status"] == "completed"


def test_values_that_are_not_probabilities_are_named_with_their_epoch(tmp_path):
    """The first epoch's are checked at the call; later ones on the writer thread, off the loop,
    and raised at the next call (or flush, or the end) with the epoch they came from."""
    rng = np.random.default_rng(11)
    f, y, p = _epoch(rng, 30, 3)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=3, frames=False, flush_seconds=0) as tl:
        with pytest.raises(ValueError, match=r"train: proba rows must be probabilities summing to 1 .*apply softmax"):
            tl.log_epoch(1, train=(f, y, np.log(p) * 3), val=(f, y, p))  # logits given as proba
    with pytest.raises(ValueError, match=r"epoch 2, val: proba row 4 holds NaN or infinity"):
        with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=3, frames=False, flush_seconds=3600) as tl:
            tl.log_epoch(1, train=(f, y, p), val=(f, y, p))
            tl.log_epoch(2, train=(f, y, p), val=(f, y, np.where(np.arange(30)[:, None] == 4, np.nan, p)))
            tl.flush()
    assert json.loads((tmp_path / "run_002" / "run_metadata.json").read_text())["status"] == "failed"


def test_tensors_that_require_grad_are_taken_as_they_are(tmp_path):
    import torch

    rng = np.random.default_rng(6)
    f, y, p = _epoch(rng, 30, 3)
    features = torch.tensor(f, requires_grad=True) * 2  # what a forward pass hands over
    proba = torch.softmax(torch.tensor(np.log(p), requires_grad=True), dim=1)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=1, frames=False) as tl:
        tl.log_epoch(1, train=(features, torch.tensor(y), proba), val=(features, y, proba), logits=(proba, proba))
    assert dynamics.recorded_epochs(tmp_path / "run_001") == [1]


def test_a_timelapse_used_outside_its_life_says_how_to_use_it(tmp_path):
    rng = np.random.default_rng(7)
    data = _epoch(rng, 30, 3)
    tl = Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=1, frames=False)
    with pytest.raises(RuntimeError, match="not open yet; use it as `with Timelapse"):
        tl.log_epoch(1, train=data, val=data)
    tl.close()  # never opened: nothing to end, no folder made
    assert not list(tmp_path.iterdir())
    with tl:
        tl.log_epoch(1, train=data, val=data)
    with pytest.raises(RuntimeError, match="is closed"):
        tl.log_epoch(1, train=data, val=data)
    with pytest.raises(RuntimeError, match="one object films one run"):
        tl.open()
    assert json.loads((tmp_path / "run_001" / "run_metadata.json").read_text())["status"] == "completed"


def test_an_interrupted_loop_resumes_in_its_own_folder(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"class {i}" for i in range(13)]  # any names, any count
    data = _epoch(rng, 130, 13)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=names, epochs=4, frames=False, seed=3) as tl:
            for epoch in (1, 2, 3):
                tl.log_epoch(epoch, train=data, val=data)
            raise KeyboardInterrupt
    run = tmp_path / "run_001"
    assert json.loads((run / "run_metadata.json").read_text())["status"] == "interrupted"
    with Timelapse.resume(run, after_epoch=2) as tl:
        assert dynamics.recorded_epochs(run) == [1, 2]
        for epoch in (3, 4):
            tl.log_epoch(epoch, train=data, val=data)
    meta = json.loads((run / "run_metadata.json").read_text())
    assert meta["status"] == "completed" and meta["epochs_run"] == 4 and meta["resumed_from_epoch"] == 2
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3", "4"]
    assert dynamics.recorded_epochs(run) == [1, 2, 3, 4]
    assert (run / "dynamics.csv").is_file() and (run / "metrics.png").is_file()
    assert not list(tmp_path.glob("run_002"))


def test_every_resume_is_recorded_not_only_the_last(tmp_path):
    rng = np.random.default_rng(1)
    data = _epoch(rng, 60, 3)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=5, frames=False, seed=3) as tl:
            tl.log_epoch(1, train=data, val=data)
            raise KeyboardInterrupt
    run = tmp_path / "run_001"
    with pytest.raises(KeyboardInterrupt):
        with Timelapse.resume(run, after_epoch=1) as tl:
            tl.log_epoch(2, train=data, val=data)
            tl.log_epoch(3, train=data, val=data)
            raise KeyboardInterrupt
    with Timelapse.resume(run, after_epoch=3) as tl:
        tl.log_epoch(4, train=data, val=data)
        tl.log_epoch(5, train=data, val=data)
    meta = json.loads((run / "run_metadata.json").read_text())
    assert [r["from_epoch"] for r in meta["resumes"]] == [1, 3]
    assert meta["resumed_from_epoch"] == 3 and meta["resumed_at"] == meta["resumes"][-1]["at"]


@pytest.mark.parametrize("frames", [True, False])
def test_a_block_that_logs_no_epoch_ends_failed_and_says_why(tmp_path, caplog, frames):
    caplog.set_level(logging.WARNING, logger="latentlapse")
    with Timelapse(tmp_path, class_names=["a", "b"], epochs=3, frames=frames):
        pass
    run = tmp_path / "run_001"
    meta = json.loads((run / "run_metadata.json").read_text())
    assert (meta["status"], meta["error"], meta["epochs_run"]) == ("failed", "no epoch was logged", 0)
    assert [r.getMessage() for r in caplog.records] == [
        f"{run}: no epoch was logged, so the run ends failed, with nothing filmed; call "
        "tl.log_epoch(epoch, train, val) once per epoch inside the `with` block"]
    assert {p.name for p in run.iterdir()} <= {"run_metadata.json", "create_animation.sh"}  # no results, curves, report


def test_a_resumed_block_that_logs_no_new_epoch_ends_failed(tmp_path):
    rng = np.random.default_rng(5)
    data = _epoch(rng, 20, 2)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b"], epochs=3, frames=False) as tl:
            tl.log_epoch(1, train=data, val=data)
            raise KeyboardInterrupt
    with Timelapse.resume(tmp_path / "run_001", after_epoch=1):
        pass
    meta = json.loads((tmp_path / "run_001" / "run_metadata.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == "no epoch was logged after epoch 1, where the run was resumed"
    assert not (tmp_path / "run_001" / "final_metrics.json").exists()


def test_a_class_missing_from_validation_has_no_recall_in_the_history_nor_in_the_report(tmp_path):
    rng = np.random.default_rng(6)
    train = _epoch(rng, 40, 4)
    f, y, p = _epoch(rng, 30, 3)  # validation holds classes a, b and c only
    p = np.hstack([p, np.zeros((30, 1))]) * 0.9 + 0.025
    with Timelapse(tmp_path, class_names=list("abcd"), epochs=2, frames=False) as tl:
        for epoch in (1, 2):
            tl.log_epoch(epoch, train=train, val=(f, y, p))
    run = tmp_path / "run_001"
    header, *rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    assert [row[header.index("val_recall_d")] for row in rows] == ["", ""]  # empty: no support, not 0
    assert all(float(row[header.index("val_recall_a")]) >= 0 for row in rows)
    text = (run / "classification_report.txt").read_text()
    headline = float(text.split("macro-F1 ")[1].split()[0])
    macro = next(line.split() for line in text.splitlines() if line.strip().startswith("macro avg"))
    assert float(macro[4]) == headline  # the report's two macro-F1 figures agree
    assert "d: no source of this class among those scored (support 0)" in text
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["per_class"]["d"]["recall"] is None and final["per_class"]["d"]["support"] == 0


def test_logged_epochs_reach_the_disk_at_flush_and_when_the_run_fails(tmp_path):
    rng = np.random.default_rng(2)
    f, y, p = _epoch(rng, 40, 4)
    with pytest.raises(RuntimeError, match="the loop broke"):
        with Timelapse(tmp_path, class_names=list("abcd"), epochs=5, frames=False, flush_seconds=3600) as tl:
            tl.log_epoch(1, train=(f, y, p), val=(f, y, p))
            tl.log_epoch(2, train=(f, y, p), val=(f, y, p))
            run = tl.run_dir
            assert dynamics.recorded_epochs(run) == [] and not (run / "history.csv").exists()  # kept in memory
            assert not tl.missing_dynamics(2)  # waiting to be written counts as recorded
            tl.flush()  # e.g. where the loop saves a checkpoint: now even SIGKILL cannot lose them
            assert dynamics.recorded_epochs(run) == [1, 2]
            assert len((run / "history.csv").read_text().splitlines()) == 3
            tl.log_epoch(3, train=(f, y, p), val=(f, y, p))
            raise RuntimeError("the loop broke")
    meta = json.loads((run / "run_metadata.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: the loop broke"
    assert dynamics.recorded_epochs(run) == [1, 2, 3]
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]


def test_a_loop_that_swallows_a_failed_write_does_not_end_as_completed(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    f, y, p = _epoch(rng, 40, 4)
    real_write = dynamics.write_epoch

    def write_epoch(run_dir, epoch, record):
        if epoch == 2:
            raise OSError(28, "No space left on device")
        real_write(run_dir, epoch, record)

    monkeypatch.setattr(dynamics, "write_epoch", write_epoch)
    with pytest.raises(OSError, match="No space left"):
        with Timelapse(tmp_path, class_names=list("abcd"), epochs=4, frames=False, flush_seconds=3600) as tl:
            for epoch in (1, 2, 3, 4):
                tl.log_epoch(epoch, train=(f, y, p), val=(f, y, p))
                try:
                    tl.flush()
                except OSError:
                    pass  # a loop that logs the error and goes on
            with pytest.raises(OSError):  # still raised: the writes after it were skipped
                tl.flush()
    meta = json.loads((tmp_path / "run_001" / "run_metadata.json").read_text())
    assert meta["status"] == "failed" and "No space left" in meta["error"]
    assert dynamics.recorded_epochs(tmp_path / "run_001") == [1]


def test_arrays_the_loop_reuses_after_log_epoch_do_not_change_what_is_written(tmp_path):
    rng = np.random.default_rng(3)
    f, y, p = _epoch(rng, 30, 3)
    proba = p.copy()
    with Timelapse(tmp_path, class_names=list("abc"), epochs=1, frames=False) as tl:
        tl.log_epoch(1, train=(f, y, proba), val=(f, y, proba))
        proba[:] = np.eye(3)[(y + 1) % 3]  # the loop overwrites its buffer before the write
    record = np.load(tmp_path / "run_001" / "dynamics" / "epoch_001.npz")
    assert np.allclose(record["true_proba"][:30], p[np.arange(30), y], atol=1e-3)


def test_the_frame_sample_keeps_to_its_cap_with_every_class_in_it():
    from latentlapse.core.timelapse.sample import choose_sample

    y = np.repeat(np.arange(10), [5000, 2000, 1000, 500, 400, 300, 200, 100, 50, 25])
    for budget, expected in ((2, 10), (25, 25), (50, 50), (300, 300)):
        chosen = choose_sample(y, budget, 10, np.random.default_rng(0))
        assert len(chosen) == expected  # the cap, or one per class where the cap is below the class count
        assert len(set(y[chosen])) == 10 and len(set(chosen)) == len(chosen)
    with pytest.raises(ValueError, match="train_samples=0"):
        Timelapse("unused", class_names=["a", "b"], epochs=1, train_samples=0)


def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "import numpy as np\n"
        "from latentlapse import Timelapse\n"
        "rng = np.random.default_rng(0)\n"
        "y = np.arange(30) % 3\n"
        "data = (rng.normal(size=(30, 4)), y, rng.dirichlet(np.ones(3), size=30))\n"
        "with Timelapse('runs', class_names=['a', 'b', 'c'], epochs=1, method='pca') as tl:\n"
        "    tl.log_epoch(1, train=data, val=data)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert 'put the training under `if __name__ == "__main__":`' in done.stderr
    assert "no frame was written" in done.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run_001"]  # the worker made no folder of its own
    assert json.loads((tmp_path / "runs" / "run_001" / "run_metadata.json").read_text())["status"] == "failed"


def test_a_loop_that_stops_early_gets_its_last_epoch_drawn(tmp_path):
    rng = np.random.default_rng(8)
    data = _epoch(rng, 60, 3)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=30, every=10, method="pca") as tl:
        for epoch in (1, 2, 3):
            tl.log_epoch(epoch, train=data, val=data, last=epoch == 3)  # e.g. early stopping after epoch 3
    run = tmp_path / "run_001"
    assert sorted(int(p.name.split("_")[1]) for p in run.glob("epoch_*.png")) == [1, 3]


def _stopped_after_epoch_3(tmp_path, seed: int, epochs: int):
    """A PCA-filmed loop of three classes interrupted after epoch 3: its folder and the epochs' data."""
    data = _epoch(np.random.default_rng(seed), 60, 3)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=epochs, every=1, method="pca") as tl:
            for epoch in (1, 2, 3):
                tl.log_epoch(epoch, train=data, val=data)
            raise KeyboardInterrupt
    return tmp_path / "run_001", data


def test_a_resume_before_the_last_frame_draws_the_later_epochs_once(tmp_path):
    import csv

    run, data = _stopped_after_epoch_3(tmp_path, seed=9, epochs=4)
    with Timelapse.resume(run, after_epoch=2) as tl:  # the loop's checkpoint was of epoch 2
        for epoch in (3, 4):
            tl.log_epoch(epoch, train=data, val=data)
    assert [int(r["epoch"]) for r in csv.DictReader((run / "latent_metrics.csv").open())] == [1, 2, 3, 4]
    progress = (run / "training_progress.txt").read_text().splitlines()[2:]
    assert [int(line.split("|")[0]) for line in progress] == [1, 2, 3, 4]
    assert sorted(int(p.name.split("_")[1]) for p in run.glob("epoch_*.png")) == [1, 2, 3, 4]
    assert "4 of 4 epochs, 4 frames" in (run / "diagnosis.txt").read_text()


def test_resume_refuses_what_the_run_never_reached(tmp_path):
    from latentlapse.core.errors import InputError

    rng = np.random.default_rng(10)
    data = _epoch(rng, 30, 3)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=4, frames=False) as tl:
            tl.log_epoch(1, train=data, val=data)
            tl.log_epoch(2, train=data, val=data)
            raise KeyboardInterrupt
    run = tmp_path / "run_001"
    for after in (-1, 3, 1.5):
        with pytest.raises(ValueError, match="recorded epochs up to 2; give the epoch of your checkpoint, 0 to 2"):
            Timelapse.resume(run, after_epoch=after)
    with pytest.raises(InputError, match="no such run folder"):
        Timelapse.resume(tmp_path / "run_009", after_epoch=1)
    with Timelapse.resume(run, after_epoch=2) as tl:
        tl.log_epoch(3, train=data, val=data)
        tl.log_epoch(4, train=data, val=data)
    with pytest.raises(ValueError, match="a completed run is not resumed"):
        Timelapse.resume(run, after_epoch=4)


def test_frames_skipped_as_the_run_finishes_still_leave_its_report_and_a_note_naming_them(tmp_path):
    rng = np.random.default_rng(4)
    data = _epoch(rng, 60, 3)
    with Timelapse(tmp_path, class_names=["a", "b", "c"], epochs=4, every=1, method="pca") as tl:
        for epoch in range(1, 5):
            tl.log_epoch(epoch, train=data, val=data)
        tl.request_abort()  # a second Ctrl-C while the run finishes: the frames not yet drawn are skipped
    run = tmp_path / "run_001"
    assert json.loads((run / "run_metadata.json").read_text())["status"] == "completed"
    for name in ("report.html", "diagnosis.txt", "diagnosis.json", "dynamics.csv", "metrics.png"):
        assert (run / name).is_file(), name
    drawn = sorted(int(p.name.split("_")[1]) for p in run.glob("epoch_*.png"))
    assert (run / "training_animation.gif").is_file() == bool(drawn)
    notes = [f for f in json.loads((run / "diagnosis.json").read_text())["findings"] if f["kind"] == "frames_missing"]
    assert (notes[0]["values"]["epochs"] if notes else []) == [e for e in range(1, 5) if e not in drawn]
    if notes:
        assert "your loop with the same seeds" in notes[0]["remedy"]  # a library run has no flags


def test_a_resumed_run_names_the_earlier_frames_it_goes_without(tmp_path, caplog):
    run, data = _stopped_after_epoch_3(tmp_path, seed=5, epochs=5)
    for path in [*run.glob("epoch_001_*.png"), *run.glob("layouts/epoch_001*")]:  # as a second Ctrl-C leaves it
        path.unlink()
    with caplog.at_level("WARNING"), Timelapse.resume(run, after_epoch=3) as tl:
        for epoch in (4, 5):
            tl.log_epoch(epoch, train=data, val=data)
    # the warnings only: an earlier test's CLI run may have left the INFO lines ("frames at epochs 1, ...") on
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "the frame of epoch 1 was not drawn before the run was stopped and cannot be drawn now" in warned
    assert "epochs 1" not in warned and "epoch 2 " not in warned


@pytest.mark.parametrize("status, skips", [(None, None), ("completed", [False, True]), ("interrupted", [True])])
def test_a_signal_while_the_run_closes_skips_frames_at_the_second_only_when_it_completed(status, skips, caplog):
    """As on the command line: closing a completed run, the first Ctrl-C says that a second one
    skips the frames not yet drawn (it skipped them at once); closing after an interrupt (the
    user's first signal) the next one skips them; before closing a signal interrupts the loop."""
    import signal

    from latentlapse.core.timelapse.run_record import Signals

    skipped = []
    signals = Signals(lambda: status, lambda: skipped.append(True))
    if skips is None:
        with pytest.raises(KeyboardInterrupt):
            signals._on_signal(signal.SIGINT, None)
        return
    for expected in skips:
        with caplog.at_level("WARNING"):
            signals._on_signal(signal.SIGINT, None)
        assert bool(skipped) == expected
    if status == "completed":
        assert "Ctrl-C again skips the frames not yet drawn" in caplog.text
