"""The two-panel frame: size, titles, legend counts, fixed limits, atomic writes."""

from __future__ import annotations

import math

import matplotlib.colors
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from latentlapse.core.timelapse import render
from latentlapse.core.timelapse.projection import DISPLAY_LIMIT, Layout

METRICS = {"val_errors": 7, "val_total": 220, "silhouette": 0.4123, "knn_acc": 0.8333}


@pytest.fixture
def frame(tmp_path, make_spec, make_snapshot):
    """A snapshot (7 validation errors), spec and layout of 40 + 20 points, in render order."""
    rng = np.random.default_rng(0)
    train_labels, val_labels = np.arange(40) % 4, np.arange(20) % 4
    spec = make_spec(tmp_path, train_labels, val_labels, total_epochs=150)
    snapshot = make_snapshot(10, rng.normal(size=(40, 8)), rng.normal(size=(20, 8)), val_labels, n_wrong=7)
    layout = Layout(rng.uniform(-0.8, 0.8, (40, 2)), rng.uniform(-0.8, 0.8, (20, 2)), state=None)
    return snapshot, spec, layout


def test_writes_a_png_of_the_expected_size_and_no_temp_files(tmp_path, frame):
    path = tmp_path / "epoch_010_acc0.7901.png"
    render.render_frame(path, *frame, METRICS)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1600, 700)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_titles_legends_and_corner_text(frame):
    fig = render.frame_figure(*frame, METRICS)
    left, right = fig.axes
    assert left.get_title() == "Training Set - Epoch 10\nacc 0.8123 · loss 0.4567"
    assert right.get_title() == "Validation Set - Epoch 10\nacc 0.7901 · loss 0.5678"
    left_labels = [t.get_text() for t in left.get_legend().get_texts()]
    right_labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert left_labels == ["AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN"]
    assert right_labels == left_labels + ["misclassified (7)\nring = true class"]
    corner = "\n".join(t.get_text() for t in right.texts)
    assert "errors 7/220 (full val)" in corner
    assert "silhouette 0.41" in corner
    assert "5-NN acc 0.83" in corner
    assert fig.get_suptitle() == "Latent space (t-SNE) · epoch 10 / 150"


def test_both_panels_have_the_same_fixed_limits(frame):
    fig = render.frame_figure(*frame, METRICS)
    for ax in fig.axes:
        assert ax.get_xlim() == (-DISPLAY_LIMIT, DISPLAY_LIMIT)
        assert ax.get_ylim() == (-DISPLAY_LIMIT, DISPLAY_LIMIT)
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert fig.axes[0].get_position().height == fig.axes[1].get_position().height


def test_misclassified_points_are_large_red_markers_on_top(frame):
    fig = render.frame_figure(*frame, METRICS)
    errors = fig.axes[1].collections[-1]
    assert len(errors.get_offsets()) == 7
    np.testing.assert_allclose(errors.get_facecolor()[0][:3], [0xD6 / 255, 0x27 / 255, 0x28 / 255])
    assert errors.get_sizes()[0] > 3 * fig.axes[1].collections[0].get_sizes()[0]
    assert errors.get_zorder() > fig.axes[1].collections[0].get_zorder()


def test_each_red_x_sits_on_a_ring_in_its_true_class_colour(frame):
    snapshot, spec, layout = frame
    fig = render.frame_figure(*frame, METRICS)
    rings, crosses = fig.axes[1].collections[-2:]
    wrong = snapshot.val_pred != spec.val_labels
    np.testing.assert_allclose(rings.get_offsets(), layout.val_xy[wrong])
    np.testing.assert_allclose(crosses.get_offsets(), layout.val_xy[wrong])
    expected = [matplotlib.colors.to_rgb(spec.colors[c]) for c in spec.val_labels[wrong]]
    np.testing.assert_allclose(rings.get_edgecolor()[:, :3], expected)
    assert len(rings.get_facecolor()) == 0  # open rings: the point under them stays visible
    assert rings.get_sizes()[0] > crosses.get_sizes()[0] and rings.get_zorder() < crosses.get_zorder()
    assert len({tuple(c) for c in expected}) > 1  # the errors of this frame span several true classes


def test_missing_numbers_show_a_dash_and_the_method_can_be_overridden(frame):
    snapshot, spec, layout = frame
    snapshot = type(snapshot)(**{**snapshot.__dict__, "scores": {}})
    fig = render.frame_figure(snapshot, spec, layout, {"silhouette": math.nan}, method="pca")
    assert fig.axes[0].get_title().endswith("acc – · loss –")
    assert "silhouette –" in fig.axes[1].texts[0].get_text()
    assert "(PCA)" in fig.get_suptitle()


def test_draw_map_counts_errors_and_can_be_reused_on_any_axes(frame):
    snapshot, spec, layout = frame
    ax = Figure().add_subplot()
    n_wrong = render.draw_map(ax, layout.val_xy, spec.val_labels, spec, pred=snapshot.val_pred, legend=False)
    assert n_wrong == 7
    assert render.draw_map(ax, layout.train_xy, spec.train_labels, spec) == 0


def test_a_failure_while_saving_leaves_no_partial_file(tmp_path, frame, monkeypatch):
    path = tmp_path / "epoch_010_acc0.7901.png"
    path.write_bytes(b"previous frame")

    def broken_savefig(self, handle, **kwargs):
        handle.write(b"\x89PNG half a frame")
        raise OSError("disk went away")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk went away"):
        render.render_frame(path, *frame, METRICS)
    assert path.read_bytes() == b"previous frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
