"""Calibration: fitting lowers the NLL of an over-confident model; the scores match their definitions."""

import numpy as np
import pytest
from sklearn.metrics import log_loss

from latentlapse.xray import calibration


@pytest.fixture(scope="module")
def overconfident():
    """A 3-class model whose true log-odds are multiplied by 4: right most of the time, far too sure."""
    rng = np.random.default_rng(0)
    n, k = 3000, 3
    y = rng.integers(0, k, n)
    true_logits = rng.normal(0, 1, (n, k))
    true_logits[np.arange(n), y] += 1.2
    # draw labels from the true model, so its probabilities are calibrated by construction
    p_true = calibration.softmax(true_logits)
    y = np.array([rng.choice(k, p=row) for row in p_true])
    return true_logits * 4.0, y, p_true


def test_temperature_scaling_lowers_the_nll_of_an_overconfident_model(overconfident):
    logits, y, _ = overconfident
    fitted = calibration.fit(logits[:1500], y[:1500])
    raw = calibration.softmax(logits[1500:])
    calibrated = fitted.apply(logits[1500:])
    assert fitted.temperature == pytest.approx(4.0, rel=0.15)
    assert log_loss(y[1500:], calibrated) < log_loss(y[1500:], raw) - 0.3
    assert calibration.ece(calibrated, y[1500:]) < 0.04 < calibration.ece(raw, y[1500:])


def test_plain_temperature_scaling_keeps_every_prediction(overconfident):
    logits, y, _ = overconfident
    fitted = calibration.fit(logits, y, bias=False)
    assert fitted.bias == (0.0, 0.0, 0.0)
    assert np.array_equal(fitted.apply(logits).argmax(axis=1), logits.argmax(axis=1))


def test_bias_moves_the_priors_to_the_held_out_frequencies():
    """A model that believes in balanced classes, scored on rows that are 80 % class 0."""
    rng = np.random.default_rng(1)
    y = (rng.random(4000) > 0.8).astype(int)
    logits = np.zeros((4000, 2))
    fitted = calibration.fit(logits, y)
    assert fitted.apply(logits)[:, 1].mean() == pytest.approx(y.mean(), abs=0.01)


def test_ece_of_a_hand_made_case():
    # two rows in bin (0.8, 0.867]: confidence 0.85, one right -> |0.5 - 0.85|; one row at 1.0 right -> 0
    proba = np.array([[0.85, 0.15], [0.15, 0.85], [1.0, 0.0]])
    y = np.array([0, 0, 0])
    assert calibration.ece(proba, y) == pytest.approx((2 * 0.35 + 0) / 3)
    per_class = calibration.classwise_ece(proba, y)
    # class 0: scores 0.85 (bin 13, outcome 1), 0.15 (bin 3, outcome 1), 1.0 (bin 15, outcome 1)
    assert per_class[0] == pytest.approx((0.15 + 0.85 + 0.0) / 3)


def test_scores_block_has_every_measure(overconfident):
    logits, y, _ = overconfident
    fitted = calibration.fit(logits, y)
    block = calibration.before_after(logits, y, fitted, ["a", "b", "c"], "test rows")
    assert set(block["before"]) == {"ece", "classwise_ece", "classwise_ece_mean", "brier", "nll"}
    assert block["after"]["nll"] < block["before"]["nll"] and block["after"]["brier"] < block["before"]["brier"]
    assert calibration.Calibration.from_dict(block) == fitted
