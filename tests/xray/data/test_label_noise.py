"""Label noise you can measure: exact counts, never the same class, the sidecar, bad fractions."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from latentlapse.xray import cli
from latentlapse.core import rng
from latentlapse.xray.data import label_noise, simulate
from latentlapse.xray.data.readers import load_dataset
from latentlapse.xray.data.taxonomy import scheme
from latentlapse.core.errors import UsageError


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.1, 0.37, 0.5])
def test_flips_are_exact_stratified_and_never_to_the_same_class(fraction):
    y = np.repeat([0, 1, 2, 3], [500, 230, 61, 9])
    noisy, flipped = label_noise.flip_labels(y, fraction, 4, rng.generator(3, "label_noise"))
    assert len(flipped) == round(fraction * len(y)) == int((noisy != y).sum())
    assert np.all(noisy[flipped] != y[flipped]) and set(noisy[flipped].tolist()) <= {0, 1, 2, 3}
    per_class = np.bincount(y[flipped], minlength=4)
    assert np.all(np.abs(per_class - fraction * np.bincount(y)) < 1)  # each class loses its share
    again, same = label_noise.flip_labels(y, fraction, 4, rng.generator(3, "label_noise"))
    assert np.array_equal(again, noisy) and np.array_equal(same, flipped)  # seeded


def test_every_other_class_is_a_target():
    y = np.zeros(3000, dtype=np.int64)
    noisy, flipped = label_noise.flip_labels(y, 0.5, 4, rng.generator(0, "label_noise"))
    assert set(np.unique(noisy[flipped]).tolist()) == {1, 2, 3}


@pytest.mark.parametrize("fraction", [-0.01, 0.51, 2.0])
def test_fractions_outside_zero_to_half_are_refused(fraction):
    with pytest.raises(UsageError, match="--label_noise must be between 0 and 0.5"):
        label_noise.flip_labels(np.zeros(10, dtype=np.int64), fraction, 4, rng.generator(0, "label_noise"))


def test_simulate_writes_noisy_labels_and_the_sidecar(tmp_path):
    out = tmp_path / "spectra.txt"
    assert cli.main(["simulate", "--out", str(out), "--n", "300", "--seed", "5", "--label_noise", "0.1", "--quiet"]) == 0
    sidecar = tmp_path / "spectra.label_noise.csv"
    assert label_noise.sidecar_path(out) == sidecar
    with open(sidecar, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30
    clean = simulate.simulate_dataset(n=300, seed=5)
    written = load_dataset(out)
    four = scheme(4)
    original = dict(zip(clean.ids, clean.labels))
    now = dict(zip(written.ids, written.labels))
    flipped = {row["id"] for row in rows}
    for row in rows:
        assert row["original_label"] == original[row["id"]] and row["noisy_label"] == now[row["id"]]
        assert four.class_of(row["original_label"]) != four.class_of(row["noisy_label"])
    assert all(now[i] == original[i] for i in original if i not in flipped)
    assert np.allclose(written.X, clean.X, atol=1e-6)  # only labels change


@pytest.mark.parametrize("value", ["0.6", "-0.1"])
def test_simulate_refuses_a_bad_fraction_with_one_line_and_exit_2(capsys, tmp_path, value):
    out = tmp_path / "spectra.txt"
    assert cli.main(["simulate", "--out", str(out), "--label_noise", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label_noise must be between 0 and 0.5" in err
    assert list(tmp_path.iterdir()) == []
