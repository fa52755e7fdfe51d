"""The networks: ``SpectrumCNN`` for spectra and ``CatalogMLP`` for catalogue features.

Both expose ``embed(x)`` — the penultimate-layer features the time-lapse draws — and ``head``,
the linear classifier on top, so ``model(x) == model.head(model.embed(x))``. The input scaling
fitted on the training split lives inside the model as buffers, so a checkpoint is
self-contained. Weights are initialised and dropout masks drawn from explicit generators: no
global RNG state is read or changed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

LATENT_DIM = 64


class InputScaler(nn.Module):
    """log10 of selected (strictly positive, wide-range) columns, then standardisation."""

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("log_mask", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def fit(self, X: np.ndarray, log_mask: np.ndarray | None = None) -> "InputScaler":
        """Set the statistics from the training rows (numpy, float32)."""
        from latentlapse.data.schema import scaling_statistics

        mask = np.zeros(X.shape[1], dtype=bool) if log_mask is None else np.asarray(log_mask, dtype=bool)
        mean, std = scaling_statistics(X, mask)
        return self.set_statistics(mask, mean, std)

    def set_statistics(self, log_mask, mean, std) -> "InputScaler":
        """Use given statistics, e.g. those a catalogue's feature schema learned on the training split."""
        self.log_mask.copy_(torch.as_tensor(np.asarray(log_mask, dtype=bool)))
        self.mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float64)).float())
        self.std.copy_(torch.as_tensor(np.asarray(std, dtype=np.float64)).float())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.log_mask, torch.log10(x.clamp(min=1e-30)), x)
        return (x - self.mean) / self.std


class SeededDropout(nn.Module):
    """Dropout whose masks come from the model's own generator instead of torch's global one."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)


class _Classifier(nn.Module):
    """Shared plumbing: input scaling, generator wiring, seeded initialisation."""

    scaler: InputScaler
    head: nn.Linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent features and logits from one pass (evaluation uses both)."""
        features = self.embed(x)
        return features, self.head(features)

    def set_dropout_generator(self, generator: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default initialisation, drawn from ``generator``."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in)
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1, pool: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool > 1:
        layers.append(nn.MaxPool1d(pool))
    return nn.Sequential(*layers)


class SpectrumCNN(_Classifier):
    """1-D CNN over a binned spectrum that downsamples early, where it is cheap.

    The first convolution (kernel 9, stride 4: 100 eV steps, about the pn resolution at 1 keV)
    brings 380 bins to 95 positions at once, so the wider layers run on short sequences and a
    spectrum costs ~2 MFLOP forward (the 64/128/256 full-resolution baseline: 34.6). A second
    input channel carries the (scaled) log energy of each bin, so that after global pooling the
    features still know *where* in energy a pattern sits (an Fe-L bump at 0.8 keV versus an Fe
    K line at 6.4 keV). Against the earlier stem (32 channels, stride 2 + pooling) this is ~35%
    faster per epoch at the same held-out balanced accuracy (0.78 over 4 seeds).
    """

    def __init__(self, n_bins: int, n_classes: int, channels: tuple[int, int, int] = (16, 48, 96),
                 latent_dim: int = LATENT_DIM, dropout: float = 0.3):
        super().__init__()
        c1, c2, c3 = channels
        self.scaler = InputScaler(n_bins)
        self.register_buffer("position", torch.linspace(-1.0, 1.0, n_bins))
        self.features = nn.Sequential(
            _conv_block(2, c1, kernel=9, stride=4, pool=1),
            _conv_block(c1, c2, kernel=5, pool=2),
            _conv_block(c2, c3, kernel=3, pool=1),
        )
        self.latent = nn.Sequential(SeededDropout(dropout), nn.Linear(2 * c3, latent_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(latent_dim, n_classes)
        self.head_dropout = SeededDropout(dropout / 2)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scaler(x)
        position = self.position.expand(x.shape[0], -1)
        h = self.features(torch.stack((x, position), dim=1))
        pooled = torch.cat((h.mean(dim=2), h.amax(dim=2)), dim=1)
        return self.latent(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_dropout(self.embed(x)))


class CatalogMLP(_Classifier):
    """A small MLP on standardised catalogue features (fluxes, hardness ratios, magnitudes)."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 128,
                 latent_dim: int = LATENT_DIM, dropout: float = 0.2):
        super().__init__()
        self.scaler = InputScaler(n_features)
        self.body = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            SeededDropout(dropout),
            nn.Linear(hidden, latent_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(latent_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.scaler(x))


def build_model(kind: str, n_features: int, n_classes: int, generator: torch.Generator) -> _Classifier:
    """Create a model with weights drawn from ``generator`` (constructed on the meta device, so
    PyTorch's own default initialisation never touches the global RNG)."""
    with torch.device("meta"):
        model = SpectrumCNN(n_features, n_classes) if kind == "cnn" else CatalogMLP(n_features, n_classes)
    model = model.to_empty(device="cpu")
    model.reset_parameters(generator)
    model.scaler.log_mask.zero_()
    model.scaler.mean.zero_()
    model.scaler.std.fill_(1.0)
    if isinstance(model, SpectrumCNN):
        model.position.copy_(torch.linspace(-1.0, 1.0, n_features))
    return model


def describe(model: nn.Module) -> dict[str, object]:
    """Name and parameter count, for the run metadata."""
    return {"name": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))}
