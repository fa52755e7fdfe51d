"""TensorBoard export: the history as scalars and each frame's sample as an embedding with metadata."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="TensorBoard is not installed: pip install 'latentlapse[tensorboard]' (CI installs it)")


def test_scalars_and_embeddings_read_back_with_tensorboards_event_reader(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from latentlapse import Timelapse

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    f = rng.normal(size=(60, 4)) + y[:, None]
    p = rng.dirichlet(np.ones(3), size=60)
    ids = ([f"t{i}" for i in range(60)], [f"v{i}" for i in range(60)])
    with Timelapse(tmp_path, class_names=["cat", "dog", "fox"], epochs=2, method="pca", tensorboard=True) as tl:
        for epoch in (1, 2):
            tl.log_epoch(epoch, train=(f, y, p), val=(f, y, p), metrics={"val_loss": 0.5 / epoch}, ids=ids)
    board = tmp_path / "run_001" / "tensorboard"
    events = EventAccumulator(str(board))
    events.Reload()
    assert {"scores/val_acc", "loss/val_loss", "recall/val_recall_dog"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/val_loss")] == [1, 2]
    assert [e.value for e in events.Scalars("loss/val_loss")] == pytest.approx([0.5, 0.25])
    config = (board / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 2
    metadata = sorted(board.glob("*/validation_sample/metadata.tsv"))
    assert len(metadata) == 2
    rows = metadata[0].read_text().splitlines()
    assert rows[0] == "id\tclass\tprediction" and len(rows) == 61
    assert rows[1].split("\t")[0] == "v0" and rows[1].split("\t")[1] == "cat"
    assert len(list(board.glob("events.out.tfevents.*"))) == 1 and not list(board.rglob("*.tmp"))


def test_a_resumed_run_rewrites_the_scalars_from_its_history(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from latentlapse import Timelapse

    rng = np.random.default_rng(1)
    y = np.arange(40) % 2
    p = rng.dirichlet(np.ones(2), size=40)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b"], epochs=4, frames=False, tensorboard=True) as tl:
            for epoch in (1, 2, 3):
                tl.log_epoch(epoch, train=(None, y, p), val=(None, y, p), metrics={"val_loss": epoch})
            raise KeyboardInterrupt
    run = tmp_path / "run_001"
    with Timelapse.resume(run, after_epoch=2) as tl:  # the run's settings include the export
        for epoch in (3, 4):
            tl.log_epoch(epoch, train=(None, y, p), val=(None, y, p), metrics={"val_loss": 10 * epoch})
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss/val_loss")] == [(1, 1), (2, 2), (3, 30), (4, 40)]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_catching_up_after_a_resume_leaves_the_recorded_scalars_alone(tmp_path):
    """A loop that replays the epochs before ``after_epoch`` fills in a missing per-source record,
    but the scalars of those epochs stay the recorded ones."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from latentlapse import Timelapse
    from latentlapse.core.timelapse import dynamics

    rng = np.random.default_rng(2)
    y = np.arange(40) % 2
    p = rng.dirichlet(np.ones(2), size=40)
    with pytest.raises(KeyboardInterrupt):
        with Timelapse(tmp_path, class_names=["a", "b"], epochs=4, frames=False, tensorboard=True) as tl:
            for epoch in (1, 2):
                tl.log_epoch(epoch, train=(None, y, p), val=(None, y, p), metrics={"val_loss": epoch})
            raise KeyboardInterrupt
    run = tmp_path / "run_001"
    dynamics.epoch_path(run, 1).unlink()  # the interruption cut off epoch 1's record
    with Timelapse.resume(run, after_epoch=2) as tl:
        for epoch in (1, 2, 3, 4):
            tl.log_epoch(epoch, train=(None, y, p), val=(None, y, p), metrics={"val_loss": 10 * epoch})
    assert dynamics.epoch_path(run, 1).exists()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss/val_loss")] == [(1, 1), (2, 2), (3, 30), (4, 40)]


def test_the_cli_flag_sets_the_config_field():
    from latentlapse.xray.cli import command_parser, config_from_args

    def parse(*argv):
        return config_from_args(command_parser("train", "main.py").parse_args(list(argv)))

    assert parse("--tensorboard").tensorboard is True and parse().tensorboard is False


def test_the_cli_run_exports_its_history_and_leaves_the_sessions_history_alone(tmp_path):
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from latentlapse.xray import cli

    for name, extra in (("plain", []), ("board", ["--tensorboard"])):
        code = cli.train_main(["--classes", "4", "--epochs", "3", "--runs_dir", str(tmp_path / name), "--quiet", *extra])
        assert code == 0
    plain, board = (tmp_path / name / "run_001" for name in ("plain", "board"))
    assert (board / "history.csv").read_text().splitlines()[0] == (plain / "history.csv").read_text().splitlines()[0]
    history = list(csv.DictReader((board / "history.csv").open()))
    events = EventAccumulator(str(board / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("scores/val_acc")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("scores/val_acc")] == pytest.approx([float(r["val_acc"]) for r in history])
    assert not list(board.rglob("*.tmp"))


def test_a_reader_left_open_sees_each_batch_as_the_file_grows(tmp_path):
    """Each rewrite starts with the bytes of the previous one, so TensorBoard's reader, which
    goes on from its offset, picks up the new epochs without a restart."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from latentlapse import Timelapse

    y = np.arange(40) % 2
    p = np.random.default_rng(2).dirichlet(np.ones(2), size=40)
    steps = []
    with Timelapse(tmp_path, class_names=["a", "b"], epochs=3, frames=False, tensorboard=True, flush_seconds=3600) as tl:
        reader = EventAccumulator(str(tl.run_dir / "tensorboard"))
        for epoch in (1, 2, 3):
            tl.log_epoch(epoch, train=(None, y, p), val=(None, y, p))
            tl.flush()
            reader.Reload()
            steps.append([e.step for e in reader.Scalars("scores/val_acc")])
    assert steps == [[1], [1, 2], [1, 2, 3]]
