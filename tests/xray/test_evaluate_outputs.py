"""latentlapse evaluate's outputs: the figure names its operating points, the JSON's skip counts,
an ``--out`` folder that already holds an evaluation."""

from __future__ import annotations

import json

import pytest
from test_evaluate import write_catalog

from latentlapse.xray import calibration_figure, cli, pipeline
from latentlapse.xray.config import TrainConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_outputs")
    data = write_catalog(root / "cat.csv")
    result = pipeline.train(TrainConfig(classes=4, epochs=3, batch_size=32, data=str(data), runs_dir=str(root / "runs")))
    return result.run_dir / "best.pt"


@pytest.mark.parametrize("flags, headline", [([], ("calibrated (T = ", "priors balanced")),
                                             (["--uncalibrated", "--priors", "train"], ("uncalibrated", "priors train"))])
def test_the_figure_names_the_operating_point_of_each_panel(checkpoint, tmp_path, monkeypatch, flags, headline):
    """The confusion matrix is at the headline operating point, the calibrated curve always at
    the training priors: the figure says both (two evaluations at other priors differ)."""
    drawn = []
    real = calibration_figure.reliability_figure
    monkeypatch.setattr(calibration_figure, "reliability_figure", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    data = write_catalog(tmp_path / "other.csv", n=80, seed=5)
    out = tmp_path / "ev"
    assert cli.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--quiet",
                     *flags]) == 0
    point = json.loads((out / "evaluation.json").read_text())["operating_point"]
    assert point.startswith(headline[0]) and headline[1] in point
    curves, _, matrix = drawn[0].axes[:3]
    assert point in " ".join(matrix.get_title().split())
    legend = [text.get_text() for text in curves.get_legend().get_texts()]
    assert any(label.startswith("calibrated (at training priors): ECE ") for label in legend), legend
