"""metrics.png: six panels for a visualised run, three without; frames and best epoch marked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from synthetic_runs import write_run

from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import curves
from latentlapse.core.timelapse.runfiles import load_run


def _vertical_lines(ax) -> list[float]:
    """x of every vertical line drawn across the panel (axvline)."""
    return [float(line.get_xdata()[0]) for line in ax.lines
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


def test_visualised_run_gets_six_panels_with_frames_and_best_epoch_marked(tmp_path):
    folder = write_run(tmp_path / "run_001", epochs=12, frames=(1, 5, 10, 12))
    path = curves.plot_curves(folder)
    assert path == folder / "metrics.png"
    with Image.open(path) as image:
        assert image.size == (1600, 980)
    fig = curves.curves_figure(load_run(folder))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["Accuracy", "Loss (focal, gamma 2)", "Validation recall per class"]
    assert titles[3].startswith("Cluster spread") and titles[4].startswith("Class separation")
    assert titles[5].startswith("Validation errors")
    for ax in fig.axes:
        assert sorted(_vertical_lines(ax)) == [1.0, 5.0, 10.0, 11.0, 12.0]  # frames, plus best epoch 11
    spread = next(line for line in fig.axes[3].lines if line.get_label() == "mean")  # from latent_metrics.csv
    assert list(spread.get_xdata()) == [1, 5, 10, 12]
    assert spread.get_ydata()[0] == pytest.approx(1.0) and spread.get_ydata()[-1] == pytest.approx(0.25)


def test_run_without_visualisation_gets_the_history_panels_only(tmp_path):
    folder = write_run(tmp_path / "run_002", epochs=8, frames=(1, 8))
    (folder / "latent_metrics.csv").unlink()
    path = curves.plot_curves(folder)
    with Image.open(path) as image:
        assert image.size == (1600, 520)
    fig = curves.curves_figure(load_run(folder))
    assert len(fig.axes) == 3
    assert _vertical_lines(fig.axes[0]) == [7.0]  # only the best epoch
    accuracy = {line.get_label(): line for line in fig.axes[0].lines}
    assert np.allclose(accuracy["validation"].get_ydata()[:2], [0.5 + 0.35 * (1 - np.exp(-e / 8)) for e in (1, 2)])


def test_no_history_is_a_one_line_error(tmp_path):
    folder = write_run(tmp_path / "run_003")
    (folder / "history.csv").unlink()
    with pytest.raises(InputError, match=r"run_003: no history.csv yet; curves need at least one finished epoch"):
        curves.plot_curves(folder)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(InputError, match=r"not a latentlapse run \(no run_metadata.json\)"):
        curves.plot_curves(tmp_path)


@pytest.mark.parametrize("changes, title", [({"focal_gamma": 0.0}, "Loss (cross-entropy)"),
                                            ({"focal_gamma": 1.5}, "Loss (focal, gamma 1.5)"),
                                            ({"made_by": "latentlapse 0.1.0 Timelapse"}, "Loss")])
def test_the_loss_panel_is_titled_by_the_loss_the_run_recorded(tmp_path, changes, title):
    import json

    folder = write_run(tmp_path / "run_001", epochs=8, frames=(1, 8))
    meta = json.loads((folder / "run_metadata.json").read_text())
    if "focal_gamma" in changes:
        meta["config"]["focal_gamma"] = changes["focal_gamma"]
    else:
        meta.update(changes)
    (folder / "run_metadata.json").write_text(json.dumps(meta))
    assert curves.curves_figure(load_run(folder)).axes[1].get_title() == title
