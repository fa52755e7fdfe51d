"""The one container every reader and the simulator return, and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from latentlapse.xray.data.taxonomy import UNLABELLED

Kind = Literal["spectra", "catalog"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Sources as rows of a float32 matrix, with their fine labels, ids and counts.

    Attributes
    ----------
    X : (n, k) float32 — normalised spectra (each row sums to 1) or catalogue features.
    labels : (n,) str — canonical fine labels (see ``taxonomy.FINE_LABELS``); ``""`` where a
        source is unlabelled.
    ids : (n,) str — source identifiers, as read.
    counts : (n,) float64 — net counts of each spectrum; NaN for catalogues.
    kind : ``"spectra"`` or ``"catalog"``.
    energy : (k,) float64 bin centres in keV for spectra, else None.
    feature_names : column names for catalogues (bin labels for spectra).
    errors : (n, k) float32 quoted 1-sigma errors of catalogue features, or None.
    params : true physical parameters per source (simulated data only), e.g. ``{"gamma": ...}``.
    source : a one-line description of where the data came from (a path, or the simulator).
    notes : decisions taken while reading (missing-value policy, dropped columns), recorded in
        the run metadata.
    feature_types : per catalogue feature, ``number`` or ``flag`` (see :mod:`.schema`).
    left_out : catalogue columns not used as features, each with the reason.
    rows : where each row sits in its file (a :class:`~.spectra_checks.Rows`), for notes that
        name a line; None where unknown.
    label_hint : how to label these sources, for the messages that ask for labels, where a
        label is not a column or a field (PHA files: a header keyword); "" otherwise.

    Catalogue features are raw values with NaN where missing; the model inputs come from a
    :class:`~latentlapse.xray.data.schema.FeatureSchema` fitted on the training split.
    """

    X: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    counts: np.ndarray
    kind: Kind
    energy: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    errors: np.ndarray | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    notes: tuple[str, ...] = ()
    feature_types: tuple[str, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
    rows: Any = None
    label_hint: str = ""

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        for name in ("labels", "ids", "counts"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"Dataset.{name} has {getattr(self, name).shape[0]} rows, X has {n}")
        if self.X.ndim != 2:
            raise ValueError(f"Dataset.X must be 2-D, got shape {self.X.shape}")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def is_labelled(self) -> np.ndarray:
        """Boolean mask of the rows that carry a label."""
        return self.labels != UNLABELLED

    def subset(self, index: np.ndarray) -> "Dataset":
        """The rows selected by an integer index or boolean mask, everything else shared."""
        index = np.asarray(index)
        return Dataset(
            X=self.X[index],
            labels=self.labels[index],
            ids=self.ids[index],
            counts=self.counts[index],
            kind=self.kind,
            energy=self.energy,
            feature_names=self.feature_names,
            errors=None if self.errors is None else self.errors[index],
            params={key: value[index] for key, value in self.params.items()},
            source=self.source,
            notes=self.notes,
            feature_types=self.feature_types,
            left_out=self.left_out,
            rows=None if self.rows is None else replace(self.rows, numbers=self.rows.numbers[index]),
            label_hint=self.label_hint,
        )

    def label_counts(self) -> dict[str, int]:
        """Number of sources per fine label (unlabelled rows under ``""``), sorted by label."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts)}
