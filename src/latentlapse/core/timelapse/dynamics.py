"""Per-source training dynamics: what the model thought of every source at every epoch.

The training loop already evaluates the unaugmented training split and the validation split
each epoch; the recorder (:class:`latentlapse.core.timelapse.live.Timelapse`) keeps, per source, the
probability of its given (true) class, the margin (that class's logit minus the largest other
logit) and the predicted class. Files, in the run folder::

    dynamics/sources.csv       id, split, label (class index), written once at the start
    dynamics/epoch_XXX.npz     true_proba (float16), margin (float16), pred (int8): one per epoch

One small file per epoch, each written atomically, so a resumed run simply rewrites the epochs
after its checkpoint. From the history this module computes the per-source statistics of
``dynamics.csv`` (numpy only: it also runs in the frame worker):

- confidence and variability: mean and standard deviation of the true-class probability over
  the epochs (Swayamdipta et al. 2020, Data Maps), and the region they put a source in;
- correctness: the fraction of epochs it was predicted right; forgetting events: right-to-wrong
  transitions between consecutive epochs (Toneva et al. 2019); the epoch it was learned for
  good (right from then on);
- area under the margin: the mean margin (Pleiss et al. 2020). A source whose label is wrong
  is pulled towards its label only by memorisation, late and against the pull of its look-alikes,
  so its margin stays low or negative over most of training while a merely hard source's climbs;
- a suspect-label score: the negative area under the margin over the first third of the epochs,
  before memorisation (see :func:`suspect_scores`).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.core import atomic

DYNAMICS_DIR = "dynamics"
SOURCES_FILE = "sources.csv"
DYNAMICS_CSV = "dynamics.csv"
DYNAMICS_PNG = "dynamics.png"
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.npz$")

# ----------------------------------------------------------------------------- thresholds
# Regions of the data map (Swayamdipta et al. 2020 read them off the map's corners; these fixed
# cut-offs put the same corners in numbers). A true-class probability that swings by a fifth or
# more around its mean over training is "ambiguous" whatever its mean; otherwise a mean of at
# least 0.6 is easy to learn and one of at most 0.4 hard to learn; in between is ambiguous too.
AMBIGUOUS_VARIABILITY = 0.2
EASY_CONFIDENCE = 0.6
HARD_CONFIDENCE = 0.4
REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")
# The suspect score reads the margin over the first third of the epochs (see suspect_scores).
EARLY_FRACTION_DIVISOR = 3
# A source is flagged as a suspect when its early area under the margin is below zero (over the
# first third of training the model preferred another class to its label) AND the model was
# right about it in fewer than half of all epochs.
SUSPECT_AUM = 0.0
SUSPECT_CORRECTNESS = 0.5


@dataclass(frozen=True)
class DynamicsHistory:
    """Every recorded epoch of every source: rows are epochs, columns sources.

    ``ids``, ``split`` ('train' or 'val') and ``labels`` (class indices) describe the columns;
    ``true_proba`` and ``margin`` are float arrays (E, N), ``pred`` int (E, N).
    """

    epochs: np.ndarray
    ids: np.ndarray
    split: np.ndarray
    labels: np.ndarray
    true_proba: np.ndarray
    margin: np.ndarray
    pred: np.ndarray
    class_names: tuple[str, ...] = ()


# -------------------------------------------------------------------------------- writing
def epoch_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(run_dir) / DYNAMICS_DIR / f"epoch_{epoch:03d}.npz"


def epoch_record(labels: np.ndarray, proba: np.ndarray, logits: np.ndarray) -> dict[str, np.ndarray]:
    """One epoch's compact record of sources with class ``labels``: their true-class probability,
    margin (true-class logit minus the largest other logit) and predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(labels))
    true_logit = logits[rows, labels]
    pred = proba.argmax(axis=1)
    top_two = np.partition(logits, logits.shape[1] - 2, axis=1)[:, -2:]  # [second largest, largest]
    largest_other = np.where(pred == labels, top_two[:, 0], top_two[:, 1])
    return {
        "true_proba": proba[rows, labels].astype(np.float16),
        "margin": (true_logit - largest_other).astype(np.float16),
        "pred": pred.astype(np.int8),
    }


