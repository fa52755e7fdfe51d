"""TensorBoard export: the history as scalars and each frame's features as a projector embedding.

Written into ``RUN/tensorboard/`` with TensorBoard's own writer (``tensorboard.summary.Writer``
for scalars, the projector's files for embeddings), so people who already live in TensorBoard
find the run there. Needs the ``tensorboard`` extra; imported only when asked for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core.errors import MissingExtraError

BOARD_DIR = "tensorboard"


class Board:
    """One run's TensorBoard event file and projector embeddings."""

    def __init__(self, run_dir: str | Path, class_names: Sequence[str]):
        try:
            import tensorboard  # noqa: F401  (SummaryWriter needs it; say so in one line)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingExtraError("TensorBoard export needs the tensorboard package: pip install 'latentlapse[tensorboard]'") from None
        self.folder = Path(run_dir) / BOARD_DIR
        self.class_names = tuple(class_names)
        self._writer = SummaryWriter(log_dir=str(self.folder))

    def epoch(self, epoch: int, scores: Mapping[str, float]) -> None:
        """Each number of the epoch's history row as a scalar at step ``epoch``."""
        for name, value in scores.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                group = "loss" if name.endswith("loss") else "recall" if "recall" in name else "scores"
                self._writer.add_scalar(f"{group}/{name}", float(value), global_step=epoch)

    def embedding(self, epoch: int, features: np.ndarray, labels: np.ndarray, pred: np.ndarray,
                  ids: np.ndarray) -> None:
        """The frame sample's features at ``epoch`` with their id, class and prediction."""
        names = self.class_names
        metadata = [[str(i), names[int(y)], names[int(p)]] for i, y, p in zip(ids, labels, pred)]
        self._writer.add_embedding(np.asarray(features, dtype=np.float32), metadata=metadata,
                                   metadata_header=["id", "class", "prediction"], global_step=epoch,
                                   tag="validation_sample")

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
