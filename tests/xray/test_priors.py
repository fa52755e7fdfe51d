"""Prior re-weighting (Saerens et al. 2002): exact on a hand-made case; --priors parsing."""

import numpy as np
import pytest

from latentlapse.xray import priors
from latentlapse.core.errors import UsageError


def test_reweighting_is_exact_on_a_hand_made_case():
    # source priors (0.5, 0.25, 0.25), target (0.25, 0.25, 0.5): ratios 0.5, 1, 2
    proba = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    out = priors.reweight(proba, np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.25, 0.5]))
    # row 1: 0.25, 0.3, 0.4 (sum 0.95); row 2: 0.1, 0.2, 1.2 (sum 1.5)
    expected = np.array([[0.25 / 0.95, 0.3 / 0.95, 0.4 / 0.95], [0.1 / 1.5, 0.2 / 1.5, 1.2 / 1.5]])
    assert np.allclose(out, expected, rtol=0, atol=1e-12)


def test_same_priors_change_nothing():
    proba = np.array([[0.7, 0.2, 0.1]])
    assert np.allclose(priors.reweight(proba, np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])), proba)


def test_reweighting_a_bayes_posterior_gives_the_posterior_under_the_new_priors():
    likelihood = np.array([[0.3, 0.6], [0.9, 0.1]])  # p(x|k) of two sources
    source, target = np.array([0.8, 0.2]), np.array([0.3, 0.7])
    posterior = likelihood * source / (likelihood * source).sum(axis=1, keepdims=True)
    expected = likelihood * target / (likelihood * target).sum(axis=1, keepdims=True)
    assert np.allclose(priors.reweight(posterior, source, target), expected)


def test_parse_named_and_custom_priors():
    names = ["AGN", "HM/LM", "YSO/CV"]
    train = np.array([0.5, 0.3, 0.2])
    assert priors.parse("train", names, train)[1].tolist() == [0.5, 0.3, 0.2]
    assert np.allclose(priors.parse("balanced", names, train)[1], 1 / 3)
    label, vector = priors.parse("AGN=2,HM/LM=1,YSO/CV=1", names, train)
    assert label == "custom" and vector.tolist() == [0.5, 0.25, 0.25]
    assert priors.parse("agn=2,hm/lm=1,YSO/cv=1", names, train)[1].tolist() == [0.5, 0.25, 0.25]  # any case
    assert priors.parse("Balanced", names, train)[0] == "balanced"
    label, vector = priors.parse("model", names, train, model_priors=np.array([0.2, 0.2, 0.6]))
    assert label == "model" and vector.tolist() == [0.2, 0.2, 0.6]  # what the probabilities hold: no re-weighting


@pytest.mark.parametrize("text, message", [
    ("AGN=0.5,HM/LM=0.5", "missing YSO/CV"),
    ("AGN=0.5,QSO=0.2,HM/LM=0.1,YSO/CV=0.2", "unknown class 'QSO'"),
    ("AGN=0,HM/LM=0.5,YSO/CV=0.5", "AGN=0 must be a finite positive number"),
    ("AGN=inf,HM/LM=0.5,YSO/CV=0.5", "AGN=inf must be a finite positive number"),
    ("AGN=x,HM/LM=0.5,YSO/CV=0.5", "is not a number"),
    ("sky", "expected train, balanced, model or NAME=VALUE"),
])
def test_bad_priors_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        priors.parse(text, ["AGN", "HM/LM", "YSO/CV"], np.array([0.5, 0.3, 0.2]))


@pytest.mark.parametrize("sampler, alpha", [("shuffle", "sqrt"), ("balanced", "sqrt"), ("balanced", "inverse"),
                                            ("balanced", "auto"), ("shuffle", "none")])
def test_the_learned_priors_are_how_often_the_loss_sees_a_class_times_its_weight(sampler, alpha):
    """Under a balanced sampler the loss weights still act: the stored 'model' priors were uniform
    whatever the weights, so re-weighting the raw network started from the wrong priors."""
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.prepare import learned_priors, loss_alpha

    config = TrainConfig(sampler=sampler, alpha=alpha, oversample_target=0.0)
    counts = np.array([600.0, 250.0, 100.0, 50.0])
    weights = loss_alpha(config, counts, counts)
    seen = np.ones(4) if sampler == "balanced" else counts
    expected = seen * weights / np.sum(seen * weights)
    np.testing.assert_allclose(learned_priors(config, counts, weights), expected)
    uniform = np.allclose(learned_priors(config, counts, weights), 0.25)
    assert uniform == (sampler == "balanced" and alpha == "auto")


def test_a_balanced_sampler_with_square_root_weights_is_named_as_stacked():
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.prepare import stacked_corrections

    assert stacked_corrections(TrainConfig(sampler="balanced", alpha="sqrt", oversample_target=0.0)) == [
        "a balanced sampler", "square-root alpha"]
    assert stacked_corrections(TrainConfig(sampler="shuffle", alpha="sqrt", oversample_target=0.0)) == []


def test_a_class_without_training_sources_keeps_probability_zero_instead_of_nan():
    """A scheme class absent from training has prior 0: dividing by it made every probability NaN
    and every source that class."""
    proba = np.array([[0.7, 0.3, 0.0], [0.2, 0.8, 0.0]])
    out = priors.reweight(proba, np.array([0.6, 0.4, 0.0]), np.full(3, 1 / 3))
    assert np.isfinite(out).all() and np.allclose(out.sum(axis=1), 1) and (out[:, 2] == 0).all()
    assert out.argmax(axis=1).tolist() == [0, 1]


def test_a_checkpoint_without_training_sources_of_a_class_says_so(caplog):
    from latentlapse.xray.operating import from_checkpoint

    payload = {"class_names": ["AGN", "HM/LM", "NS"], "model_spec": {"n_classes": 3},
               "priors": {"train": [0.6, 0.4, 0.0], "model": [0.5, 0.5, 0.0]}}
    with caplog.at_level("WARNING", logger="latentlapse"):
        point = from_checkpoint(payload, "balanced", uncalibrated=True)
    assert "the model had no training source of NS: its probability is 0 at any --priors" in caplog.messages
    assert np.isfinite(point.proba(np.array([[1.0, 0.5, 2.0]]))).all()
