"""Multi-class softmax focal loss with a per-class alpha vector.

``FL = -alpha_y (1 - p_y)^gamma log p_y``, computed from log-softmax so it stays finite for
logits of any size. gamma = 0 is exactly alpha-weighted cross-entropy. Alpha is always a
vector with one weight per class: a scalar alpha (as some libraries take it) would silently
treat class 0 as "background".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FocalLoss(nn.Module):
    """Mean focal loss over a batch.

    Parameters
    ----------
    alpha : per-class weights, shape (n_classes,); normalised here to mean 1 so the loss scale
        does not depend on the number of classes.
    gamma : focusing parameter; 0 gives weighted cross-entropy.
    """

    def __init__(self, alpha: np.ndarray | torch.Tensor, gamma: float = 2.0):
        super().__init__()
        alpha = torch.as_tensor(np.asarray(alpha, dtype=np.float32))
        if alpha.ndim != 1 or not torch.all(alpha > 0):
            raise ValueError("alpha must be a 1-D vector of positive per-class weights")
        self.register_buffer("alpha", alpha / alpha.mean())
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -self.alpha[target] * log_p
        if self.gamma:
            # (1 - p)^gamma from log p; clamp keeps the base non-negative under rounding.
            loss = loss * (-torch.expm1(log_p)).clamp(min=0.0).pow(self.gamma)
        return loss.mean()


def class_alpha(class_counts: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency weights ``count**-power`` normalised to mean 1 (an empty class gets
    weight 0 -> 1e-6); ``power=0.5`` is the square-root inverse frequency."""
    counts = np.asarray(class_counts, dtype=np.float64)
    alpha = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0) ** power, 0.0)
    alpha = alpha / alpha[counts > 0].mean()
    return np.maximum(alpha, 1e-6)
