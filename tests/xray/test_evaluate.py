"""latentlapse evaluate: agrees with scikit-learn's metrics; an unlabelled file is a usage error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from latentlapse.xray import cli, pipeline
from latentlapse.xray.config import TrainConfig

LABELS = ("AGN", "YSO", "LM-STAR", "NS")


def write_catalog(path, n=160, seed=0, labelled=True):
    """A small catalogue whose classes differ in their mean features (learnable in a few epochs)."""
    rng = np.random.default_rng(seed)
    rows = ["name,Fs,Fh,Gmag,P_inter" + (",True_Class" if labelled else "")]
    for i in range(n):
        k = i % len(LABELS) if i % 5 else 0
        f = rng.normal(k, 0.8, 4)
        cells = [f"S{i}", f"{10 ** (f[0] - 14):.4g}", f"{10 ** (f[1] - 14):.4g}", f"{15 + f[2]:.3f}", f"{f[3]:.3f}"]
        rows.append(",".join(cells + ([LABELS[k]] if labelled else [])))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = write_catalog(root / "cat.csv")
    result = pipeline.train(TrainConfig(classes=4, epochs=3, batch_size=32, data=str(data), runs_dir=str(root / "runs")))
    return root, data, result.run_dir / "best.pt"


def test_evaluate_agrees_with_scikit_learn(trained, tmp_path, capsys):
    root, data, best = trained
    labelled = write_catalog(tmp_path / "other.csv", n=120, seed=5)
    out = tmp_path / "ev"
    assert cli.main(["evaluate", "--checkpoint", str(best), "--data", str(labelled), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    metrics = json.loads((out / "evaluation.json").read_text())
    assert cli.main(["predict", "--checkpoint", str(best), "--data", str(labelled), "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()[1:]
    names = metrics["class_names"]
    y_true = [names.index(line.split(",")[1]) for line in lines]
    y_pred = [names.index(line.split(",")[2]) for line in lines]
    assert metrics["acc"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["balanced_acc"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for i, name in enumerate(names):
        row = metrics["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i]))
    assert metrics["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    assert {"raw", "calibrated", "temperature"} <= set(metrics["calibration"])
    assert set(metrics["operating_points"]) == {"balanced", "train", "raw"}
    assert (out / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "evaluation_report.txt").read_text()
    assert "balanced accuracy" in report
    assert "fitted on the run's validation split, scored on 120 sources of other.csv" in report
    assert "trained on" not in report and metrics["training_file"] is False


def test_evaluate_numbers_its_folders(trained, tmp_path, monkeypatch):
    root, data, best = trained
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli.main(["evaluate", "--checkpoint", str(best), "--data", str(data), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "evaluations").iterdir()) == ["eval_001", "eval_002"]


def test_unlabelled_file_is_one_line_and_exit_2(trained, tmp_path, capsys):
    root, data, best = trained
    unlabelled = write_catalog(tmp_path / "u.csv", n=20, labelled=False)
    code = cli.main(["evaluate", "--checkpoint", str(best), "--data", str(unlabelled), "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("latentlapse evaluate: error:") and "needs a labelled file" in err
    assert not (tmp_path / "ev").exists()


def test_sources_of_an_unknown_class_are_skipped_and_counted_not_refused(trained, tmp_path, capsys):
    """A cross-matched catalogue often holds a QSO or galaxy row: evaluate skips it, as the guide
    says (it refused the whole file)."""
    root, data, best = trained
    labelled = write_catalog(tmp_path / "other.csv", n=40, seed=5)
    lines = labelled.read_text().splitlines()
    for i in (3, 7):
        lines[i] = lines[i].rsplit(",", 1)[0] + ",QSO"
    labelled.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ev"
    assert cli.main(["evaluate", "--checkpoint", str(best), "--data", str(labelled), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{labelled}: 2 sources with a label of no known class (the first: 'QSO' at line 4) skipped: only the " \
           f"model's classes are scored\n" in captured.err
    assert "on 38 sources" in captured.out
    assert "38 labelled sources (2 without a label of these classes skipped)" in (out / "evaluation_report.txt").read_text()
    metrics = json.loads((out / "evaluation.json").read_text())
    assert sum(metrics["per_class"][n]["support"] for n in metrics["class_names"]) == 38
    # a QSO is labelled, with a class the model does not have: not counted as unlabelled
    assert (metrics["n_skipped_unlabelled"], metrics["n_skipped_other_class"]) == (0, 2)


def test_run_records_calibration_and_both_operating_points(trained):
    root, data, best = trained
    final = json.loads((best.parent / "final_metrics.json").read_text())
    for when in ("before", "after"):
        assert {"ece", "classwise_ece", "brier", "nll"} <= set(final["calibration"][when])
    assert final["calibration"]["after"]["nll"] <= final["calibration"]["before"]["nll"] + 1e-9
    assert set(final["operating_points"]) == {"balanced", "train"}
    assert (best.parent / "calibration.png").is_file()
    import torch

    payload = torch.load(best, weights_only=True)
    assert payload["calibration"]["temperature"] > 0 and len(payload["priors"]["train"]) == 4


def test_predict_priors_and_uncalibrated_change_the_probabilities(trained, tmp_path):
    root, data, best = trained
    outputs = {}
    for flags in (["--priors", "train"], ["--priors", "balanced"], ["--uncalibrated"],
                  ["--priors", "AGN=0.7,HM/LM=0.1,YSO/CV=0.1,NS/HMXB/LMXB/NS_BIN=0.1"]):
        out = tmp_path / f"p{len(outputs)}.json"
        assert cli.main(["predict", "--checkpoint", str(best), "--data", str(data), "--out", str(out), *flags]) == 0
        outputs[" ".join(flags)] = np.array([r["p_AGN"] for r in json.loads(out.read_text())])
    values = list(outputs.values())
    assert all(not np.allclose(values[0], v) for v in values[1:])
    assert values[3].mean() > values[1].mean()  # AGN given a prior of 0.7 instead of 0.25


@pytest.mark.parametrize("flags, message", [
    (["--batch_size", "0"], "--batch_size must be at least 1"),
    (["--out", "no_such_folder/p.csv"], "the folder no_such_folder does not exist"),
])
def test_predict_bad_flags_are_exit_2_before_reading(trained, tmp_path, capsys, monkeypatch, flags, message):
    root, data, best = trained
    monkeypatch.chdir(tmp_path)
    args = ["predict", "--checkpoint", str(best), "--data", str(data), "--out", "p.csv", *flags]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_given_as_checkpoint_names_its_checkpoints(trained, capsys):
    root, data, best = trained
    assert cli.main(["evaluate", "--checkpoint", str(best.parent), "--data", str(data)]) == 1
    err = capsys.readouterr().err.strip()
    assert "a folder, not a checkpoint" in err and str(best) in err


def test_bad_priors_are_exit_2(trained, tmp_path, capsys):
    root, data, best = trained
    code = cli.main(["predict", "--checkpoint", str(best), "--data", str(data), "--out", str(tmp_path / "p.csv"),
                     "--priors", "AGN=1"])
    assert code == 2 and "give a prior for every class" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_uncalibrated_with_model_priors_is_the_raw_network(trained, tmp_path):
    import torch

    from latentlapse.xray import checkpoints
    from latentlapse.xray.calibration import softmax
    from latentlapse.xray.predict import inputs_of_file, predict_logits

    root, data, best = trained
    out = tmp_path / "raw.json"
    assert cli.main(["predict", "--checkpoint", str(best), "--data", str(data), "--out", str(out),
                     "--uncalibrated", "--priors", "model"]) == 0
    rows = json.loads(out.read_text())
    payload = checkpoints.load(best)
    X, _, _ = inputs_of_file(payload, str(data), None)
    with torch.no_grad():
        raw = softmax(predict_logits(checkpoints.model_from_checkpoint(payload), X, 64))
    written = np.array([[r[f"p_{name}"] for name in payload["class_names"]] for r in rows])
    assert np.allclose(written, raw, atol=1e-6)
    # calibrated, "model" re-weights nothing: the same as the training priors the calibration holds
    for flags, name in ((["--priors", "model"], "m.json"), (["--priors", "train"], "t.json")):
        assert cli.main(["predict", "--checkpoint", str(best), "--data", str(data), "--out", str(tmp_path / name),
                         *flags]) == 0
    model_p, train_p = (np.array([r["p_AGN"] for r in json.loads((tmp_path / n).read_text())]) for n in ("m.json", "t.json"))
    assert np.allclose(model_p, train_p, atol=1e-6)


def test_evaluate_uncalibrated_still_reports_the_checkpoints_calibration(trained, tmp_path, capsys):
    root, data, best = trained
    out = tmp_path / "ev"
    assert cli.main(["evaluate", "--checkpoint", str(best), "--data", str(data), "--out", str(out), "--uncalibrated",
                     "--priors", "model"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "evaluation.json").read_text())
    assert "(model priors, uncalibrated)" in printed
    assert {"raw", "calibrated", "temperature"} <= set(metrics["calibration"])
    assert set(metrics["operating_points"]) == {"balanced", "train", "raw"}
    assert metrics["acc"] == pytest.approx(metrics["operating_points"]["raw"]["acc"])
    report = (out / "evaluation_report.txt").read_text()
    assert "has no fitted calibration" not in report
    # the calibrated scores are at the training priors whatever --priors chose: said in both
    assert metrics["calibration"]["calibrated_at_priors"] == "train"
    assert "calibrated: at the training class frequencies" in report
    # the file the model was trained on: said, in the report and the JSON
    assert metrics["training_file"] is True and "the file the model was trained on" in report


def test_a_folder_given_to_a_catalogue_model_is_called_a_folder(trained, tmp_path, capsys):
    root, data, best = trained
    (tmp_path / "empty").mkdir()
    code = cli.main(["predict", "--checkpoint", str(best), "--data", str(tmp_path / "empty"), "--out",
                     str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "empty: is a folder (read as PHA spectra), but the checkpoint's model was trained on a catalogue" in err
