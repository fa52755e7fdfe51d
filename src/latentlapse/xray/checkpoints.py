"""Checkpoints: the model, optimiser, schedule, RNG streams and config of a run, saved atomically.

``last.pt`` is rewritten after every epoch (it is what ``--resume`` continues from) and
``best.pt`` whenever validation balanced accuracy improves. Both hold only tensors and plain
Python values, so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from latentlapse.core import atomic
from latentlapse.core.errors import InputError

FORMAT = "latentlapse-checkpoint-1"
NAMES = ("best", "last")
_GIVE = "give the best.pt or last.pt of a run folder"


def checkpoint_path(folder: str | os.PathLike, name: str) -> Path:
    """``<folder>/best.pt`` or ``<folder>/last.pt``."""
    if name not in NAMES:
        raise ValueError(f"checkpoint name must be one of {NAMES}, got {name!r}")
    return Path(folder) / f"{name}.pt"


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically: the previous file stays intact if anything fails."""
    with atomic.atomic_writer(path, "wb") as handle:
        torch.save({"format": FORMAT, **payload}, handle)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; one-line InputError when missing or not a checkpoint."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a checkpoint; give {path / 'best.pt'} or {path / 'last.pt'}")
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint; runs keep best.pt and last.pt in their folder")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file; its text may advise unsafe loading
        raise InputError(f"{path}: not a latentlapse checkpoint (it does not load as one); {_GIVE}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a latentlapse checkpoint (a PyTorch file without the latentlapse format tag); {_GIVE}")
    return payload


def model_from_checkpoint(payload: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the trained network of a checkpoint, in eval mode on the CPU."""
    from latentlapse.xray.model import build_model

    spec = payload["model_spec"]
    model = build_model(spec["kind"], spec["n_features"], spec["n_classes"], torch.Generator(), **spec.get("options", {}))
    model.load_state_dict(payload["trainer"]["model"])
    return model.eval()


def payload(prepared, run_dir: str | os.PathLike, trainer) -> dict[str, Any]:
    """What a run's best.pt and last.pt hold: the config, the model's build and inputs (schema),
    the data's checksum, the class priors, the last epoch's scores and the trainer's whole state.
    ``prepared`` is the data the trainer trained on (a refit's, for a refitted best.pt)."""
    p = prepared
    return {
        "config": p.config.to_dict(),
        "model_spec": {"kind": p.model_kind, "n_features": p.dataset.n_features, "n_classes": p.scheme.n_classes,
                       "options": p.model_options},
        "class_names": list(p.scheme.names),
        "feature_names": list(p.dataset.feature_names),
        "feature_schema": p.schema.to_dict() if p.schema is not None else None,
        "data": {"source": p.dataset.source, "sha256": p.data_sha256, "kind": p.dataset.kind},
        "priors": class_priors(p),
        "run_dir": str(run_dir),
        "scores": dict(trainer.history.rows[-1]) if trainer.history.rows else {},
        "trainer": trainer.state_dict(),
    }


def class_priors(prepared) -> dict[str, list[float]]:
    """``train``: class frequencies of the training split before oversampling; ``model``: those
    the raw network learns (:func:`~latentlapse.xray.prepare.learned_priors`) — the priors
    :mod:`latentlapse.xray.priors` re-weights from."""
    from latentlapse.xray.prepare import learned_priors

    before = prepared.oversampled.counts_before.astype(float)
    model = learned_priors(prepared.config, prepared.oversampled.counts_after, prepared.alpha)
    return {"train": (before / before.sum()).tolist(), "model": model.tolist()}
