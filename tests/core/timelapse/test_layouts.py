"""layouts/epoch_XXX.npz: each frame's map kept exactly, loadable without pickles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from latentlapse.core.timelapse import layouts
from latentlapse.core.timelapse.projection import Layout, ProjectionState


def test_round_trip_is_exact_and_named_like_the_frames(tmp_path):
    rng = np.random.default_rng(0)
    spec = SimpleNamespace(total_epochs=1500, method="umap", train_ids=np.array(["4XMM J1", "b"], dtype=object),
                           val_ids=np.array([7, 8, 9]), train_labels=np.array([0, 1]), val_labels=np.array([1, 0, 1]))
    proba = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    snapshot = SimpleNamespace(epoch=25, val_pred=np.array([1, 1, 1]), train_proba=proba[:2], val_proba=proba,
                               train_pred=np.array([1, 0]))
    state = ProjectionState("tsne", rng.normal(size=(2, 2)), rng.normal(size=(3, 2)))  # umap fell back to t-SNE
    layout = Layout(rng.normal(size=(2, 2)), rng.normal(size=(3, 2)), state)
    (tmp_path / "layouts").mkdir()
    stale = tmp_path / "layouts" / ".epoch_0010.npz.abc.tmp"
    stale.write_bytes(b"half")
    path = layouts.save_layout(tmp_path, snapshot, spec, layout)
    assert path == tmp_path / "layouts" / "epoch_0025.npz" and not stale.exists()
    loaded = layouts.load_layout(path)
    assert (loaded.epoch, loaded.method) == (25, "tsne")
    np.testing.assert_array_equal(loaded.train_xy, layout.train_xy)
    np.testing.assert_array_equal(loaded.val_xy, layout.val_xy)
    assert loaded.train_ids.tolist() == ["4XMM J1", "b"] and loaded.val_ids.tolist() == ["7", "8", "9"]
    assert loaded.val_pred.tolist() == [1, 1, 1] and loaded.val_labels.tolist() == [1, 0, 1]
    assert loaded.val_proba.dtype == np.float16 and loaded.val_proba.tolist() == proba.tolist()  # exact in float16
    assert loaded.train_proba.tolist() == proba[:2].tolist()
    assert loaded.train_pred.tolist() == [1, 0]
    assert layouts.layout_files(tmp_path) == {25: path}
    assert layouts.layout_files(tmp_path / "elsewhere") == {}


def test_the_last_layout_is_where_a_resumed_run_warm_starts(tmp_path):
    rng = np.random.default_rng(1)
    spec = SimpleNamespace(total_epochs=30, train_ids=np.arange(4), val_ids=np.arange(2),
                           train_labels=np.zeros(4), val_labels=np.zeros(2))
    assert layouts.last_projection(tmp_path) is None  # nothing drawn yet: a cold start
    saved = {}
    for epoch in (1, 5, 10):
        state = ProjectionState("umap", rng.normal(size=(4, 2)) * 30, rng.normal(size=(2, 2)) * 30)
        saved[epoch] = Layout(rng.normal(size=(4, 2)), rng.normal(size=(2, 2)), state)
        layouts.save_layout(tmp_path, SimpleNamespace(epoch=epoch, val_pred=np.zeros(2)), spec, saved[epoch])
    previous = layouts.last_projection(tmp_path)
    assert isinstance(previous.state, ProjectionState) and previous.state.method == "umap"
    for got, want in ((previous.train_xy, saved[10].train_xy), (previous.val_xy, saved[10].val_xy),
                      (previous.state.train_raw, saved[10].state.train_raw),
                      (previous.state.val_raw, saved[10].state.val_raw)):
        np.testing.assert_array_equal(got, want)


def test_a_layout_without_raw_positions_still_aligns_the_next_frame(tmp_path):
    xy = np.arange(8.0).reshape(4, 2)
    np.savez(tmp_path / "old.npz", epoch=np.int64(5), method=np.str_("tsne"), train_xy=xy, val_xy=xy[:2],
             train_ids=np.arange(4).astype(str), val_ids=np.arange(2).astype(str), train_labels=np.zeros(4),
             val_labels=np.zeros(2), val_pred=np.zeros(2))
    (tmp_path / "layouts").mkdir()
    (tmp_path / "old.npz").rename(tmp_path / "layouts" / "epoch_005.npz")
    old = layouts.load_layout(tmp_path / "layouts" / "epoch_005.npz")
    assert old.train_proba is None and old.val_proba is None  # written before probabilities were kept
    previous = layouts.last_projection(tmp_path)
    assert previous.state is None  # no warm start from it ...
    np.testing.assert_array_equal(previous.train_xy, xy)  # ... but the next frame is aligned to it
