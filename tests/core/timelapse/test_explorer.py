"""The explorer's data: layouts, inputs and dynamics gathered per point, in the page's encoding."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest
from synthetic_runs import N_TRAIN, N_VAL, probabilities, spectrum, write_run

from latentlapse.core.timelapse import dynamics, explorer, layouts
from latentlapse.core.timelapse.projection import Layout, ProjectionState
from latentlapse.core.timelapse.runfiles import load_run
from latentlapse.core.timelapse.snapshot import frame_snapshot


def decode(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))


@pytest.fixture()
def run(tmp_path):
    return load_run(write_run(tmp_path / "run_001", epochs=20, frames=(1, 10, 20)))


def test_points_frames_and_probabilities_follow_the_layout_files(run):
    data = explorer.explorer_data(run)
    n = N_TRAIN + N_VAL
    assert data["epochs"] == [1, 10, 20] and data["total"] == 20
    assert data["ids"][:2] == ["T000", "T001"] and data["ids"][N_TRAIN] == "V000" and len(data["ids"]) == n
    assert decode(data["split"], np.uint8).tolist() == [0] * N_TRAIN + [1] * N_VAL
    assert [c["marker"] for c in data["classes"]] == ["o", "s", "^", "D"]
    frame = layouts.load_layout(layouts.layout_files(run.run_dir)[10])
    xy = decode(data["xy"], np.float32).reshape(3, n, 2)
    np.testing.assert_allclose(xy[1], np.concatenate([frame.train_xy, frame.val_xy]), rtol=1e-6)
    pred = decode(data["pred"], np.uint8).reshape(3, n)
    assert pred[1, N_TRAIN:].tolist() == frame.val_pred.tolist()
    assert pred[1, :N_TRAIN].tolist() == frame.train_proba.argmax(axis=1).tolist()  # an older layout: the argmax
    proba = decode(data["proba"], np.uint8).reshape(3, n, 4) / 250
    np.testing.assert_allclose(proba[1, N_TRAIN], frame.val_proba[0], atol=0.002)
    json.dumps(data)  # JSON-ready as it is


def test_a_training_point_shows_the_models_prediction_where_float16_ties(run):
    """Two probabilities closer than float16 can tell apart tie in the layout; the explorer shows
    the class the model predicted, as the run's dynamics record it, not the first of the tie."""
    train_labels, val_labels = np.arange(N_TRAIN) % 4, np.arange(N_VAL) % 4
    p_tr = probabilities(train_labels).astype(np.float64)
    p_tr[0] = [0.29029, 0.2013, 0.29031, 0.2181]  # label 0; the model says 2; both 0.2903 in float16
    entry = SimpleNamespace(p_tr=p_tr, p_va=probabilities(val_labels), y_tr=train_labels, y_va=val_labels, metrics={})
    sources = {"train_pos": np.arange(N_TRAIN), "val_pos": np.arange(N_VAL), "y_va": val_labels}
    snapshot = frame_snapshot(10, entry, np.zeros((N_TRAIN, 2)), np.zeros((N_VAL, 2)), sources)
    spec = SimpleNamespace(total_epochs=20, method="tsne", train_ids=np.array([f"T{i:03d}" for i in range(N_TRAIN)]),
                           val_ids=np.array([f"V{i:03d}" for i in range(N_VAL)]),
                           train_labels=train_labels, val_labels=val_labels)
    xy = np.zeros((N_TRAIN, 2)), np.zeros((N_VAL, 2))
    layouts.save_layout(run.run_dir, snapshot, spec, Layout(*xy, ProjectionState("tsne", *xy)))
    recorded = dynamics.epoch_record(train_labels, p_tr, np.log(p_tr))["pred"]
    pred = decode(explorer.explorer_data(run)["pred"], np.uint8).reshape(3, N_TRAIN + N_VAL)
    assert recorded[0] == 2 and pred[1, 0] == 2  # wrong, as the dynamics say
    assert pred[1, :N_TRAIN].tolist() == recorded.tolist()


def test_inputs_are_the_sample_rows_with_counts_and_grid(run):
    inputs = explorer.explorer_data(run)["inputs"]
    assert inputs["kind"] == "spectra" and inputs["n"] == 380 and inputs["energy"][0] == pytest.approx(0.5125)
    x = decode(inputs["x"], np.float16).reshape(N_TRAIN + N_VAL, 380)
    np.testing.assert_allclose(x[N_TRAIN + 3], spectrum(3), rtol=1e-3)
    assert inputs["counts"][N_TRAIN + 3] == 203.0 and inputs["counts"][5] == 105.0


def test_a_catalogue_keeps_its_feature_names_and_a_missing_source_is_nan(tmp_path):
    explorer.save_inputs(tmp_path, kind="catalog", train_ids=["a", "b"], val_ids=["c"],
                         train_X=np.array([[1e-14, 3.0], [2e-13, 4.0]]), val_X=np.array([[5e-15, np.nan]]),
                         train_counts=[np.nan, np.nan], val_counts=[np.nan], energy=None, feature_names=("flux", "hr"))
    loaded = explorer.load_inputs(tmp_path)
    assert loaded["train_X"].dtype == np.float32 and loaded["feature_names"].tolist() == ["flux", "hr"]
    out = explorer._inputs(loaded, np.array(["b", "c", "zz"]), np.array([0, 1, 1]))
    x = decode(out["x"], np.float32).reshape(3, 2)
    assert x[0].tolist() == pytest.approx([2e-13, 4.0]) and np.isnan(x[2]).all() and np.isnan(x[1, 1])
    assert out["names"] == ["flux", "hr"] and out["counts"] == [None, None, None]
    assert explorer.load_inputs(tmp_path / "elsewhere") is None


def test_dynamics_and_summary_are_matched_by_split_and_id(run):
    ids = np.array(["V001", "T000", "T001", "V000"])
    history = SimpleNamespace(epochs=np.arange(1, 6), ids=ids, split=np.array(["val", "train", "train", "val"]),
                              true_proba=np.tile([0.1, 0.2, 0.3, 0.4], (5, 1)), margin=np.tile([-1, 1, 2, 3.0], (5, 1)))
    summary = [{"id": "T001", "split": "train", "region": "hard-to-learn", "suspect_rank": "1"},
               {"id": "V000", "split": "val", "region": "easy-to-learn", "suspect_rank": "40"}]
    data = explorer.explorer_data(run, history=history, summary=summary)
    n = N_TRAIN + N_VAL
    true_proba = decode(data["dynamics"]["trueProba"], np.float16).reshape(5, n)
    assert true_proba[0, [0, 1, N_TRAIN, N_TRAIN + 1]].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.1], abs=1e-3)
    assert np.isnan(true_proba[:, 2]).all()  # T002 has no history row
    assert decode(data["dynamics"]["margin"], np.float16).reshape(5, n)[4, 1] == 2.0
    summ = data["summary"]
    assert summ["region"][1] == "hard-to-learn" and summ["suspectRank"][1] == 1 and summ["suspect"][1] is True
    assert summ["suspectRank"][N_TRAIN] == 40 and summ["suspect"][N_TRAIN] is False  # beyond the top 20
    assert summ["region"][0] is None and summ["suspectRank"][0] is None


def test_a_run_without_layouts_has_no_explorer(tmp_path):
    run = load_run(write_run(tmp_path / "run_002", epochs=3, frames=(3,), write_layouts=False, inputs=False))
    assert explorer.explorer_data(run) is None
