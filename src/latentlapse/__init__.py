"""latentlapse: watch a classifier learn — a time-lapse of its latent space, epoch by epoch.

For any PyTorch loop: :class:`Timelapse` and :func:`features` (docs/LIBRARY.md). The X-ray
application on top: :func:`train`, :class:`TrainConfig`, the data readers and the simulator.
The public surface is small; heavy modules (torch, matplotlib) load only when used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Dataset", "MissingExtraError", "RunFailed", "Timelapse", "TrainConfig", "VizConfig", "features",
           "load_dataset", "simulate_dataset", "train"]


def __getattr__(name: str):
    if name == "Timelapse":
        from latentlapse.core.timelapse.live import Timelapse

        return Timelapse
    if name == "features":
        from latentlapse.core.hooks import features

        return features
    if name in ("MissingExtraError", "RunFailed"):  # what Timelapse raises (docs/LIBRARY.md)
        from latentlapse.core import errors

        return getattr(errors, name)
    if name == "Dataset":
        from latentlapse.xray.data.dataset import Dataset

        return Dataset
    if name in ("TrainConfig", "VizConfig"):
        from latentlapse.xray import config

        return getattr(config, name)
    if name == "load_dataset":
        from latentlapse.xray.data.readers import load_dataset

        return load_dataset
    if name == "simulate_dataset":
        from latentlapse.xray.data.simulate import simulate_dataset

        return simulate_dataset
    if name == "train":
        from latentlapse.xray.pipeline import train

        return train
    raise AttributeError(f"module 'latentlapse' has no attribute {name!r}")