def write_epoch(run_dir: str | os.PathLike, epoch: int, record: dict[str, np.ndarray]) -> Path:
    """Write one epoch's record atomically (uncompressed: 5 bytes a source, nothing to gain)."""
    path = epoch_path(run_dir, epoch)
    path.parent.mkdir(exist_ok=True)
    with atomic.atomic_writer(path, "wb") as handle:
        np.savez(handle, **record)
    return path


def write_sources(run_dir: str | os.PathLike, ids: np.ndarray, split: np.ndarray, labels: np.ndarray,
                  class_names: tuple[str, ...]) -> Path:
    """The columns of the history: id, split and class index (and name) of every source."""
    path = Path(run_dir) / DYNAMICS_DIR / SOURCES_FILE
    path.parent.mkdir(exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "split", "label", "class"])
    writer.writerows((str(i), str(s), int(c), class_names[int(c)]) for i, s, c in zip(ids, split, labels))
    atomic.write_text(path, buffer.getvalue())
    return path


def recorded_epochs(run_dir: str | os.PathLike) -> list[int]:
    """Epochs with a record on disk, in order."""
    folder = Path(run_dir) / DYNAMICS_DIR
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_FILE.match(p.name)))


def drop_epochs_after(run_dir: str | os.PathLike, epoch: int) -> None:
    """Remove records of epochs after ``epoch`` (a resumed run redoes them)."""
    for later in recorded_epochs(run_dir):
        if later > epoch:
            epoch_path(run_dir, later).unlink(missing_ok=True)


