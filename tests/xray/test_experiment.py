"""fit_on_split: one cross-validation fold without a run folder."""

import numpy as np
import pytest

from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.balance import stratified_split
from latentlapse.xray.data.simulate import simulate_dataset
from latentlapse.xray.data.taxonomy import apply_scheme
from latentlapse.xray.experiment import fit_on_split


@pytest.fixture(scope="module")
def fold():
    dataset, y = apply_scheme(simulate_dataset(n=90, seed=3), 4)
    split = stratified_split(y, 0.25, np.random.default_rng(0))
    return dataset, y, split.train, split.val


def test_fold_scores_the_held_out_rows_with_the_best_epoch(fold):
    dataset, y, train, test = fold
    config = TrainConfig(classes=4, epochs=3, batch_size=32, seed=1)
    result = fit_on_split(config, dataset, y, train, test)
    assert result.proba.shape == (len(test), 4)
    assert np.allclose(result.proba.sum(axis=1), 1.0, atol=1e-5)
    assert result.epochs_run == 3 and 1 <= result.best_epoch <= 3
    assert sum(row["support"] for row in result.metrics["per_class"].values()) == len(test)
    assert result.metrics["acc"] == pytest.approx(np.mean(result.proba.argmax(axis=1) == y[test]))


def test_fold_is_deterministic_for_a_seed(fold):
    dataset, y, train, test = fold
    config = TrainConfig(classes=4, epochs=2, batch_size=32, seed=2)
    a = fit_on_split(config, dataset, y, train, test)
    b = fit_on_split(config, dataset, y, train, test)
    assert np.array_equal(a.proba, b.proba)
