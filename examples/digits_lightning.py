"""The digits example with Lightning: ``TimelapseCallback`` films the latent space (no download).

    python examples/digits_lightning.py --epochs 30    # -> runs/run_NNN with frames, GIF, report
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from latentlapse.integrations.lightning import TimelapseCallback

sys.path.insert(0, str(Path(__file__).parent))
from digits_pytorch import digits, make_model  # noqa: E402  (the same data and model)


class DigitsModule(L.LightningModule):
    """The digits MLP with cross-entropy and Adam; its ``encoder`` is what the frames show."""

    def __init__(self, seed: int):
        super().__init__()
        self.net = make_model(seed)
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main(runs_dir: str = "runs", epochs: int = 30, method: str = "tsne", every: int = 5, seed: int = 0) -> Path:
    """Fit with the callback; returns the run folder."""
    train_set, val_set = digits(seed)
    shuffled = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val_set, batch_size=512)
    film = TimelapseCallback(runs_dir, module="net.encoder", class_names=[str(d) for d in range(10)],
                             train_loader=DataLoader(train_set, batch_size=512), method=method, every=every,
                             seed=seed, inputs=(train_set.tensors[0], val_set.tensors[0]))
    trainer = L.Trainer(max_epochs=epochs, callbacks=[film], accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(DigitsModule(seed), shuffled, val_loader)
    return film.run_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].replace("``", ""))
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--method", default="tsne", choices=("tsne", "umap", "pca"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(args.runs_dir, args.epochs, args.method)
