"""Classify sources with a trained checkpoint: ``latentlapse predict``.

The network runs over the rows in fixed-size chunks, so memory for activations stays bounded
however many sources (e.g. the ~58,000 unlabelled spectra of a survey) the file holds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlapse import checkpoints
from latentlapse.data.dataset import Dataset
from latentlapse.data.taxonomy import scheme
from latentlapse.errors import InputError, UsageError
from latentlapse.results import write_predictions

log = logging.getLogger(__name__)

OUT_SUFFIXES = (".csv", ".json")


def align_features(dataset: Dataset, payload: dict, data_path: str) -> np.ndarray:
    """Spectra as the model expects them: the same number of bins."""
    expected = payload["model_spec"]["n_features"]
    kind = payload["data"]["kind"]
    if dataset.kind != kind:
        raise InputError(f"{data_path}: holds {dataset.kind} data, but the checkpoint's model was trained on {kind}")
    if dataset.n_features != expected:
        raise InputError(f"{data_path}: spectra have {dataset.n_features} bins, the model expects {expected}; "
                         f"rebin them onto the same grid")
    return dataset.X


def inputs_of_file(payload: dict, data: str, label_column: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, ids and labels of the sources of ``data`` for a checkpoint's model.

    A catalogue is read through the checkpoint's feature schema (only its columns, its types,
    the training split's medians), so each source's inputs depend on that source alone.
    """
    from latentlapse.data.readers import load_dataset

    if payload["data"]["kind"] == "catalog":
        from latentlapse.data.catalog_input import read_with_schema

        schema = checkpoint_schema(payload)
        rows = read_with_schema(data, schema, label_column)
        return schema.transform(rows.raw), rows.ids, rows.labels
    dataset = load_dataset(data, label_column=label_column)
    for note in dataset.notes:  # e.g. PHA channels left out for their QUALITY flags
        log.info("note: %s", note)
    return align_features(dataset, payload, data), dataset.ids, dataset.labels


def checkpoint_schema(payload: dict):
    """The feature schema a catalogue checkpoint carries; older checkpoints had none."""
    from latentlapse.data.schema import from_checkpoint

    schema = from_checkpoint(payload)
    if schema is None:
        raise InputError(f"the checkpoint (of {payload.get('run_dir', 'a run')}) was saved before catalogue models "
                         f"carried a feature schema; "
                         f"retrain the model with this version of latentlapse")
    return schema


def predict_logits(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of ``X``, ``batch_size`` rows at a time, in eval mode on the CPU."""
    import torch

    out = np.empty((len(X), model.head.out_features), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size]))
            out[start:start + batch_size] = model(chunk).numpy()
    return out


def check_out_suffix(out: str) -> None:
    """UsageError (exit 2) unless ``out`` ends in a format the predictions can be written in."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUT_SUFFIXES:
        shown = f"'{suffix}'" if suffix else "no suffix"
        raise UsageError(f"--out {out}: {shown} is not a predictions format; end the name in "
                         f"{' or '.join(OUT_SUFFIXES)}")


def predict_proba(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Raw (uncalibrated) class probabilities of ``X``, ``batch_size`` rows at a time."""
    from latentlapse.calibration import softmax

    return softmax(predict_logits(model, X, batch_size)).astype(np.float32)


def predict_file(checkpoint: str, data: str, out: str, batch_size: int = 4096, priors: str = "balanced",
                 uncalibrated: bool = False) -> str:
    """Write one row per source of ``data`` (id, true class when labelled, prediction,
    probabilities) to ``out``; returns a one-line summary.

    Probabilities are calibrated (unless ``uncalibrated``) and re-weighted to ``priors``
    (``train``, ``balanced`` or ``NAME=VALUE,...``; see :mod:`latentlapse.priors`).
    """
    from latentlapse.config import TrainConfig
    from latentlapse.operating import from_checkpoint

    if batch_size < 1:
        raise InputError(f"--batch_size must be at least 1, got {batch_size}")
    check_out_suffix(out)
    payload = checkpoints.load(checkpoint)
    point = from_checkpoint(payload, priors, uncalibrated)
    config = TrainConfig.from_dict(payload["config"])
    X, ids, labels = inputs_of_file(payload, data, config.label_column)
    model = checkpoints.model_from_checkpoint(payload)
    proba = point.proba(predict_logits(model, X, batch_size))
    log.info("probabilities: %s", point.describe())
    names = payload["class_names"]
    y_true = scheme(len(names)).encode(labels)
    path = write_predictions(Path(out), ids, y_true, proba, names)
    counts = np.bincount(proba.argmax(axis=1), minlength=len(names))
    summary = ", ".join(f"{name} {count}" for name, count in zip(names, counts))
    return f"{len(ids)} sources classified -> {path} ({summary})"
