"""Classify sources with a trained checkpoint: ``latentlapse predict``.

The file is read, classified and written a piece at a time (:mod:`latentlapse.data.chunks`,
:mod:`latentlapse.prediction_writer`), so memory stays bounded however many sources a survey's
file holds; the network runs over each piece in batches of ``--batch_size`` rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlapse import checkpoints
from latentlapse.data.dataset import Dataset
from latentlapse.data.taxonomy import scheme
from latentlapse.errors import InputError

log = logging.getLogger(__name__)


def align_features(dataset: Dataset, payload: dict, data_path: str) -> np.ndarray:
    """The data's columns in the order the model was trained on.

    Spectra must have the same number of bins. Catalogue columns are matched by name; a
    ``<col>_missing`` indicator the file does not have means nothing was missing there (0).
    """
    expected = payload["model_spec"]["n_features"]
    kind = payload["data"]["kind"]
    if dataset.kind != kind:
        raise InputError(f"{data_path}: holds {dataset.kind} data, but the checkpoint's model was trained on {kind}")
    if kind == "spectra":
        if dataset.n_features != expected:
            raise InputError(f"{data_path}: spectra have {dataset.n_features} bins, the model expects {expected}; "
                             f"rebin them onto the same grid")
        return dataset.X
    names = payload["feature_names"]
    index = {name: i for i, name in enumerate(dataset.feature_names)}
    absent = [n for n in names if n not in index and not n.endswith("_missing")]
    if absent:
        raise InputError(f"{data_path}: columns the model needs are missing: {', '.join(absent[:8])}"
                         f"{', ...' if len(absent) > 8 else ''}")
    X = np.zeros((len(dataset), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        if name in index:
            X[:, j] = dataset.X[:, index[name]]
    return X


def predict_proba(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Class probabilities of ``X``, ``batch_size`` rows at a time, in eval mode on the CPU."""
    import torch

    out = np.empty((len(X), model.head.out_features), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size]))
            out[start:start + batch_size] = torch.softmax(model(chunk), dim=1).numpy()
    return out


def predict_file(checkpoint: str, data: str, out: str, batch_size: int = 4096) -> str:
    """Write one row per source of ``data`` (id, true class when labelled, prediction,
    probabilities) to ``out``, a piece of the file at a time; returns a one-line summary."""
    from latentlapse.config import TrainConfig
    from latentlapse.data.chunks import iter_chunks
    from latentlapse.prediction_writer import write_stream

    if batch_size < 1:
        raise InputError(f"--batch_size must be at least 1, got {batch_size}")
    payload = checkpoints.load(checkpoint)
    config = TrainConfig.from_dict(payload["config"])
    model = checkpoints.model_from_checkpoint(payload)
    names = payload["class_names"]
    encode = scheme(len(names)).encode

    def pieces():
        for piece in iter_chunks(data, label_column=config.label_column, missing=config.missing):
            X = align_features(piece, payload, data)
            yield piece.ids, encode(piece.labels), predict_proba(model, X, batch_size)

    path, n, counts = write_stream(Path(out), pieces(), names)
    summary = ", ".join(f"{name} {count}" for name, count in zip(names, counts))
    return f"{n} sources classified -> {path} ({summary})"
