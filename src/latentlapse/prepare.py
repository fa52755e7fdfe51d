"""From a config to training-ready arrays, with every input check done before anything is written.

Loads the built-in simulated set or ``--data``, applies the class scheme, splits stratified,
oversamples the training split, and decides the model kind and loss weights. Nothing here
touches the disk except reading; the messages it would print are collected and logged by the
caller after the run folder is announced.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlapse import rng
from latentlapse.config import TrainConfig
from latentlapse.data.balance import Oversampled, Split, balanced_sample_weights, oversample, stratified_split
from latentlapse.data.dataset import Dataset
from latentlapse.data.taxonomy import ClassScheme, apply_scheme, scheme
from latentlapse.errors import UsageError

log = logging.getLogger(__name__)

BUILTIN_SEED = 42  # the built-in set is `latentlapse simulate` with its default seed, whatever --seed is
# Catalogue columns that are strictly positive and span more than this ratio are fed as log10.
LOG_RANGE_RATIO = 100.0


@dataclass(frozen=True)
class Prepared:
    """Everything a run trains on, plus the facts its metadata records."""

    dataset: Dataset
    y: np.ndarray
    scheme: ClassScheme
    split: Split
    oversampled: Oversampled
    model_kind: str
    data_sha256: str
    alpha: np.ndarray
    sample_weights: np.ndarray | None
    log_mask: np.ndarray
    model_options: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def val_counts(self) -> np.ndarray:
        return np.bincount(self.y[self.split.val], minlength=self.scheme.n_classes)


def load_data(config: TrainConfig) -> tuple[Dataset, str]:
    """The data set and a checksum of its source (file bytes, or the simulated arrays)."""
    if config.data is None:
        from latentlapse.data.simulate import simulate_dataset

        dataset = simulate_dataset(seed=BUILTIN_SEED)
        digest = hashlib.sha256(dataset.X.tobytes() + "\n".join(dataset.labels).encode()).hexdigest()
        return dataset, digest
    from latentlapse.data.readers import load_dataset

    dataset = load_dataset(config.data, label_column=config.label_column, features=config.features, missing=config.missing)
    return dataset, file_sha256(Path(config.data))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def choose_model(config: TrainConfig, dataset: Dataset) -> str:
    """``cnn`` for spectra and ``mlp`` for catalogues under ``--model auto``; refuse a CNN on a table."""
    if config.model == "auto":
        return "cnn" if dataset.kind == "spectra" else "mlp"
    if config.model == "cnn" and dataset.kind != "spectra":
        raise UsageError(
            f"--model cnn needs spectra, but {dataset.source} is a catalogue of {dataset.n_features} features; "
            f"use --model mlp (or auto)"
        )
    return config.model


def loss_alpha(config: TrainConfig, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-class focal-loss weights for ``--alpha``.

    ``auto`` corrects only the imbalance the loss still sees after oversampling (and none under a
    balanced sampler), so the corrections never stack; ``inverse`` uses the original training
    frequencies; ``none`` is uniform.
    """
    from latentlapse.losses import class_alpha

    if config.alpha == "none" or (config.alpha == "auto" and config.sampler == "balanced"):
        return np.ones(len(before))
    return class_alpha(after if config.alpha == "auto" else before)


def stacked_corrections(config: TrainConfig) -> list[str]:
    """The imbalance corrections that are applied on top of each other (double-counting)."""
    active = []
    if config.oversample_target > 0:
        active.append(f"oversampling to {config.oversample_target:g} x the majority")
    if config.sampler == "balanced":
        active.append("a balanced sampler")
    if config.alpha == "inverse":
        active.append("inverse-frequency alpha")
    return active if len(active) >= 2 else []


def catalog_log_mask(X: np.ndarray) -> np.ndarray:
    """Columns to feed as log10: strictly positive and spanning more than ``LOG_RANGE_RATIO``."""
    low, high = X.min(axis=0), X.max(axis=0)
    return (low > 0) & (high > LOG_RANGE_RATIO * np.where(low > 0, low, 1.0))


def model_options(config: TrainConfig, dataset: Dataset, model_kind: str) -> dict:
    """What the catalogue model is built with: ensemble size and the hardness-ratio and colour
    column pairs (see :class:`latentlapse.model.CatalogEnsemble`); nothing for the CNN."""
    if model_kind != "mlp":
        return {}
    from latentlapse.model import derived_pairs

    return {"members": config.members, "derived": derived_pairs(dataset.feature_names)}


def prepare(config: TrainConfig) -> Prepared:
    """Load, label, split and oversample; raises InputError/UsageError before any write."""
    dataset, digest = load_data(config)
    labelled, y = apply_scheme(dataset, config.classes)
    split = stratified_split(y, config.val_split, rng.generator(config.seed, "split"))
    return prepare_split(config, labelled, y, split, digest)


def prepare_split(config: TrainConfig, labelled: Dataset, y: np.ndarray, split: Split, digest: str = "") -> Prepared:
    """Oversample the training rows of a given split and choose the model and loss weights.

    ``labelled`` and ``y`` are the data set after the class scheme; cross-validation calls this
    once per fold with its own split, :func:`prepare` with the run's stratified split.
    """
    classes = scheme(config.classes)
    model_kind = choose_model(config, labelled)
    train = labelled.subset(split.train)
    over = oversample(
        train.X, y[split.train], classes.n_classes, config.oversample_target, rng.generator(config.seed, "augment"),
        kind=labelled.kind, counts=train.counts, errors=train.errors,
    )
    weights = balanced_sample_weights(over.y, classes.n_classes) if config.sampler == "balanced" else None
    log_mask = catalog_log_mask(train.X) if labelled.kind == "catalog" else np.zeros(labelled.n_features, dtype=bool)
    prepared = Prepared(
        dataset=labelled, y=y, scheme=classes, split=split, oversampled=over, model_kind=model_kind,
        data_sha256=digest, alpha=loss_alpha(config, over.counts_before, over.counts_after),
        sample_weights=weights, log_mask=log_mask, model_options=model_options(config, labelled, model_kind),
    )
    prepared.messages.extend(_summary_lines(config, prepared))
    stacked = stacked_corrections(config)
    if stacked:
        prepared.warnings.append(
            "imbalance corrections stacked: " + " + ".join(stacked) + " each re-weight the rare classes, so "
            "together they over-correct; keep one (e.g. --alpha auto with --sampler shuffle)"
        )
    return prepared


def _summary_lines(config: TrainConfig, p: Prepared) -> list[str]:
    names = p.scheme.names
    width = max(len(n) for n in names)
    data = p.dataset
    lines = [
        f"data: {data.source} ({len(data)} labelled {data.kind} sources, {data.n_features} "
        f"{'bins' if data.kind == 'spectra' else 'features'}); model: {p.model_kind}",
        *(f"note: {note}" for note in data.notes),
        f"class counts, training split -> after oversampling to {config.oversample_target:g} x majority "
        f"(validation split):",
    ]
    for i, name in enumerate(names):
        lines.append(
            f"  {name:<{width}}  {p.oversampled.counts_before[i]:>5d} -> {p.oversampled.counts_after[i]:>5d}"
            f"   (val {p.val_counts[i]:>4d})"
        )
    lines.append("focal loss: gamma %g, alpha %s" % (config.focal_gamma, ", ".join(f"{a:.2f}" for a in p.alpha)))
    if p.log_mask.any():
        columns = [data.feature_names[i] for i in np.flatnonzero(p.log_mask)]
        lines.append(f"note: fed as log10 (positive, > {LOG_RANGE_RATIO:g}x range): {', '.join(columns)}")
    return lines