# -------------------------------------------------------------------------------- reading
def read_sources(run_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's ``sources.csv`` (id, split, label, class); FileNotFoundError without one."""
    with open(Path(run_dir) / DYNAMICS_DIR / SOURCES_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_history(run_dir: str | os.PathLike) -> DynamicsHistory:
    """The recorded history of a run folder; FileNotFoundError when it has none."""
    folder = Path(run_dir) / DYNAMICS_DIR
    rows = read_sources(run_dir)
    epochs = recorded_epochs(run_dir)
    if not epochs:
        raise FileNotFoundError(f"{folder}: no epoch_*.npz records")
    n = len(rows)
    true_proba = np.empty((len(epochs), n), dtype=np.float32)
    margin = np.empty((len(epochs), n), dtype=np.float32)
    pred = np.empty((len(epochs), n), dtype=np.int64)
    for e, epoch in enumerate(epochs):
        with np.load(epoch_path(run_dir, epoch)) as record:
            true_proba[e], margin[e], pred[e] = record["true_proba"], record["margin"], record["pred"]
    names: dict[int, str] = {int(r["label"]): r["class"] for r in rows}
    return DynamicsHistory(
        epochs=np.asarray(epochs, dtype=np.int64),
        ids=np.array([r["id"] for r in rows], dtype=str),
        split=np.array([r["split"] for r in rows], dtype=str),
        labels=np.array([int(r["label"]) for r in rows], dtype=np.int64),
        true_proba=true_proba, margin=margin, pred=pred,
        class_names=_class_names(run_dir, names),
    )


def _class_names(run_dir: str | os.PathLike, seen: dict[int, str]) -> tuple[str, ...]:
    """The run's class names (from its metadata), else those of the classes present."""
    import json

    try:
        meta = json.loads((Path(run_dir) / "run_metadata.json").read_text(encoding="utf-8"))
        names = meta.get("class_names")
        if names:
            return tuple(names)
    except (OSError, ValueError):
        pass
    return tuple(seen.get(i, str(i)) for i in range(max(seen, default=-1) + 1))


def read_summary(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of a run's ``dynamics.csv`` as dicts of strings (comment lines skipped)."""
    with open(Path(run_dir) / DYNAMICS_CSV, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


# ----------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class SourceStats:
    """Per-source statistics of a history, one entry per source (column)."""

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    forgetting: np.ndarray
    learned_epoch: np.ndarray  # -1: not learned for good (wrong at the last epoch)
    aum: np.ndarray
    final_pred: np.ndarray
    region: np.ndarray
    score: np.ndarray
    rank: np.ndarray  # 1 = most suspect
    suspect: np.ndarray
    other_class: np.ndarray  # the class the model predicted most often besides the label (-1: none)
    other_share: np.ndarray  # the fraction of epochs it was predicted


def source_stats(history: DynamicsHistory) -> SourceStats:
    """Data-map, forgetting and margin statistics, region and suspect score of every source."""
    p = history.true_proba.astype(np.float64)
    margin = history.margin.astype(np.float64)
    right = history.pred == history.labels[None, :]
    confidence = p.mean(axis=0)
    variability = p.std(axis=0)
    correctness = right.mean(axis=0)
    forgetting = (right[:-1] & ~right[1:]).sum(axis=0)
    aum = margin.mean(axis=0)
    score = suspect_scores(margin)
    order = np.lexsort((np.arange(len(score)), aum, -score))  # ties: the lower margin over the whole run first
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    other_class, other_share = _most_predicted_other(history)
    return SourceStats(
        confidence=confidence, variability=variability, correctness=correctness, forgetting=forgetting,
        learned_epoch=learned_epochs(right, history.epochs), aum=aum, final_pred=history.pred[-1],
        region=regions(confidence, variability), score=score, rank=rank,
        suspect=(score > -SUSPECT_AUM) & (correctness < SUSPECT_CORRECTNESS),
        other_class=other_class, other_share=other_share,
    )


def top_suspects(stats: SourceStats, n: int | None = None) -> np.ndarray:
    """The indices of the flagged suspects (``suspect`` true), most suspect first, at most ``n``:
    the one ranking every list of suspects shows (the diagnosis, the report, ``inspect``)."""
    flagged = np.flatnonzero(stats.suspect)
    order = flagged[np.argsort(stats.rank[flagged], kind="stable")]
    return order if n is None else order[:n]


def suspects_heading(n_shown: int, n_suspects: int) -> str:
    """How a list of suspects is introduced: all of them, or the top ``n_shown`` of ``n_suspects``."""
    if n_suspects == 1 and n_shown:
        return "the only one"
    if n_shown >= n_suspects:
        return f"all {n_suspects}, by suspect score"
    return f"the top {n_shown} of {n_suspects}, by suspect score"


def learned_epochs(right: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The first epoch from which each source is predicted right at every later epoch (-1 when it
    is wrong at the last one)."""
    wrong_after = np.flip(np.logical_or.accumulate(np.flip(~right, axis=0), axis=0), axis=0)
    # wrong_after[e]: wrong at epoch e or later; learned at the first epoch where that is False
    learned = ~wrong_after
    first = learned.argmax(axis=0)
    return np.where(learned[-1], np.asarray(epochs)[first], -1)


def regions(confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
    """The data-map region of each source (see the thresholds at the top of this module)."""
    easy = (variability < AMBIGUOUS_VARIABILITY) & (confidence >= EASY_CONFIDENCE)
    hard = (variability < AMBIGUOUS_VARIABILITY) & (confidence <= HARD_CONFIDENCE)
    return np.where(easy, REGIONS[0], np.where(hard, REGIONS[2], REGIONS[1]))


def suspect_scores(margin: np.ndarray) -> np.ndarray:
    """How strongly the training history argues that a source's label is wrong (higher: more).

    The negative area under the margin over the first third of the epochs (at least one), in
    logits: positive when the model preferred another class to the label, by that much on
    average. Pleiss et al. (2020) measure the margin before memorisation sets in (they stop at
    the first learning-rate drop) for this reason: a network ends up fitting wrong labels too,
    but late, so the late epochs only blur the difference. On ``bench/label_noise.py`` the first
    third ranked flipped labels better than the whole run (ROC AUC 0.926 against 0.921 on the
    built-in set, 0.981 against 0.979 on the catalogue) and better than combinations with the
    confidence, correctness or per-class ranks that were tried.
    """
    margin = np.asarray(margin, dtype=np.float64)
    early = max(1, len(margin) // EARLY_FRACTION_DIVISOR)
    return -margin[:early].mean(axis=0)


def _most_predicted_other(history: DynamicsHistory) -> tuple[np.ndarray, np.ndarray]:
    """Per source, the class other than its label that the model predicted most often, and how often."""
    n_classes = max(len(history.class_names), int(history.pred.max(initial=0)) + 1,
                    int(history.labels.max(initial=0)) + 1)
    counts = np.stack([(history.pred == c).sum(axis=0) for c in range(n_classes)], axis=1)
    counts[np.arange(len(history.labels)), history.labels] = -1
    other = counts.argmax(axis=1)
    share = counts[np.arange(len(other)), other] / max(len(history.epochs), 1)
    return np.where(share > 0, other, -1), np.maximum(share, 0.0)
