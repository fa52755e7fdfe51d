"""Film a small MLP learning scikit-learn's bundled digits (no download) with latentlapse.

    python examples/digits_pytorch.py --epochs 30      # -> runs/run_NNN with frames, GIF, report
"""

from __future__ import annotations

import argparse
import logging
from collections import OrderedDict
from contextlib import nullcontext

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from latentlapse import Timelapse, features


def make_model(seed: int) -> nn.Module:
    """64 -> 128 -> 32 -> 10, weights drawn from a seeded generator (no global RNG)."""
    with torch.device("meta"):
        model = nn.Sequential(OrderedDict(
            encoder=nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU()),
            head=nn.Linear(32, 10)))
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=5 ** 0.5, generator=generator)
            nn.init.zeros_(layer.bias)
    return model


def digits(seed: int):
    """The 1797 bundled 8x8 digits, scaled to [0, 1], split 80/20 with a seeded permutation."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = torch.tensor(X[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    cut = int(0.8 * len(y))
    return TensorDataset(X[:cut], y[:cut]), TensorDataset(X[cut:], y[cut:])


def main(runs_dir: str = "runs", epochs: int = 30, method: str = "tsne", every: int = 5, seed: int = 0,
         film: bool = True) -> nn.Module:
    """Train; with ``film`` a Timelapse records every epoch. Returns the trained model."""
    train_set, val_set = digits(seed)
    shuffled = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    train_eval, val_eval = DataLoader(train_set, batch_size=512), DataLoader(val_set, batch_size=512)
    model = make_model(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    names = [str(d) for d in range(10)]
    with Timelapse(runs_dir, class_names=names, epochs=epochs, method=method, every=every, seed=seed,
                   inputs=(train_set.tensors[0], val_set.tensors[0])) if film else nullcontext() as tl:
        for epoch in range(1, epochs + 1):
            model.train()
            for X, y in shuffled:
                optimizer.zero_grad()
                loss = loss_fn(model(X), y)
                loss.backward()
                optimizer.step()
            train, val = features(model, "encoder", train_eval), features(model, "encoder", val_eval)
            print(f"epoch {epoch}: val acc {np.mean(val.proba.argmax(1) == val.labels):.3f}")
            if tl is not None:
                tl.log_epoch(epoch, train=train, val=val, metrics={"lr": optimizer.param_groups[0]["lr"]})
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].replace("``", ""))
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--method", default="tsne", choices=("tsne", "umap", "pca"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(args.runs_dir, args.epochs, args.method)
