"""From a config to training-ready arrays, with every input check done before anything is written.

Loads the built-in simulated set or ``--data``, applies the class scheme, splits stratified,
oversamples the training split, and decides the model kind and loss weights. Nothing here
touches the disk except reading; the messages it would print are collected and logged by the
caller after the run folder is announced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlapse.core import rng
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.balance import Oversampled, Split, balanced_sample_weights, oversample, stratified_split
from latentlapse.xray.data.catalog import DROP_NOTE
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.schema import FLAG, LOG_RANGE_RATIO, FeatureSchema, fit_schema, log10_notes
from latentlapse.xray.data.taxonomy import ClassScheme, apply_scheme, scheme
from latentlapse.core.errors import InputError, UsageError

log = logging.getLogger(__name__)

BUILTIN_SEED = 42  # the built-in set is `latentlapse simulate` with its default seed, whatever --seed is


@dataclass(frozen=True)
class Prepared:
    """Everything a run trains on, plus the facts its metadata records. ``config`` is the run's
    config with the model's defaults filled in (:meth:`TrainConfig.for_model`): what trains.

    ``dataset`` holds the model's inputs: for a catalogue, the schema's columns with the training
    medians imputed, then the ``_missing`` indicators. ``values_read`` holds those columns as the
    file gave them, NaN where it had no value (for the report's explorer); None for spectra.
    """

    config: TrainConfig
    dataset: Dataset
    y: np.ndarray
    scheme: ClassScheme
    split: Split
    oversampled: Oversampled
    model_kind: str
    data_sha256: str
    alpha: np.ndarray
    sample_weights: np.ndarray | None
    schema: FeatureSchema | None = None
    model_options: dict = field(default_factory=dict)
    values_read: np.ndarray | None = None
    raw: Dataset | None = None  # the labelled rows as read, before the schema: what a refit fits it on
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def val_counts(self) -> np.ndarray:
        return np.bincount(self.y[self.split.val], minlength=self.scheme.n_classes)


def load_data(config: TrainConfig) -> tuple[Dataset, str]:
    """The data set and a checksum of its source: the file's bytes; for the built-in set, those of
    the file ``latentlapse simulate --out FILE.txt`` writes, the same data (so compare and evaluate
    know a run on either for what it is)."""
    if config.data is None:
        from latentlapse.xray.data.simulate import simulate_dataset
        from latentlapse.xray.data.writers import text_file_sha256

        dataset = simulate_dataset(seed=BUILTIN_SEED)
        return dataset, text_file_sha256(dataset)
    from latentlapse.xray.data.readers import load_dataset

    dataset = load_dataset(config.data, label_column=config.label_column, features=config.features,
                           missing=config.missing, exclude=config.exclude, placeholders=config.placeholders)
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
    frequencies; ``sqrt`` the square root of ``auto``'s weights, from the frequencies left after
    oversampling (the training frequencies when oversampling is off, as for the catalogue model):
    half the correction on a log scale, so the rare classes gain recall without the common ones
    losing much accuracy; ``none`` is uniform.
    """
    from latentlapse.xray.losses import class_alpha

    if config.alpha == "none" or (config.alpha == "auto" and config.sampler == "balanced"):
        return np.ones(len(before))
    if config.alpha == "sqrt":
        return class_alpha(after, power=0.5)
    return class_alpha(after if config.alpha == "auto" else before)


def learned_priors(config: TrainConfig, after: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The class priors the raw network learns: how often the loss sees each class (uniform under
    a balanced sampler, else the counts after oversampling) times its loss weight, the rule
    :func:`loss_alpha`'s weights act through."""
    seen = np.ones(len(alpha)) if config.sampler == "balanced" else np.asarray(after, dtype=float)
    weighted = seen * np.asarray(alpha, dtype=float)
    return weighted / weighted.sum()


def stacked_corrections(config: TrainConfig) -> list[str]:
    """The imbalance corrections that are applied on top of each other (double-counting)."""
    active = []
    if config.oversample_target > 0:
        active.append(f"oversampling to {config.oversample_target:g} x the majority")
    if config.sampler == "balanced":
        active.append("a balanced sampler")
    if config.alpha == "inverse":
        active.append("inverse-frequency alpha")
    elif config.alpha == "sqrt" and config.sampler == "balanced":  # its weights come from unbalanced counts
        active.append("square-root alpha")
    return active if len(active) >= 2 else []


def prepare(config: TrainConfig, schema: FeatureSchema | None = None) -> Prepared:
    """Load, label, split and oversample; raises InputError/UsageError before any write.

    ``schema`` (a resumed run's, from its checkpoint) is used instead of fitting a new one.
    """
    dataset, digest = load_data(config)
    notes: list[str] = []
    try:
        labelled, y = apply_scheme(dataset, config.classes, notes)
    except InputError as exc:
        dropped = [note for note in dataset.notes if note.startswith(DROP_NOTE)]
        if not dropped:
            raise
        raise InputError(f"{exc} (after --missing drop: {dropped[0][len(DROP_NOTE) + 2:]})") from None
    split = stratified_split(y, config.val_split, rng.generator(config.seed, "split"))
    prepared = prepare_split(config, labelled, y, split, digest, schema=schema)
    prepared.messages[:0] = notes  # logged after the run folder line, which comes first
    return prepared


def model_inputs(config: TrainConfig, raw: Dataset, train: np.ndarray,
                 schema: FeatureSchema | None = None) -> tuple[Dataset, FeatureSchema | None]:
    """The data set as the model reads it, and the catalogue schema fitted on rows ``train``.

    Spectra pass through unchanged. For a catalogue the schema (imputation medians, missing
    indicators, log10 choice and scaling) is fitted on the training rows only — or ``schema``
    is used as given — and every row is transformed with it, independently of the others.
    """
    if raw.kind != "catalog":
        return raw, None
    notes = list(raw.notes)
    fitted = schema is None
    if fitted:
        schema = fit_schema(raw.X, raw.feature_names, train, types=raw.feature_types or None,
                            missing=config.missing, placeholders=config.placeholders, left_out=raw.left_out)
    columns = _schema_positions(raw, schema)
    values = raw.X[:, columns]
    if fitted:
        notes += log10_notes(schema, values, train,
                              lambda i: raw.rows.at(i) if raw.rows is not None else f"source {raw.ids[i]}")
    X = schema.transform(values)
    errors = None
    if raw.errors is not None:
        errors = np.hstack([raw.errors[:, columns],
                            np.full((len(raw), len(schema.indicators)), np.nan, dtype=np.float32)])
    inputs = Dataset(X=X, labels=raw.labels, ids=raw.ids, counts=raw.counts, kind=raw.kind,
                     feature_names=schema.input_names, errors=errors, params=raw.params, source=raw.source,
                     notes=tuple(notes), feature_types=schema.types + (FLAG,) * len(schema.indicators),
                     left_out=schema.left_out, rows=raw.rows)
    return inputs, schema


def _schema_positions(raw: Dataset, schema: FeatureSchema) -> list[int]:
    """Where the schema's columns are in a catalogue read from a file (all of them must be)."""
    index = {name: j for j, name in enumerate(raw.feature_names)}
    absent = [name for name in schema.columns if name not in index]
    if absent:
        raise InputError(f"{raw.source}: columns of the model's schema are not read from the data: {', '.join(absent)}")
    return [index[name] for name in schema.columns]


def _values_read(raw: Dataset, schema: FeatureSchema | None) -> np.ndarray | None:
    """A catalogue's model columns as the file gave them, NaN where it had no value (an empty cell
    or a ``--placeholder``); None for spectra, whose inputs are what was read."""
    if schema is None:
        return None
    values = raw.X[:, _schema_positions(raw, schema)].astype(np.float32)
    values[schema.missing_mask(values)] = np.nan
    return values


def prepare_split(config: TrainConfig, labelled: Dataset, y: np.ndarray, split: Split, digest: str = "",
                  schema: FeatureSchema | None = None) -> Prepared:
    """Fit the schema on the training rows of a given split, oversample them, and choose the
    model and loss weights.

    ``labelled`` and ``y`` are the data set after the class scheme (catalogues: raw values);
    cross-validation calls this once per fold with its own split, :func:`prepare` with the run's
    stratified split. Nothing is fitted on the validation rows. Settings left at None take the
    chosen model's defaults (``Prepared.config``).
    """
    classes = scheme(config.classes)
    model_kind = choose_model(config, labelled)
    config = config.for_model(model_kind)
    raw = labelled
    labelled, schema = model_inputs(config, raw, split.train, schema)
    train = labelled.subset(split.train)
    over = oversample(
        train.X, y[split.train], classes.n_classes, config.oversample_target, rng.generator(config.seed, "augment"),
        kind=labelled.kind, counts=train.counts, errors=train.errors,
    )
    weights = balanced_sample_weights(over.y, classes.n_classes) if config.sampler == "balanced" else None
    prepared = Prepared(
        config=config, dataset=labelled, y=y, scheme=classes, split=split, oversampled=over, model_kind=model_kind,
        data_sha256=digest, alpha=loss_alpha(config, over.counts_before, over.counts_after),
        sample_weights=weights, schema=schema, model_options=model_options(config, labelled, model_kind),
        values_read=_values_read(raw, schema), raw=raw,
    )
    prepared.messages.extend(_summary_lines(config, prepared))
    stacked = stacked_corrections(config)
    if stacked:
        prepared.warnings.append(
            "imbalance corrections stacked: " + " + ".join(stacked) + " each re-weight the rare classes, so "
            "together they over-correct; keep one (e.g. --alpha auto with --sampler shuffle)"
        )
    return prepared


def for_refit(prepared: Prepared) -> Prepared:
    """``prepared`` again with every labelled row as the training split (``--refit``): the schema
    (imputation, indicators, log10, scaling), oversampling and loss weights fitted on all of them,
    as if there were no validation split. Its rows stay named (the loop scores them each epoch),
    but they judge nothing: the refit keeps its last epoch."""
    p = prepared
    rows = np.sort(np.concatenate((p.split.train, p.split.val)))
    again = prepare_split(p.config, p.raw, p.y, Split(train=rows, val=p.split.val), p.data_sha256)
    return dataclasses.replace(again, messages=[], warnings=[])


def model_options(config: TrainConfig, inputs: Dataset, model_kind: str) -> dict:
    """What the catalogue model is built with: ensemble size and the hardness-ratio and colour
    pairs among its input columns (see :class:`latentlapse.xray.model.CatalogEnsemble`); nothing for
    the CNN."""
    if model_kind != "mlp":
        return {}
    from latentlapse.xray.model import derived_pairs

    return {"members": config.members, "derived": derived_pairs(inputs.feature_names)}


def _summary_lines(config: TrainConfig, p: Prepared) -> list[str]:
    names = p.scheme.names
    width = max(len(n) for n in names)
    data = p.dataset
    lines = [
        f"data: {data.source} ({len(data)} labelled {data.kind} sources, {data.n_features} "
        f"{'bins' if data.kind == 'spectra' else 'input columns'}); model: {p.model_kind}",
        *(f"note: {note}" for note in data.notes),
        f"class counts, training split -> after oversampling to {config.oversample_target:g} x majority "
        f"(validation split):" if config.oversample_target else "class counts, training split, no oversampling "
        "(validation split):",
    ]
    for i, name in enumerate(names):
        lines.append(
            f"  {name:<{width}}  {p.oversampled.counts_before[i]:>5d} -> {p.oversampled.counts_after[i]:>5d}"
            f"   (val {p.val_counts[i]:>4d})"
        )
    loss = "focal loss: gamma %g" % config.focal_gamma if config.focal_gamma else "cross-entropy"
    lines.append("%s, class weights (--alpha %s) %s" % (loss, config.alpha, ", ".join(f"{a:.2f}" for a in p.alpha)))
    lines.append(f"optimiser {config.optimizer}, lr {config.lr:g}, weight decay {config.weight_decay:g}, "
                 f"{config.schedule} schedule, {config.epochs} epochs")
    if p.schema is not None:
        lines.extend(feature_lines(p.schema))
    return lines


def feature_lines(schema: FeatureSchema) -> list[str]:
    """What a catalogue model reads, what was left out and why, and how its inputs are made."""
    lines = [f"features used ({len(schema.columns)}): {', '.join(schema.columns)}"]
    reasons: dict[str, list[str]] = {}
    for name, reason in schema.left_out:
        reasons.setdefault(reason, []).append(name)
    if reasons:
        lines.append("left out: " + "; ".join(f"{', '.join(names)} ({reason})" for reason, names in reasons.items())
                     + " — name a column in --features to use it")
    if schema.indicators:
        lines.append(f"missing-value indicators (gaps in the training split): {', '.join(schema.indicators)}")
    logged = [name for name, log10 in zip(schema.input_names, schema.log10) if log10]
    if logged:
        lines.append(f"note: fed as log10 (positive over the training split, > {LOG_RANGE_RATIO:g}x range): "
                     f"{', '.join(logged)}")
    return lines
