"""End-to-end runs of the training command: files, numbering, reproducibility, predictions."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from latentlapse.xray import checkpoints, cli, pipeline
from latentlapse.xray.config import TrainConfig, VizConfig


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built_in_runs(tmp_path_factory):
    """The issue's command (two epochs to save time), twice: ``python main.py --classes 4 --epochs 2 --runs_dir R``."""
    root = tmp_path_factory.mktemp("runs")
    outputs = []
    for _ in range(2):
        code = cli.train_main(["--classes", "4", "--epochs", "2", "--threads", "1", "--runs_dir", str(root), "--quiet"])
        outputs.append(code)
    return root, outputs


def test_run_leaves_metadata_checkpoints_and_results(built_in_runs):
    root, codes = built_in_runs
    assert codes == [0, 0]
    run = root / "run_001"
    names = {p.name for p in run.iterdir()}
    assert {"run_metadata.json", "best.pt", "last.pt", "final_metrics.json", "classification_report.txt",
            "history.csv"} <= names
    meta = json.loads((run / "run_metadata.json").read_text())
    assert meta["status"] == "completed"
    assert meta["run_directory"] == str(run) and meta["num_classes"] == 4
    assert meta["class_counts"]["train_after_oversampling"]["YSO/CV"] == 751
    assert len(meta["data"]["sha256"]) == 64 and "torch" in meta["versions"]
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,") and len(history) == 3
    final = json.loads((run / "final_metrics.json").read_text())
    assert sum(final["per_class"][c]["support"] for c in final["class_names"]) == 546
    assert "best checkpoint" in final["evaluated"]
    assert final["evaluated"].endswith("on the validation split, raw network (argmax of the uncalibrated softmax)")
    first = (run / "classification_report.txt").read_text().splitlines()[0]
    assert first.endswith("(chosen by validation balanced accuracy), raw network (argmax of the uncalibrated softmax)")


def test_second_run_is_run_002_and_first_is_untouched(built_in_runs, tmp_path):
    root, _ = built_in_runs
    assert sorted(p.name for p in root.iterdir()) == ["run_001", "run_002"]
    before = _digest(root / "run_001")
    code = cli.train_main(["--classes", "2", "--epochs", "1", "--runs_dir", str(root), "--quiet"])
    assert code == 0 and (root / "run_003").is_dir()
    assert _digest(root / "run_001") == before


def test_run_folder_is_the_first_line_printed(capsys, tmp_path):
    cli.train_main(["--classes", "2", "--epochs", "1", "--runs_dir", str(tmp_path), "--quiet"])
    assert capsys.readouterr().out.splitlines()[0] == str(tmp_path / "run_001")


def test_same_seed_same_metrics_and_checkpoint_reproduces_them(built_in_runs):
    root, _ = built_in_runs
    a = json.loads((root / "run_001" / "final_metrics.json").read_text())
    b = json.loads((root / "run_002" / "final_metrics.json").read_text())
    assert a["confusion_matrix"] == b["confusion_matrix"] and a["balanced_acc"] == b["balanced_acc"]
    payload = checkpoints.load(root / "run_001" / "best.pt")
    model = checkpoints.model_from_checkpoint(payload)
    prepared = pipeline.prepare(TrainConfig.from_dict(payload["config"]))
    X = torch.as_tensor(prepared.dataset.X[prepared.split.val])
    with torch.inference_mode():
        pred = model(X).argmax(dim=1).numpy()
    cm = np.zeros((4, 4), dtype=int)
    np.add.at(cm, (prepared.y[prepared.split.val], pred), 1)
    assert cm.tolist() == a["confusion_matrix"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    path = tmp_path_factory.mktemp("data") / "small.txt"
    write_dataset(path, simulate_dataset(n=400, unlabelled=50, seed=5))
    return path


def test_visualisation_does_not_change_the_trained_weights(small_data, tmp_path):
    base = dict(classes=4, epochs=3, data=str(small_data), runs_dir=str(tmp_path), seed=11, threads=1)
    plain = pipeline.train(TrainConfig(**base))
    filmed = pipeline.train(TrainConfig(**base, viz=VizConfig(enabled=True, every=1, train_samples=60, val_samples=40)))
    a = checkpoints.load(plain.run_dir / "last.pt")["trainer"]["model"]
    b = checkpoints.load(filmed.run_dir / "last.pt")["trainer"]["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(list(filmed.run_dir.glob("epoch_*.png"))) == 3


def test_save_preds_and_predict_command(small_data, tmp_path, capsys):
    preds = tmp_path / "val_preds.csv"
    result = pipeline.train(TrainConfig(classes=2, epochs=2, data=str(small_data), runs_dir=str(tmp_path / "r"),
                                        save_preds=str(preds)))
    rows = preds.read_text().splitlines()
    assert rows[0] == "id,true_class,predicted_class,p_AGN,p_HM/LM"
    meta = json.loads((result.run_dir / "run_metadata.json").read_text())
    assert len(rows) - 1 == sum(meta["class_counts"]["validation"].values())
    out = tmp_path / "all.json"
    code = cli.main(["predict", "--checkpoint", str(result.run_dir / "best.pt"), "--data", str(small_data),
                     "--out", str(out), "--batch_size", "64"])
    assert code == 0
    records = json.loads(out.read_text())
    assert len(records) == 450
    from latentlapse.xray.data.readers import load_dataset
    from latentlapse.xray.data.taxonomy import scheme

    outside = int(np.sum(scheme(2).encode(load_dataset(small_data).labels) < 0))  # unlabelled or not AGN/stars
    assert outside > 50
    assert sum(r["true_class"] == "" for r in records) == outside
    assert all(abs(r["p_AGN"] + r["p_HM/LM"] - 1) < 1e-4 for r in records)
    assert "450 sources classified" in capsys.readouterr().out
    # --save_preds holds the raw network's probabilities, as its log line and the guide say
    raw = tmp_path / "raw.json"
    assert cli.main(["predict", "--checkpoint", str(result.run_dir / "best.pt"), "--data", str(small_data),
                     "--out", str(raw), "--uncalibrated", "--priors", "model", "--quiet"]) == 0
    by_id = {r["id"]: r for r in json.loads(raw.read_text())}
    saved = [row.split(",") for row in rows[1:]]
    assert all(abs(float(p) - by_id[row[0]]["p_AGN"]) < 2e-6 for row in saved for p in [row[3]])


def test_cnn_on_a_catalogue_is_a_usage_error(tmp_path):
    table = tmp_path / "cat.csv"
    rows = ["name,f1,f2,label"] + [f"S{i},{i % 7},{i % 3},{'AGN' if i % 2 else 'YSO'}" for i in range(40)]
    table.write_text("\n".join(rows) + "\n")
    code = cli.train_main(["--data", str(table), "--model", "cnn", "--epochs", "1", "--runs_dir", str(tmp_path / "r")])
    assert code == 2
    assert not (tmp_path / "r").exists()


def test_history_csv_leaves_a_recall_without_support_empty():
    from latentlapse.xray.loop_types import History

    text = History(rows=[{"epoch": 1, "val_recall_AGN": 0.5, "val_recall_NS": float("nan")}]).to_csv()
    assert text == "epoch,val_recall_AGN,val_recall_NS\n1,0.5,\n"
