"""Score a trained checkpoint on any labelled file: ``latentlapse evaluate``.

Accuracy, balanced accuracy, per-class precision/recall/F1 and the confusion matrix at the
chosen operating point (``--priors``, calibrated unless ``--uncalibrated``), both standard
operating points side by side, and the calibration of the raw and calibrated probabilities.
Writes ``evaluation.json``, ``evaluation_report.txt`` and ``evaluation.png`` (reliability
diagram and confusion matrix) into a new ``evaluations/eval_NNN`` folder or ``--out``.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import numpy as np

from latentlapse.core import atomic, evaluation, runs
from latentlapse.xray import checkpoints
from latentlapse.core.errors import UsageError

log = logging.getLogger(__name__)

JSON_FILE = "evaluation.json"
REPORT_FILE = "evaluation_report.txt"
FIGURE_FILE = "evaluation.png"
TRAINING_FILE_NOTE = ("this is the file the model was trained on, so these scores include its training "
                      "sources and are not held-out scores; evaluate on sources it has not seen, or use cv")


def evaluate_file(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike | None = None,
                  out_root: str | os.PathLike = "evaluations", priors: str = "balanced", uncalibrated: bool = False,
                  batch_size: int = 4096) -> tuple[Path, dict]:
    """Evaluate ``checkpoint`` on the labelled sources of ``data``; returns (folder, metrics).

    Raises
    ------
    UsageError
        The file holds no source with a label of the checkpoint's classes (nothing to score).
    InputError
        Unreadable checkpoint or data, or columns that do not match the model.
    """
    from latentlapse.xray import calibration
    from latentlapse.xray.calibration_figure import reliability_png
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.operating import from_checkpoint
    from latentlapse.xray.predict import labelled_inputs, predict_logits

    payload = checkpoints.load(checkpoint)
    point = from_checkpoint(payload, priors, uncalibrated)
    config = TrainConfig.from_dict(payload["config"])
    names = list(payload["class_names"])
    X, y, labels, known, n_unknown = labelled_inputs(payload, str(data), config.label_column, "evaluate", "scored")
    logits = predict_logits(checkpoints.model_from_checkpoint(payload), X, batch_size)
    proba = point.proba(logits)
    pred = proba.argmax(axis=1)
    metrics = evaluation.report(y, pred, names)
    raw = calibration.softmax(logits)
    fitted, calibrated, calibration_block, points = _calibration_block(payload, logits, raw, y, names)
    training_file = _is_training_file(payload, data)
    metrics.update({
        "checkpoint": str(Path(checkpoint).resolve()),
        "data": str(Path(data).resolve()),
        "n_sources": int(len(y)),
        **_skipped(labels, known, n_unknown),
        "training_file": training_file,
        "operating_point": point.describe(),
        "priors": point.label,
        "calibrated": point.calibration is not None,
        "calibration": calibration_block,
        "operating_points": points,
    })
    folder = _output_folder(out, out_root)
    text = _report_text(checkpoint, data, point, metrics, y, pred, names, int((~known).sum()), fitted)
    png = reliability_png(y, raw, calibrated,
                          f"{Path(checkpoint).name} on {Path(data).name} ({len(y)} sources)",
                          confusion=np.asarray(metrics["confusion_matrix"]), class_names=names,
                          calibrated_label="calibrated (at training priors)", confusion_point=point.describe())
    if training_file:
        log.warning(TRAINING_FILE_NOTE)
    atomic.write_json(folder / JSON_FILE, metrics)
    atomic.write_text(folder / REPORT_FILE, text)
    atomic.write_bytes(folder / FIGURE_FILE, png)
    log.info(text.rstrip())
    return folder, metrics


def _calibration_block(payload: dict, logits: np.ndarray, raw: np.ndarray, y: np.ndarray,
                       names: list[str]) -> tuple:
    """The checkpoint's fitted calibration and the calibrated probabilities (None without one),
    the calibration scores of the raw and calibrated probabilities, and the scores at the standard
    operating points. The calibration is reported even when ``--uncalibrated`` keeps it out of
    the headline."""
    from latentlapse.xray import calibration
    from latentlapse.xray.operating import both_points, stored_priors
    from latentlapse.core.results import RAW_POINT

    fitted = calibration.Calibration.from_dict(payload["calibration"]) if payload.get("calibration") else None
    calibrated = None if fitted is None else fitted.apply(logits)
    block = {"raw": calibration.scores(raw, y, names)}
    if fitted is not None:
        block["calibrated"] = calibration.scores(calibrated, y, names)
        block["calibrated_at_priors"] = "train"
        block.update(fitted.to_dict())
        points = {name: evaluation.scores(y, p.proba(logits).argmax(axis=1), len(names))
                  for name, p in both_points(fitted, stored_priors(payload)["train"], names).items()}
    else:
        points = {}
    points[RAW_POINT] = evaluation.scores(y, raw.argmax(axis=1), len(names))
    return fitted, calibrated, block, points


def _report_text(checkpoint: str | os.PathLike, data: str | os.PathLike, point, metrics: dict, y: np.ndarray,
                 pred: np.ndarray, names: list[str], skipped: int, fitted) -> str:
    """``evaluation_report.txt``: the headline scores at ``point`` and the per-class report of
    ``pred``, then the calibration (``metrics["calibration"]``, of ``fitted`` when the checkpoint
    has one) and the scores at the standard operating points; ``skipped`` sources are named."""
    from latentlapse.core.results import calibration_text, operating_points_text

    calibration_block, points = metrics["calibration"], metrics["operating_points"]
    text = (f"{Path(checkpoint)} on {data}: {len(y)} labelled sources"
            f"{f' ({skipped} without a label of these classes skipped)' if skipped else ''}\n"
            f"{'note: ' + TRAINING_FILE_NOTE + chr(10) if metrics['training_file'] else ''}"
            f"probabilities: {point.describe()}\n"
            f"accuracy {metrics['acc']:.4f}   balanced accuracy {metrics['balanced_acc']:.4f}   "
            f"macro-F1 {metrics['macro_f1']:.4f}\n\n" + evaluation.report_text(y, pred, names) + "\n")
    if fitted is not None:
        block = {**fitted.to_dict(), "fitted_on": "the run's validation split",
                 "evaluated_on": f"{len(y)} sources of {Path(data).name}",
                 "before": calibration_block["raw"], "after": calibration_block["calibrated"]}
        return text + calibration_text(block) + "\n" + operating_points_text(points)
    return (text + f"calibration of the raw probabilities: ECE {calibration_block['raw']['ece']:.4f}, NLL "
            f"{calibration_block['raw']['nll']:.4f} (the checkpoint has no fitted calibration)\n"
            + operating_points_text(points))


def _skipped(labels: np.ndarray, known: np.ndarray, n_unknown: int) -> dict[str, int]:
    """The sources not scored: without a label, and labelled with a class the model does not have
    (e.g. YSO for a 2-class model, or QSO, of no known class: the reader leaves those ``n_unknown``
    without a label)."""
    from latentlapse.xray.data.taxonomy import UNLABELLED

    unlabelled = np.asarray(labels).astype(str) == UNLABELLED
    return {"n_skipped_unlabelled": int((~known & unlabelled).sum()) - n_unknown,
            "n_skipped_other_class": int((~known & ~unlabelled).sum()) + n_unknown}


def _is_training_file(payload: dict, data: str | os.PathLike) -> bool:
    """Whether ``data`` is, byte for byte, the file the checkpoint was trained on."""
    from latentlapse.xray.prepare import file_sha256

    recorded = (payload.get("data") or {}).get("sha256")
    path = Path(data)
    return bool(recorded) and path.is_file() and file_sha256(path) == recorded


def _output_folder(out: str | os.PathLike | None, out_root: str | os.PathLike) -> Path:
    """``--out`` (created if absent; a warning names the earlier evaluation's files it will replace),
    else the next free ``<out_root>/eval_NNN``."""
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder}: exists and is not a folder; give a folder path")
        folder.mkdir(parents=True, exist_ok=True)
        earlier = [name for name in (JSON_FILE, REPORT_FILE, FIGURE_FILE) if (folder / name).exists()]
        if earlier:
            log.warning("replacing the evaluation in %s (its %s); give another --out, or none for a new "
                        "evaluations/eval_NNN, to keep it", folder, ", ".join(earlier))
        return folder
    root = Path(out_root)
    used = [int(p.name[5:]) for p in root.glob("eval_*") if p.name[5:].isdigit()] if root.is_dir() else []
    first = max(used, default=0) + 1
    return runs.create_first_free(root, (f"eval_{n:03d}" for n in itertools.count(first)))
