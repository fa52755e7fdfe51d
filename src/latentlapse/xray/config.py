"""The run configuration: frozen dataclasses built once from the command line and validated once.

The same object is written into ``run_metadata.json`` and every checkpoint, so a run can be
resumed or compared without guessing what produced it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from latentlapse.core.errors import UsageError

VIZ_METHODS = ("tsne", "umap", "pca")
MODELS = ("auto", "cnn", "mlp")
MISSING_POLICIES = ("indicator", "median", "drop")
ALPHA_MODES = ("auto", "inverse", "none")
SAMPLERS = ("shuffle", "balanced")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class VizConfig:
    """How the latent-space time-lapse is drawn (``--visualize_training`` and ``--viz_*``)."""

    enabled: bool = False
    every: int = 10
    method: str = "tsne"
    train_samples: int = 500
    val_samples: int = 300


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; see ``latentlapse train --help``."""

    classes: int = 4
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    oversample_target: float = 0.7
    focal_gamma: float = 2.0
    alpha: str = "auto"
    sampler: str = "shuffle"
    val_split: float = 0.2
    device: str = "auto"
    seed: int = 42
    data: str | None = None
    label_column: str | None = None
    features: tuple[str, ...] | None = None
    missing: str = "indicator"
    exclude: tuple[str, ...] = ()
    placeholders: tuple[float, ...] = ()
    runs_dir: str = "training_feature_visualizations"
    out_dir: str | None = None
    save_preds: str | None = None
    model: str = "auto"
    patience: int | None = None
    members: int = 3
    num_workers: int = 0
    threads: int | None = None
    tensorboard: bool = False
    viz: VizConfig = field(default_factory=VizConfig)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in metadata and checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Rebuild (and re-validate) a config stored by :meth:`to_dict`; unknown keys are errors."""
        values = dict(values)
        viz = VizConfig(**values.pop("viz", {}))
        if values.get("features") is not None:
            values["features"] = tuple(values["features"])
        for name in ("exclude", "placeholders"):
            if name in values:
                values[name] = tuple(values[name])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"stored config has unknown keys {', '.join(unknown)}; was it written by a newer latentlapse?")
        return cls(viz=viz, **values)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


def validate(config: TrainConfig) -> None:
    """Raise :class:`UsageError` with a one-line message for the first out-of-range value."""
    c, v = config, config.viz
    _check(c.classes in (2, 4, 8), f"--classes must be 2, 4 or 8, got {c.classes}")
    _check(c.epochs >= 1, f"--epochs must be at least 1, got {c.epochs}")
    _check(c.batch_size >= 1, f"--batch_size must be at least 1, got {c.batch_size}")
    _check(c.lr > 0, f"--lr must be positive, got {c.lr}")
    _check(c.weight_decay >= 0, f"--weight_decay must be zero or positive, got {c.weight_decay}")
    _check(
        0.0 <= c.oversample_target <= 1.0,
        f"--oversample_target must be between 0 (off) and 1.0 (fully balanced), got {c.oversample_target}",
    )
    _check(0.0 <= c.focal_gamma <= 10.0, f"--focal_gamma must be between 0 and 10, got {c.focal_gamma}")
    _check(c.alpha in ALPHA_MODES, f"--alpha must be one of {', '.join(ALPHA_MODES)}, got {c.alpha!r}")
    _check(c.sampler in SAMPLERS, f"--sampler must be one of {', '.join(SAMPLERS)}, got {c.sampler!r}")
    _check(0.0 < c.val_split < 1.0, f"--val_split must be between 0 and 1 (exclusive), got {c.val_split}")
    _check(c.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, got {c.device!r}")
    _check(0 <= c.seed < 2**63, f"--seed must be a non-negative integer below 2**63, got {c.seed}")
    _check(c.missing in MISSING_POLICIES, f"--missing must be one of {', '.join(MISSING_POLICIES)}, got {c.missing!r}")
    _check(c.model in MODELS, f"--model must be one of {', '.join(MODELS)}, got {c.model!r}")
    _check(c.patience is None or c.patience >= 1, f"--patience must be at least 1, got {c.patience}")
    _check(1 <= c.members <= 16, f"--members must be between 1 and 16, got {c.members}")
    _check(c.num_workers >= 0, f"--num_workers must be zero or positive, got {c.num_workers}")
    _check(c.threads is None or 1 <= c.threads <= 1024, f"--threads must be between 1 and 1024, got {c.threads}")
    _check(bool(c.runs_dir), "--runs_dir must not be empty")
    _check(v.every >= 1, f"--viz_every must be at least 1, got {v.every}")
    _check(v.method in VIZ_METHODS, f"--viz_method must be one of {', '.join(VIZ_METHODS)}, got {v.method!r}")
    _check(v.train_samples >= 10, f"--viz_train_samples must be at least 10, got {v.train_samples}")
    _check(v.val_samples >= 10, f"--viz_val_samples must be at least 10, got {v.val_samples}")
    if c.data is None:
        _check(c.label_column is None, "--label_column applies to --data tables; the built-in data needs none")
        _check(c.features is None, "--features applies to --data catalogue tables; the built-in data has spectra")
        _check(not c.exclude, "--exclude applies to --data catalogue tables; the built-in data has spectra")
        _check(not c.placeholders, "--placeholder applies to --data catalogue tables; the built-in data has spectra")
    both = sorted(set(c.exclude) & set(c.features or ()))
    _check(not both, f"{', '.join(both)} named in both --features and --exclude; keep one")
