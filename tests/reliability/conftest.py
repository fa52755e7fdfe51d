"""Fixtures of the reliability tests: small data, quick configs, fault hooks (helpers in support.py).

Everything trains on 300 simulated spectra for a few epochs on the CPU, so a whole run takes a
second or two; the time-lapse uses PCA and small samples for the same reason.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from latentlapse.xray.config import TrainConfig, VizConfig

from .support import BatchHooks


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train with one thread: tiny models gain nothing from more, and on a busy two-core machine
    OpenMP threads waiting on each other make a one-second run take thirty."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_spectra(tmp_path_factory) -> Path:
    """300 simulated spectra in the whitespace text format (written once per session)."""
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    path = tmp_path_factory.mktemp("data") / "spectra.txt"
    write_dataset(path, simulate_dataset(n=300, seed=1))
    return path


@pytest.fixture
def make_config(tiny_spectra, tmp_path):
    """``make_config(epochs=4, viz=False, **changes)``: a CPU config on the tiny data under tmp_path/runs."""

    def make(epochs: int = 4, viz: bool = False, **changes) -> TrainConfig:
        viz_config = VizConfig(enabled=viz, every=1, method="pca", train_samples=50, val_samples=30)
        config = TrainConfig(data=str(tiny_spectra), epochs=epochs, device="cpu", threads=1, runs_dir=str(tmp_path / "runs"),
                             viz=viz_config)
        return dataclasses.replace(config, **changes)

    return make


@pytest.fixture
def logs(caplog, monkeypatch):
    """caplog that also sees ``latentlapse`` records after an in-process CLI call stopped their propagation."""
    import logging

    monkeypatch.setattr(logging.getLogger("latentlapse"), "propagate", True)
    monkeypatch.setattr(logging.getLogger("latentlapse"), "handlers", [])
    caplog.set_level(logging.INFO, logger="latentlapse")
    return caplog


@pytest.fixture
def batch_hooks(monkeypatch) -> BatchHooks:
    """Set ``batch_hooks.actions[(epoch, batch)] = "interrupt" | "nan"`` before a run."""
    return BatchHooks(monkeypatch)
