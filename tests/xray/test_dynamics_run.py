"""Training dynamics end to end: flips on an easy set rank first, the outputs, ``latentlapse inspect``."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest

from latentlapse.xray import cli, pipeline
from latentlapse.core import rng
from latentlapse.xray.config import TrainConfig, VizConfig
from latentlapse.xray.data.label_noise import flip_fine_labels
from latentlapse.core.timelapse import dynamics

CLASSES = ("AGN", "HM-STAR", "YSO", "NS")  # one fine label of each 4-class class
PER_CLASS = 80
FRACTION = 0.1


@pytest.fixture(scope="module")
def noisy_blobs(tmp_path_factory):
    """A catalogue of four well separated Gaussian blobs with 10 % of the labels flipped, and the flipped ids."""
    generator = np.random.default_rng(0)
    centres = np.eye(4, 6) * 6.0
    X = np.concatenate([generator.normal(centres[c], 1.0, size=(PER_CLASS, 6)) for c in range(4)])
    labels = np.repeat(CLASSES, PER_CLASS)
    ids = np.array([f"SRC{i:04d}" for i in range(len(labels))])
    noisy, flipped = flip_fine_labels(labels, FRACTION, 4, rng.generator(0, "label_noise"))
    path = tmp_path_factory.mktemp("blobs") / "blobs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_id", "class", *[f"f{j}" for j in range(6)]])
        writer.writerows([ids[i], noisy[i], *map(float, X[i])] for i in range(len(ids)))
    return path, set(ids[flipped].tolist()), dict(zip(ids, labels))


@pytest.fixture(scope="module")
def blob_run(noisy_blobs, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(data=str(noisy_blobs[0]), epochs=15, device="cpu",
                             runs_dir=str(tmp_path_factory.mktemp("runs")))
        result = pipeline.train(config, announce=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    assert result.status == "completed"
    return result.run_dir


def test_the_ranking_finds_the_flipped_labels(noisy_blobs, blob_run):
    from sklearn.metrics import roc_auc_score

    _, flipped, _ = noisy_blobs
    rows = dynamics.read_summary(blob_run)
    assert len(rows) == 4 * PER_CLASS and len({r["id"] for r in rows}) == len(rows)
    assert [int(r["suspect_rank"]) for r in rows] == list(range(1, len(rows) + 1))
    is_flipped = np.array([r["id"] in flipped for r in rows])
    score = np.array([float(r["suspect_score"]) for r in rows])
    assert roc_auc_score(is_flipped, score) > 0.95
    assert is_flipped[:len(flipped)].mean() >= 0.8  # precision at k = the number flipped
    assert (blob_run / dynamics.DYNAMICS_PNG).read_bytes().startswith(b"\x89PNG")
    history = dynamics.load_history(blob_run)
    assert history.epochs.tolist() == list(range(1, 16)) and history.true_proba.shape == (15, len(rows))
    assert set(history.split.tolist()) == {"train", "val"}


def test_inspect_one_source_and_the_suspects(noisy_blobs, blob_run, capsys):
    _, flipped, truth = noisy_blobs
    source = sorted(flipped)[0]
    assert cli.main(["inspect", str(blob_run), "--id", source]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{source} (") and "suspect rank" in out and "region" in out
    assert "at every epoch:" in out and len([line for line in out.splitlines() if line.strip()[:2].strip().isdigit()]) >= 15
    assert cli.main(["inspect", str(blob_run), "--suspects", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 5 and lines[2].split()[0] == "1"
    flagged = [r["id"] for r in dynamics.read_summary(blob_run) if r["suspect"] == "1"]
    assert cli.main(["inspect", str(blob_run), "--suspects", "1000"]) == 0  # more than the run has: all the flagged ones
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"; all {len(flagged)}, by suspect score:") and [line.split()[1] for line in lines[2:]] == flagged


def test_inspect_an_unknown_id_is_one_line_and_exit_2(blob_run, capsys):
    assert cli.main(["inspect", str(blob_run), "--id", "NO_SUCH_SOURCE"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no source with id 'NO_SUCH_SOURCE'" in err


def test_inspect_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path), "--suspects", "3"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_a_visualised_run_shows_the_suspects_in_its_diagnosis_and_report(noisy_blobs, tmp_path):
    config = TrainConfig(data=str(noisy_blobs[0]), epochs=3, device="cpu", runs_dir=str(tmp_path),
                         viz=VizConfig(enabled=True, every=1, method="pca", train_samples=60, val_samples=30))
    run_dir = pipeline.train(config, announce=lambda line: None).run_dir
    top = dynamics.read_summary(run_dir)[0]["id"]
    assert (run_dir / dynamics.DYNAMICS_PNG).exists()
    assert "Label suspects:" in (run_dir / "diagnosis.txt").read_text()
    page = (run_dir / "report.html").read_text()
    assert "Training dynamics and label suspects" in page and top in page
    # the headline scores are the raw network's: the JSON and the page's header say so, as the log does
    evaluated = json.loads((run_dir / "final_metrics.json").read_text())["evaluated"]
    assert evaluated.endswith("on the validation split, raw network (argmax of the uncalibrated softmax)")
    assert f'<p class="note">Scores of the {html.escape(evaluated)}.</p>' in page
