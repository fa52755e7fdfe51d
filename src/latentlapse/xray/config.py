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
ALPHA_MODES = ("auto", "inverse", "sqrt", "none")
SCHEDULES = ("plateau", "onecycle")
OPTIMIZERS = ("adam", "adamw")
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


# The defaults that depend on the model. The spectra CNN: Adam, learning rate reduced on plateaus
# of the validation loss, best epoch by validation balanced accuracy, oversampling and focal loss.
# The catalogue ensemble (measured in bench/catalog_cv.py, see docs/GUIDE.md "The catalogue
# model"): no oversampling, cross-entropy weighted by the square root of inverse class
# frequency, AdamW with decoupled weight decay, a one-cycle schedule to 3e-3 over 40 epochs, the
# last epoch kept, and a refit on every labelled source once the validation split has scored and
# calibrated the run (``refit``; only where the last epoch is kept, so no choice rests on it).
MODEL_DEFAULTS = {
    "cnn": {"epochs": 100, "lr": 1e-3, "weight_decay": 1e-4, "oversample_target": 0.7, "focal_gamma": 2.0,
            "alpha": "auto", "schedule": "plateau", "optimizer": "adam", "refit": False},
    "mlp": {"epochs": 40, "lr": 3e-3, "weight_decay": 1e-3, "oversample_target": 0.0, "focal_gamma": 0.0,
            "alpha": "sqrt", "schedule": "onecycle", "optimizer": "adamw", "refit": True},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; see ``latentlapse train --help``."""

    classes: int = 4
    # None: the model's own default (MODEL_DEFAULTS), filled in by :func:`for_model` once the
    # data say which model trains
    epochs: int | None = None
    batch_size: int = 64
    lr: float | None = None
    weight_decay: float | None = None
    oversample_target: float | None = None
    focal_gamma: float | None = None
    alpha: str | None = None
    schedule: str | None = None
    optimizer: str | None = None
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
    refit: bool | None = None
    num_workers: int = 0
    threads: int | None = None
    tensorboard: bool = False
    viz: VizConfig = field(default_factory=VizConfig)

    def __post_init__(self) -> None:
        validate(self)

    def for_model(self, kind: str) -> "TrainConfig":
        """This config with every setting left at None set to model ``kind``'s default."""
        filled = {name: value for name, value in MODEL_DEFAULTS[kind].items() if getattr(self, name) is None}
        if self.refit is None and filled.get("schedule", self.schedule) != "onecycle":
            filled["refit"] = False  # the default refit needs the one-cycle schedule's fixed epochs
        resolved = dataclasses.replace(self, **filled) if filled else self
        _check(not resolved.refit or resolved.schedule == "onecycle",
               f"--refit retrains for all --epochs and keeps the last, as the one-cycle schedule does; this run's "
               f"schedule is plateau{' (the cnn default)' if self.schedule is None else ''}, where the validation "
               f"split, which a refit trains on, chooses the epoch: add --schedule onecycle or drop --refit")
        _check(resolved.patience is None or resolved.schedule == "plateau",
               "--patience stops on a plateau of the checkpoint score; the one-cycle schedule (--schedule onecycle, "
               "the catalogue model's default) runs all --epochs and keeps the last: drop --patience or use "
               "--schedule plateau")
        return resolved

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in metadata and checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Rebuild (and re-validate) a config stored by :meth:`to_dict`; unknown keys are errors."""
        values = dict(values)
        for name, before in (("schedule", "plateau"), ("optimizer", "adam"), ("refit", False)):
            values.setdefault(name, before)  # written before these settings existed: what trained then
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


def check_seed(seed: int) -> None:
    """UsageError unless ``seed`` is one the random streams take (train and simulate share it)."""
    _check(0 <= seed < 2**63, f"--seed must be a non-negative integer below 2**63, got {seed}")


def validate(config: TrainConfig) -> None:
    """Raise :class:`UsageError` with a one-line message for the first out-of-range value."""
    c, v = config, config.viz
    _check(c.classes in (2, 4, 8), f"--classes must be 2, 4 or 8, got {c.classes}")
    _check(c.epochs is None or c.epochs >= 1, f"--epochs must be at least 1, got {c.epochs}")
    _check(c.batch_size >= 1, f"--batch_size must be at least 1, got {c.batch_size}")
    _check(c.lr is None or c.lr > 0, f"--lr must be positive, got {c.lr}")
    _check(c.weight_decay is None or c.weight_decay >= 0, f"--weight_decay must be zero or positive, got {c.weight_decay}")
    _check(
        c.oversample_target is None or 0.0 <= c.oversample_target <= 1.0,
        f"--oversample_target must be between 0 (off) and 1.0 (fully balanced), got {c.oversample_target}",
    )
    _check(c.focal_gamma is None or 0.0 <= c.focal_gamma <= 10.0,
           f"--focal_gamma must be between 0 and 10, got {c.focal_gamma}")
    _check(c.alpha is None or c.alpha in ALPHA_MODES, f"--alpha must be one of {', '.join(ALPHA_MODES)}, got {c.alpha!r}")
    _check(c.schedule is None or c.schedule in SCHEDULES,
           f"--schedule must be one of {', '.join(SCHEDULES)}, got {c.schedule!r}")
    _check(c.optimizer is None or c.optimizer in OPTIMIZERS,
           f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}")
    _check(c.sampler in SAMPLERS, f"--sampler must be one of {', '.join(SAMPLERS)}, got {c.sampler!r}")
    _check(0.0 < c.val_split < 1.0, f"--val_split must be between 0 and 1 (exclusive), got {c.val_split}")
    _check(c.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, got {c.device!r}")
    check_seed(c.seed)
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
