"""layouts/epoch_XXX.npz: each frame's map kept exactly, loadable without pickles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from latentlapse.timelapse import layouts


def test_round_trip_is_exact_and_named_like_the_frames(tmp_path):
    rng = np.random.default_rng(0)
    spec = SimpleNamespace(total_epochs=1500, method="umap", train_ids=np.array(["4XMM J1", "b"], dtype=object),
                           val_ids=np.array([7, 8, 9]), train_labels=np.array([0, 1]), val_labels=np.array([1, 0, 1]))
    snapshot = SimpleNamespace(epoch=25, val_pred=np.array([1, 1, 1]))
    layout = SimpleNamespace(train_xy=rng.normal(size=(2, 2)), val_xy=rng.normal(size=(3, 2)),
                             state=SimpleNamespace(method="tsne"))  # umap fell back to t-SNE
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
    assert layouts.layout_files(tmp_path) == {25: path}
    assert layouts.layout_files(tmp_path / "elsewhere") == {}
