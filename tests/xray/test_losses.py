import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentlapse.xray.losses import FocalLoss, class_alpha


def _batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 4, generator=generator) * 3
    target = torch.randint(0, 4, (32,), generator=generator)
    return logits, target


def test_gamma_zero_equals_alpha_weighted_cross_entropy():
    logits, target = _batch()
    alpha = np.array([0.5, 1.0, 2.0, 4.0])
    loss = FocalLoss(alpha, gamma=0.0)(logits, target)
    weights = torch.tensor(alpha / alpha.mean(), dtype=torch.float32)
    expected = (F.cross_entropy(logits, target, reduction="none") * weights[target]).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_focal_term_down_weights_easy_examples():
    easy = torch.tensor([[10.0, 0.0]])
    hard = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([0])
    focal = FocalLoss(np.ones(2), gamma=2.0)
    ce = FocalLoss(np.ones(2), gamma=0.0)
    assert focal(easy, target) / ce(easy, target) < 1e-6
    assert torch.isclose(focal(hard, target) / ce(hard, target), torch.tensor(0.25))


def test_finite_at_extreme_logits_with_finite_gradients():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    target = torch.tensor([1, 1])
    loss = FocalLoss(np.ones(3), gamma=2.0)(logits, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(torch.isfinite(logits.grad))
    assert loss.item() == pytest.approx(1e4, rel=1e-3)


def test_alpha_is_a_per_class_vector_not_a_background_scalar():
    logits, target = _batch()
    uniform = FocalLoss(np.ones(4), gamma=2.0)(logits, target)
    scaled = FocalLoss(np.full(4, 7.0), gamma=2.0)(logits, target)
    assert torch.allclose(uniform, scaled)
    with pytest.raises(ValueError, match="1-D vector of positive per-class weights"):
        FocalLoss(np.array(0.25), gamma=2.0)


def test_class_alpha_is_inverse_frequency_normalised_to_mean_one():
    alpha = class_alpha(np.array([100, 50, 25, 25]))
    assert np.allclose(alpha, np.array([0.01, 0.02, 0.04, 0.04]) / 0.0275)
    assert alpha.mean() == pytest.approx(1.0)
