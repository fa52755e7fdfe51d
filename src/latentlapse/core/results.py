"""End-of-run results: final metrics, the classification report and per-source predictions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core import atomic, evaluation

log = logging.getLogger(__name__)

FINAL_METRICS = "final_metrics.json"
REPORT = "classification_report.txt"
# What the best checkpoint's headline scores are of (the calibrated operating points sit beside them).
RAW_NETWORK = "raw network (argmax of the uncalibrated softmax)"


def write_results(
    run_dir: Path,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    *,
    best_epoch: int,
    last_scores: dict[str, float],
    epochs_run: int,
    extra: dict[str, object] | None = None,
    extra_text: str = "",
    selected_by: str = "validation balanced accuracy",
    evaluated: str | None = None,
) -> dict[str, object]:
    """Write ``final_metrics.json`` and ``classification_report.txt`` for the best checkpoint's raw
    network, ``y_pred`` its argmax (or, given ``evaluated``, for the predictions it describes, e.g. a
    library loop's last epoch); ``extra`` (calibration, operating points) joins the JSON and
    ``extra_text`` the report."""
    metrics = evaluation.report(y_true, y_pred, class_names)
    metrics.update(
        {
            "evaluated": evaluated or f"best checkpoint (chosen by {selected_by}) on the validation split, {RAW_NETWORK}",
            "best_epoch": best_epoch,
            "epochs_run": epochs_run,
            "last_epoch_scores": last_scores,
        }
    )
    if not evaluated and selected_by.startswith("validation"):  # picked on this split: say what that costs
        metrics["note"] = ("the validation split also chose the best epoch, so these numbers are slightly "
                           "optimistic; cross-validate for a publishable estimate")
    metrics.update(extra or {})
    atomic.write_json(run_dir / FINAL_METRICS, metrics)
    first = (f"Evaluated: {evaluated}, epoch {best_epoch} of {epochs_run}\n" if evaluated else
             f"Best checkpoint: epoch {best_epoch} of {epochs_run} (chosen by {selected_by}), {RAW_NETWORK}\n")
    header = (
        first +
        f"accuracy {metrics['acc']:.4f}   balanced accuracy {metrics['balanced_acc']:.4f}   "
        f"macro-F1 {metrics['macro_f1']:.4f}\n\n"
    )
    atomic.write_text(run_dir / REPORT, header + evaluation.report_text(y_true, y_pred, class_names) + extra_text)
    return metrics


def write_predictions(
    path: str | Path, ids: np.ndarray, y_true: np.ndarray | None, proba: np.ndarray, class_names: Sequence[str]
) -> Path:
    """One row per source: id, true class (empty where unknown, i.e. -1), predicted class and
    class probabilities; the true-class column is left out when no source has one. The same
    writer as ``predict``'s (CSV, JSON or FITS by suffix), given all rows as one piece."""
    from latentlapse.core.prediction_writer import write_stream

    y = np.full(len(ids), -1) if y_true is None else np.asarray(y_true)
    return write_stream(Path(path), [(np.asarray(ids), y, np.asarray(proba))], class_names)[0]


def summary_text(metrics: dict[str, object]) -> str:
    """The printed end-of-run summary: headline scores, per-class table, confusion matrix."""
    names = metrics["class_names"]
    width = max(len(n) for n in names) + 2
    lines = [
        f"best epoch {metrics['best_epoch']}: accuracy {metrics['acc']:.4f}, balanced accuracy "
        f"{metrics['balanced_acc']:.4f}, macro-F1 {metrics['macro_f1']:.4f} (validation split, raw network)",
        f"{'class':<{width}}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>9}",
    ]
    for name in names:
        row = metrics["per_class"][name]
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>9d}")
    lines.append("confusion matrix (rows true, columns predicted):")
    for name, counts in zip(names, metrics["confusion_matrix"]):
        lines.append(f"  {name:<{width}}" + "".join(f"{c:>6d}" for c in counts))
    return "\n".join(lines)


def calibration_text(block: dict[str, object]) -> str:
    """Lines of the report for a ``calibration`` block (see :func:`latentlapse.xray.calibration.before_after`)."""
    before, after = block["before"], block["after"]
    where = (f"fitted on {block['fitted_on']}, scored on {block['evaluated_on']}" if "fitted_on" in block
             else f"fitted and scored on {block['evaluated_on']}")
    lines = [
        f"Calibration ({block['method']}, T = {block['temperature']:.3f}; {where}):",
        f"  {'':<12}{'ECE':>8}{'cw-ECE':>9}{'Brier':>9}{'NLL':>9}",
    ]
    for name, s in (("raw", before), ("calibrated", after)):
        lines.append(f"  {name:<12}{s['ece']:>8.4f}{s['classwise_ece_mean']:>9.4f}{s['brier']:>9.4f}{s['nll']:>9.4f}")
    lines.append("  (calibrated: at the training class frequencies, the priors the calibration was fitted at; "
                 "other priors move the probabilities and these scores)")
    return "\n".join(lines) + "\n"


RAW_POINT = "raw"  # an operating-point key: the raw network's top class, not calibrated nor re-weighted


def completed_refit(record: Mapping) -> dict:
    """The ``refit`` entry of final_metrics.json or a checkpoint when that refit completed (best.pt
    then holds a model trained again on every labelled source), else an empty dict."""
    refit = record.get("refit") or {}
    return refit if refit.get("completed") else {}


def operating_points_text(points: dict[str, dict]) -> str:
    """One line per operating point: which priors (or the raw network), accuracy and balanced accuracy."""
    lines = ["Operating points (the calibrated ones re-weighted to the priors; see --priors of predict):"]
    labels = {name: "raw network (--uncalibrated --priors model)" if name == RAW_POINT else f"priors {name}"
              for name in points}
    width = max((len(label) for label in labels.values()), default=0)
    for name, values in points.items():
        lines.append(f"  {labels[name]:<{width}}  accuracy {values['acc']:.4f}  balanced accuracy "
                     f"{values['balanced_acc']:.4f}  macro-F1 {values['macro_f1']:.4f}")
    return "\n".join(lines) + "\n"
