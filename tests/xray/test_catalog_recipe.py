"""The catalogue model's own defaults (no oversampling, square-root class weights, AdamW, one-cycle
schedule keeping the last epoch, sky position as Fourier features) and the spectra CNN's, unchanged."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from latentlapse.xray import calibration
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.balance import stratified_split
from latentlapse.xray.data.simulate import simulate_dataset
from latentlapse.xray.data.taxonomy import apply_scheme
from latentlapse.xray.experiment import build_trainer
from latentlapse.xray.model import SKY_FREQUENCIES, build_model, derived_pairs
from latentlapse.xray.prepare import prepare, prepare_split


def _catalogue(path, n: int = 90):
    """AGN and LM stars (2:1), X-ray flux, a magnitude and a sky position."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "ra", "dec", "Fs", "Fh", "Gmag", "label"])
        for i in range(n):
            agn = i % 3 != 0
            writer.writerow([f"S{i}", f"{rng.uniform(0, 360):.4f}", f"{rng.uniform(-60, 60):.4f}",
                             f"{10 ** rng.normal(-13 if agn else -14.5, 0.3):.4g}",
                             f"{10 ** rng.normal(-13.2 if agn else -15, 0.3):.4g}",
                             f"{rng.normal(20 if agn else 14, 1):.3f}", "AGN" if agn else "LM-STAR"])
    return path


def test_catalogue_trains_with_its_own_defaults_and_keeps_the_last_epoch(tmp_path):
    data = _catalogue(tmp_path / "cat.csv")
    prepared = prepare(TrainConfig(classes=2, epochs=4, batch_size=16, data=str(data), features=("ra", "dec", "Fs", "Fh", "Gmag"),
                                   members=2))
    c = prepared.config
    assert (c.epochs, c.lr, c.weight_decay, c.oversample_target, c.focal_gamma) == (4, 3e-3, 1e-3, 0.0, 0.0)
    assert (c.alpha, c.optimizer, c.schedule) == ("sqrt", "adamw", "onecycle")
    over = prepared.oversampled
    assert np.array_equal(over.counts_after, over.counts_before)  # no oversampling
    weights = 1 / np.sqrt(over.counts_before)
    assert np.allclose(prepared.alpha, weights / weights.mean())
    trainer = build_trainer(prepared)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.OneCycleLR)
    trainer.fit()
    lrs = [row["lr"] for row in trainer.history.rows]
    assert trainer.best_epoch == 4 and trainer.options.select_by == "last"
    assert max(lrs) == pytest.approx(3e-3) and lrs[-1] < 3e-3 / 50  # warmed up to --lr, then annealed to ~0
    assert trainer.scheduler.last_epoch == trainer.scheduler.total_steps  # the cycle ends with the last batch


def test_spectra_cnn_keeps_its_defaults():
    dataset, y = apply_scheme(simulate_dataset(n=60, seed=3), 4)
    split = stratified_split(y, 0.25, np.random.default_rng(0))
    prepared = prepare_split(TrainConfig(classes=4, batch_size=32), dataset, y, split)
    c = prepared.config
    assert (c.epochs, c.lr, c.weight_decay, c.oversample_target, c.focal_gamma) == (100, 1e-3, 1e-4, 0.7, 2.0)
    assert (c.alpha, c.optimizer, c.schedule) == ("auto", "adam", "plateau")
    trainer = build_trainer(prepared)
    assert type(trainer.optimizer) is torch.optim.Adam
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert trainer.options.select_by == "val_balanced_acc"


def test_sky_position_becomes_fourier_features_of_the_unit_vector():
    names = ("Fs", "CSCv2_RA", "CSCv2_DEC", "Gmag")
    derived = derived_pairs(names)
    assert derived["sky"] == [[1, 2]] and "sky" not in derived_pairs(("Fs", "Gmag"))
    model = build_model("mlp", 4, 2, torch.Generator().manual_seed(0), members=1, derived=derived)
    x = torch.tensor([[1.0, 90.0, 30.0, 15.0]])
    out = model.derive(x)[0].double().numpy()
    unit = np.array([0.0, np.cos(np.pi / 6), 0.5])
    phase = (unit[:, None] * np.array(SKY_FREQUENCIES)).ravel()
    assert out.shape == (4 + 2 * phase.size,)
    assert np.allclose(out[4:], np.concatenate([np.sin(phase), np.cos(phase)]), atol=2e-3)


def test_ece_floor_is_what_a_calibrated_model_measures_and_shrinks_with_more_rows():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([4, 1, 1], size=4000)
    y = (rng.random(4000)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)  # labels drawn from the probabilities
    small = calibration.ece_floor(proba[:500], np.random.default_rng(2))
    large = calibration.ece_floor(proba, np.random.default_rng(2))
    assert large < small / 2
    assert calibration.ece(proba, y) == pytest.approx(large, abs=0.015)
    assert calibration.ece(np.roll(proba, 1, axis=1), y) > large + 0.1  # a miscalibrated model is far above it


def test_one_cycle_run_resumed_mid_way_ends_with_the_same_weights(tmp_path):
    from latentlapse.xray.loop_types import Callback

    data = _catalogue(tmp_path / "cat.csv")
    prepared = prepare(TrainConfig(classes=2, epochs=4, batch_size=16, data=str(data), members=1))

    class StopAfter(Callback):
        def on_epoch_end(self, trainer, result):
            if result.epoch == 2:
                raise KeyboardInterrupt

    whole = build_trainer(prepared)
    whole.fit()
    first = build_trainer(prepared, callbacks=[StopAfter()])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    state = first.state_dict()
    second = build_trainer(prepared)
    second.load_state_dict(state)
    second.fit()
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
