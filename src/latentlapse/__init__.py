"""latentlapse: train a classifier of X-ray sources from their spectra and watch it learn.

The public surface is small; heavy modules (torch, matplotlib) load only when used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Dataset", "TrainConfig", "VizConfig", "load_dataset", "simulate_dataset", "train"]


def __getattr__(name: str):
    if name == "Dataset":
        from latentlapse.data.dataset import Dataset

        return Dataset
    if name in ("TrainConfig", "VizConfig"):
        from latentlapse import config

        return getattr(config, name)
    if name == "load_dataset":
        from latentlapse.data.readers import load_dataset

        return load_dataset
    if name == "simulate_dataset":
        from latentlapse.data.simulate import simulate_dataset

        return simulate_dataset
    if name == "train":
        from latentlapse.pipeline import train

        return train
    raise AttributeError(f"module 'latentlapse' has no attribute {name!r}")
