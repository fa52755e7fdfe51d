"""``latentlapse visualize --checkpoint PATH``: the post-training view of a saved model.

For the whole validation split the checkpoint was trained with (or every labelled source of
``--data FILE``) it writes, into a new folder ``visualizations/<checkpoint>_<run>_epoch<N>_acc<A>/``:

- ``latent_map.png`` — the 2-D map of the sources' penultimate-layer features, misclassified
  sources as red X's;
- ``separability.png`` — how much each pair of classes overlaps in the latent space, next to
  the model's confusion matrix;
- ``statistics.txt`` — correct/total per class, the most confused pairs and the checkpoint's
  metadata.

Class overlap is defined without the 2-D map: for classes a and b it is the fraction of a's
sources whose 5 nearest *other* sources in feature space are mostly of class b (leave-one-out
5-NN majority, ties to the nearer class). Rows sum to 1; the diagonal is the share that sits
among its own class. An existing folder is never overwritten: a numeric suffix is added.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.core import atomic, evaluation, rng, runs
from latentlapse.xray import checkpoints
from latentlapse.core.errors import InputError, UsageError
from latentlapse.core.results import completed_refit
from latentlapse.core.timelapse.runfiles import ClassStyle, class_style

log = logging.getLogger(__name__)

MAP_FILE, SEPARABILITY_FILE, STATISTICS_FILE = "latent_map.png", "separability.png", "statistics.txt"
OVERLAP_K = 5
EMBED_BATCH = 1024
# t-SNE's exact affinities need n² memory; beyond this many sources a stratified sample is mapped
# (every statistic still uses all sources).
MAP_LIMIT = 4000
TOP_PAIRS = 6


@dataclass(frozen=True)
class _View:
    """The sources to show: model-ready features, true classes, and a description."""

    X: np.ndarray
    y: np.ndarray
    description: str


def visualize_checkpoint(checkpoint: str | os.PathLike, method: str = "tsne", data: str | None = None,
                         out_root: str | os.PathLike = "visualizations") -> Path:
    """Write the map, the separability figure and statistics.txt of a checkpoint; return the folder.

    Parameters
    ----------
    checkpoint : a ``best.pt`` or ``last.pt`` written by a run.
    method : ``tsne``, ``umap`` (t-SNE with one warning when umap-learn is missing) or ``pca``.
    data : a labelled file to show instead of the checkpoint's own validation split.
    out_root : the parent of the new output folder.

    Raises
    ------
    InputError
        Missing or unreadable checkpoint, data that changed since training, a file whose
        features do not match the model, or no labelled source to show.
    """
    from latentlapse.xray.config import TrainConfig
    from latentlapse.core.timelapse.projection import METHODS

    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    payload = checkpoints.load(checkpoint)
    config = TrainConfig.from_dict(payload["config"])
    names = list(payload["class_names"])
    view = _from_file(data, payload, config) if data else _validation_split(Path(checkpoint), payload, config)
    features, pred = embed(checkpoints.model_from_checkpoint(payload), view.X)
    overlap = class_overlap(features, view.y, len(names))
    confusion = evaluation.confusion(view.y, pred, len(names))
    accuracy = float(np.mean(pred == view.y))
    epoch = int(payload["trainer"]["epoch"])
    run_name = Path(str(payload.get("run_dir", "run"))).name
    from latentlapse.xray.inspect_figures import map_png, separability_png
    from latentlapse.core.timelapse.render import METHOD_LABELS

    shown = _map_sample(view.y, len(names), config.seed)
    xy, used = _project(features[shown], method, config.seed)
    title = (f"{Path(checkpoint).name} of {run_name} · epoch {epoch} · accuracy {accuracy:.4f}", view.description)
    files = {
        MAP_FILE: map_png(xy, view.y[shown], pred[shown], class_style_of(names), title, used, len(view.y)),
        SEPARABILITY_FILE: separability_png(overlap, confusion, names, title),
        STATISTICS_FILE: statistics_text(Path(checkpoint), payload, view, names, confusion, overlap, used,
                                         len(shown)).encode("utf-8"),
    }
    folder = new_folder(Path(out_root), f"{Path(checkpoint).stem}_{run_name}_epoch{epoch}_acc{accuracy:.4f}")
    for name, content in files.items():
        atomic.write_bytes(folder / name, content)
    trained = "; the refitted model trained on these sources" if not data and completed_refit(payload) else ""
    log.info("%s: %d sources, accuracy %.4f%s, map by %s", folder, len(view.y), accuracy, trained,
             METHOD_LABELS.get(used, used))
    return folder


# ----------------------------------------------------------------------------------- the data
def class_style_of(names: list[str]) -> ClassStyle:
    """The colours and markers the run's frames gave these classes: the X-ray scheme's own when
    the names are a scheme's, else the generic palette (red stays for misclassified points)."""
    from latentlapse.xray.data.taxonomy import SCHEME_SIZES, scheme

    if len(names) in SCHEME_SIZES and tuple(names) == scheme(len(names)).names:
        known = scheme(len(names))
        return ClassStyle(tuple(names), known.colors, known.markers)
    return class_style(names)


