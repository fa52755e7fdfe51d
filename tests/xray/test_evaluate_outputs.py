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


def test_the_skipped_sources_are_counted_as_unlabelled_or_of_another_class(tmp_path):
    """A 2-class model skips both the sources without a label and those labelled YSO or NS (a
    class it does not have); evaluation.json counts them apart, the report's (and log's) first
    line names them together."""
    root = tmp_path / "two"
    root.mkdir()
    data = write_catalog(root / "cat.csv")
    result = pipeline.train(TrainConfig(classes=2, epochs=2, batch_size=32, data=str(data), runs_dir=str(root / "runs")))
    lines = write_catalog(tmp_path / "other.csv", n=60, seed=5).read_text().splitlines()
    blank = {1, 2, 3, 6}  # rows 1-3 are YSO, LM-STAR, NS; row 6 is YSO: four unlabelled
    rows = [line.rsplit(",", 1)[0] + "," if i in blank else line for i, line in enumerate(lines[1:], 1)]
    labels = [line.rsplit(",", 1)[1] for line in rows]
    (tmp_path / "other.csv").write_text("\n".join([lines[0]] + rows) + "\n")
    out = tmp_path / "ev"
    assert cli.main(["evaluate", "--checkpoint", str(result.run_dir / "best.pt"), "--data",
                     str(tmp_path / "other.csv"), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "evaluation.json").read_text())
    other = sum(label in ("YSO", "NS") for label in labels)
    assert (metrics["n_skipped_unlabelled"], metrics["n_skipped_other_class"]) == (4, other) and other > 20
    assert metrics["n_sources"] == 60 - 4 - other
    first = (out / "evaluation_report.txt").read_text().splitlines()[0]
    assert first.endswith(f": {60 - 4 - other} labelled sources ({4 + other} without a label of these classes skipped)")


def test_an_out_folder_with_an_evaluation_is_replaced_with_a_warning(checkpoint, tmp_path, capsys):
    data = write_catalog(tmp_path / "other.csv", n=40, seed=5)
    out = tmp_path / "ev"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    command = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--quiet"]
    assert cli.main(command) == 0
    assert "replacing" not in capsys.readouterr().err  # a folder without an evaluation: nothing to say
    assert cli.main(command + ["--priors", "train"]) == 0
    err = capsys.readouterr().err
    assert (f"replacing the evaluation in {out} (its evaluation.json, evaluation_report.txt, evaluation.png)"
            in err), err
    assert json.loads((out / "evaluation.json").read_text())["priors"] == "train"
    assert (out / "notes.txt").read_text() == "mine\n"
