"""``--refit``: once the validation split has scored and calibrated a run, the model is trained again
on every labelled source and saved as best.pt; the run's scores stay those of the model before it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import torch

from latentlapse.core.errors import UsageError
from latentlapse.xray import checkpoints, experiment, pipeline
from latentlapse.xray.config import TrainConfig, VizConfig
from latentlapse.xray.data.balance import Split, stratified_split
from latentlapse.core import rng
from latentlapse.xray.prepare import for_refit, learned_priors, prepare, prepare_split
from latentlapse.xray.training import Trainer


@pytest.fixture
def mlp_config(tiny_spectra, tmp_path):
    """The catalogue model's recipe (one-cycle, last epoch kept, refit by default) on the tiny spectra."""
    return TrainConfig(data=str(tiny_spectra), model="mlp", members=1, epochs=2, device="cpu", threads=1,
                       runs_dir=str(tmp_path / "runs"), viz=VizConfig(enabled=False))


def _weights(payload: dict) -> dict:
    return payload["trainer"]["model"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_refit_is_the_catalogue_models_default_where_the_last_epoch_is_kept():
    assert TrainConfig().for_model("mlp").refit is True
    assert TrainConfig().for_model("cnn").refit is False
    assert TrainConfig(schedule="plateau").for_model("mlp").refit is False  # the validation split picks the epoch
    assert TrainConfig(refit=False).for_model("mlp").refit is False
    assert TrainConfig(refit=True, schedule="onecycle").for_model("cnn").refit is True
    with pytest.raises(UsageError, match="--refit retrains for all --epochs.*--schedule onecycle"):
        TrainConfig(refit=True).for_model("cnn")
    stored = TrainConfig().to_dict()
    del stored["refit"]  # a run or checkpoint written before the setting existed trained without it
    assert TrainConfig.from_dict(stored).refit is False


def test_for_refit_trains_on_every_labelled_row(mlp_config):
    prepared = prepare(mlp_config)
    again = for_refit(prepared)
    p = prepared.split
    assert np.array_equal(again.split.train, np.sort(np.concatenate((p.train, p.val))))
    assert np.array_equal(again.split.val, p.val)
    counts = np.bincount(prepared.y, minlength=prepared.scheme.n_classes)
    assert np.array_equal(again.oversampled.counts_before, counts)
    assert again.model_options == prepared.model_options and again.messages == []


def test_for_refit_fits_a_catalogues_schema_on_every_labelled_row(tmp_path):
    """Imputation medians and missing-value indicators from all rows: a gap only in the validation
    split gets its indicator in the refit."""
    rows = ["name,Fs,Gmag,label"]
    for i in range(40):
        rows.append(f"S{i},{1e-14 * (1 + i)},{12 + i % 7},{'AGN' if i % 2 else 'LM-STAR'}")
    data = tmp_path / "cat.csv"
    data.write_text("\n".join(rows) + "\n")
    config = TrainConfig(data=str(data), classes=2, epochs=2, members=1, val_split=0.25)
    prepared = prepare(config)
    val_row = int(prepared.split.val[0])
    lines = data.read_text().splitlines()
    name, fs, _, label = lines[val_row + 1].split(",")
    lines[val_row + 1] = f"{name},{fs},,{label}"  # Gmag missing in one validation source only
    data.write_text("\n".join(lines) + "\n")
    prepared = prepare(config)
    assert prepared.schema.indicators == ()
    again = for_refit(prepared)
    assert again.schema.indicators == ("Gmag",)
    values = np.array([float(line.split(",")[2]) for line in lines[1:] if line.split(",")[2]])
    assert again.schema.medians[again.schema.columns.index("Gmag")] == pytest.approx(np.median(values))
    assert again.dataset.n_features == prepared.dataset.n_features + 1


def test_a_run_scores_the_model_before_the_refit_and_saves_the_refitted_one(mlp_config):
    result = pipeline.train(mlp_config, announce=lambda line: None)
    assert (result.status, result.exit_code) == ("completed", 0)
    best, last = checkpoints.load(result.run_dir / "best.pt"), checkpoints.load(result.run_dir / "last.pt")
    prepared = prepare(mlp_config)
    n = len(prepared.y)
    assert best["refit"]["completed"] and best["refit"]["sources"] == n and best["refit"]["epochs"] == 2
    assert not _same_weights(_weights(best), _weights(last))
    assert best["calibration"]["temperature"] > 0
    # the calibration's priors stay the training split's (it was fitted there); the raw network's are the refit's
    train_counts = np.bincount(prepared.y[prepared.split.train], minlength=4)
    assert np.allclose(best["priors"]["train"], train_counts / train_counts.sum())
    refitted = for_refit(prepared)
    expected = learned_priors(refitted.config, refitted.oversampled.counts_after, refitted.alpha)
    assert np.allclose(best["priors"]["model"], expected)
    assert best["trainer"]["history"] == []  # the refit's validation scores were of training rows
    # the run's headline is last.pt's model (the last epoch, kept) on the validation split
    metrics = json.loads((result.run_dir / "final_metrics.json").read_text())
    model = checkpoints.model_from_checkpoint(last)
    with torch.no_grad():
        pred = model(torch.as_tensor(prepared.dataset.X[prepared.split.val])).argmax(dim=1).numpy()
    assert metrics["acc"] == pytest.approx(float(np.mean(pred == prepared.y[prepared.split.val])))
    assert metrics["refit"]["sources"] == n
    assert "Refit: best.pt was then trained again on all" in (result.run_dir / "classification_report.txt").read_text()
    # the refitted model is the one trained on all rows: the same as training it here from the same seeds
    torch.manual_seed(0)  # global state must not matter
    again, _ = experiment.refit(prepared)
    assert _same_weights(_weights(best), again.model.state_dict())


def test_no_refit_keeps_the_last_epoch_as_best_pt(mlp_config):
    result = pipeline.train(dataclasses.replace(mlp_config, refit=False), announce=lambda line: None)
    best, last = checkpoints.load(result.run_dir / "best.pt"), checkpoints.load(result.run_dir / "last.pt")
    assert "refit" not in best and _same_weights(_weights(best), _weights(last))
    assert "refit" not in json.loads((result.run_dir / "final_metrics.json").read_text())


def test_ctrl_c_during_the_refit_stops_it_alone(mlp_config, monkeypatch, logs):
    """A real SIGINT in the refit's second epoch: the run still completes, best.pt stays the
    calibrated model the run scored (last.pt's weights), and the record says the refit stopped."""
    real_epoch = Trainer._train_one_epoch

    def epoch_with_ctrl_c(self, epoch):
        if not self.options.log_epochs and epoch == 2:  # the refit's loop logs no line per epoch
            os.kill(os.getpid(), signal.SIGINT)
        return real_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "_train_one_epoch", epoch_with_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = pipeline.train(mlp_config, announce=lambda line: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (result.status, result.exit_code) == ("completed", 0)
    best, last = checkpoints.load(result.run_dir / "best.pt"), checkpoints.load(result.run_dir / "last.pt")
    assert "refit" not in best and "calibration" in best and _same_weights(_weights(best), _weights(last))
    metrics = json.loads((result.run_dir / "final_metrics.json").read_text())
    assert metrics["refit"]["completed"] is False
    assert "refit stopped: best.pt stays the model trained on the training split" in logs.text


def test_cv_scores_the_refitted_model(mlp_config):
    """A fold's held-out rows are scored by the model trained on all of the fold's training rows."""
    prepared = prepare(mlp_config)
    labelled_y = prepared.y
    labelled = prepared.dataset  # spectra: the model's inputs are the rows as read
    order = np.random.default_rng(0).permutation(len(labelled_y))
    train_idx, test_idx = np.sort(order[:60]), np.sort(order[60:])
    config = dataclasses.replace(mlp_config, epochs=2)
    result = experiment.fit_on_split(config, labelled, labelled_y, train_idx, test_idx)
    inner = stratified_split(labelled_y[train_idx], config.val_split, rng.generator(config.seed, "split"))
    split = Split(train=train_idx[inner.train], val=train_idx[inner.val])
    refitted, inputs = experiment.refit(prepare_split(config, labelled, labelled_y, split))
    assert np.allclose(result.logits, refitted.predict_logits(inputs.dataset.X[test_idx]), atol=1e-5)
    plain = experiment.fit_on_split(dataclasses.replace(config, refit=False), labelled, labelled_y, train_idx, test_idx)
    assert not np.allclose(result.logits, plain.logits, atol=1e-3)


def test_a_refit_that_fails_only_warns_and_the_run_completes(mlp_config, monkeypatch, logs):
    """A refit's error (here a full disk as it saves best.pt) costs the refit alone: the run's
    results are written, best.pt stays the scored model, and the record names the error."""
    real_save = checkpoints.save

    def save(path, payload):
        if "refit" in payload:
            raise OSError(28, "No space left on device")
        return real_save(path, payload)

    monkeypatch.setattr(checkpoints, "save", save)
    result = pipeline.train(mlp_config, announce=lambda line: None)
    assert (result.status, result.exit_code) == ("completed", 0)
    best, last = checkpoints.load(result.run_dir / "best.pt"), checkpoints.load(result.run_dir / "last.pt")
    assert "refit" not in best and "calibration" in best and _same_weights(_weights(best), _weights(last))
    record = json.loads((result.run_dir / "final_metrics.json").read_text())["refit"]
    assert record["completed"] is False and "No space left on device" in record["error"]
    assert "Refit: failed (OSError" in (result.run_dir / "classification_report.txt").read_text()
    assert "refit failed (OSError: [Errno 28] No space left on device)" in logs.text