def _validation_split(checkpoint: Path, payload: dict, config) -> _View:
    """The checkpoint's own validation split, reproduced from its config and checked by sha256."""
    from latentlapse.xray.prepare import prepare

    if config.data and not Path(config.data).exists():
        raise InputError(f"{checkpoint}: the run's data {config.data} is not found from here; "
                         f"pass --data FILE (or run from the folder the run was started in)")
    from latentlapse.xray.data.schema import from_checkpoint

    prepared = prepare(config, schema=from_checkpoint(payload))
    if prepared.data_sha256 != payload["data"]["sha256"]:
        raise InputError(f"{checkpoint}: the data ({config.data or 'the built-in set'}) has changed since the model was "
                         f"trained (sha256 differs); pass --data FILE to view other data")
    val = prepared.split.val
    trained = "; the refitted model trained on them too" if completed_refit(payload) else ""
    return _View(prepared.dataset.X[val], prepared.y[val],
                 f"validation split ({len(val)} sources of {prepared.dataset.source}{trained})")


def _from_file(data: str, payload: dict, config) -> _View:
    """Every source of ``data`` with a label of the checkpoint's classes, columns as trained (the
    same rule as ``evaluate``: other labels skipped with a note, none at all a usage error)."""
    from latentlapse.xray.predict import labelled_inputs

    rows = labelled_inputs(payload, data, config.label_column, "visualize", "drawn")
    return _View(rows.X, rows.y, f"{len(rows.y)} labelled sources of {Path(data).name}")


def embed(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate-layer features and predicted classes, ``EMBED_BATCH`` rows at a time."""
    import torch

    features, pred = [], []
    with torch.inference_mode():
        for start in range(0, len(X), EMBED_BATCH):
            chunk = torch.from_numpy(np.ascontiguousarray(X[start:start + EMBED_BATCH], dtype=np.float32))
            f, z = model.features_and_logits(chunk)
            features.append(f.numpy().astype(np.float64))
            pred.append(z.argmax(dim=1).numpy())
    return np.concatenate(features), np.concatenate(pred).astype(np.int64)


# ---------------------------------------------------------------------------------- the numbers
def class_overlap(features: np.ndarray, labels: np.ndarray, n_classes: int, k: int = OVERLAP_K) -> np.ndarray:
    """``overlap[a, b]``: fraction of class a's sources whose k nearest other sources are mostly b.

    Leave-one-out k-NN majority in feature space; a tie goes to the tied class with the nearer
    member. Rows sum to 1; a class without sources has a row of NaN.
    """
    from sklearn.neighbors import NearestNeighbors

    from latentlapse.core.timelapse.latent_metrics import majority_vote, share_matrix

    if len(features) < 2:
        return np.full((n_classes, n_classes), np.nan)
    k = min(k, len(features) - 1)
    _, neighbours = NearestNeighbors(n_neighbors=k).fit(features).kneighbors()  # excludes each point itself
    return share_matrix(majority_vote(labels[neighbours], n_classes), labels, n_classes)


def confused_pairs(confusion: np.ndarray, names: list[str], top: int = TOP_PAIRS) -> list[tuple[str, str, int, float]]:
    """(true, predicted, count, share of the true class) for the largest off-diagonal counts."""
    pairs = [(int(confusion[i, j]), i, j) for i in range(len(names)) for j in range(len(names))
             if i != j and confusion[i, j] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(names[i], names[j], count, count / confusion[i].sum()) for count, i, j in pairs[:top]]


def statistics_text(checkpoint: Path, payload: dict, view: _View, names: list[str], confusion: np.ndarray,
                    overlap: np.ndarray, method: str, mapped: int) -> str:
    """The contents of statistics.txt (the definitions of every number included)."""
    from latentlapse.core.timelapse.render import METHOD_LABELS

    c = payload["config"]
    scores = payload.get("scores") or {}
    refit = completed_refit(payload)
    width = max(len(n) for n in names) + 2
    total, correct = confusion.sum(axis=1), np.diag(confusion)
    lines = [
        f"latentlapse visualize: {checkpoint}",
        "",
        "Checkpoint",
        f"  run            {payload.get('run_dir', '?')}",
        f"  epoch          {payload['trainer']['epoch']} of {c.get('epochs')}",
        "  saved scores   " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()
                                        if k in ("train_acc", "val_acc", "val_balanced_acc", "val_macro_f1", "val_loss")),
        *([f"  refit          trained again on all {refit['sources']} labelled sources after the run (the saved "
           f"scores are the run's, from before it)"] if refit else []),
        "  config         " + ", ".join(f"{k} {c.get(k)}" for k in ("classes", "epochs", "oversample_target", "focal_gamma",
                                                                     "alpha", "sampler", "lr", "weight_decay", "batch_size",
                                                                     "model", "seed")),
        f"  data           {payload['data'].get('source')} (sha256 {str(payload['data'].get('sha256'))[:16]}…)",
        f"  shown          {view.description}; map by {METHOD_LABELS.get(method, method)} of {mapped} sources",
        "",
        "Per class: correct / total (recall)",
    ]
    for i, name in enumerate(names):
        share = f"{correct[i] / total[i]:6.1%}" if total[i] else "     –"
        lines.append(f"  {name:<{width}}{correct[i]:>6d} / {total[i]:<6d}{share}")
    present = total > 0
    lines.append(f"  {'all':<{width}}{correct.sum():>6d} / {total.sum():<6d}{correct.sum() / total.sum():6.1%}"
                 f"   balanced accuracy {np.mean(correct[present] / total[present]):.4f}")
    lines += ["", "Most confused pairs: true class -> predicted class"]
    pairs = confused_pairs(confusion, names)
    lines += [f"  {a} -> {b}: {n} ({share:.1%} of {a})" for a, b, n, share in pairs] or ["  none: every source is right"]
    lines += ["", f"Class overlap in the latent space (leave-one-out {OVERLAP_K}-NN majority in the network's "
                  f"{payload['model_spec']['kind']} penultimate features):",
              "  row a, column b = fraction of class a's sources whose nearest other sources are mostly class b;",
              "  rows sum to 1; the diagonal is the share sitting among its own class (1 = fully separable).",
              " " * (width + 2) + "".join(f"{n[:9]:>10}" for n in names)]
    for i, name in enumerate(names):
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>10.3f}" if np.isfinite(v) else f"{'–':>10}" for v in overlap[i]))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- helpers
def _map_sample(y: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """All sources, or a stratified sample of ``MAP_LIMIT`` when there are more."""
    if len(y) <= MAP_LIMIT:
        return np.arange(len(y))
    from latentlapse.core.timelapse.sample import choose_sample

    return choose_sample(y, MAP_LIMIT, n_classes, rng.generator(seed, "subsample"))


def _project(features: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, str]:
    """2-D positions of all the sources projected together, and the method actually used."""
    from latentlapse.core.timelapse.projection import ProjectionError, project

    try:  # every source is mapped in the "training" role; none is placed afterwards
        layout = project(features, features[:0], method, None, rng.projection_seed(seed))
    except ProjectionError as exc:
        raise InputError(f"cannot draw the map of {len(features)} sources: {exc}") from None
    return layout.train_xy, layout.state.method


def new_folder(root: Path, name: str) -> Path:
    """Create ``root/name`` (or ``name_2``, ``name_3``, … when taken) and return it; never reuses one."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return runs.create_first_free(root, itertools.chain([name], (f"{name}_{n}" for n in itertools.count(2))))


