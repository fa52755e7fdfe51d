"""The end of a completed run: its model scored and calibrated on the validation split, the
results written (final_metrics.json, classification_report.txt, calibration.png, --save_preds),
and, under ``--refit``, the model trained again on every labelled source and saved as best.pt.

:class:`~latentlapse.xray.session.Session` calls :func:`final_results` once training is
complete; everything here runs in rank 0 alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, ContextManager

from latentlapse.core import atomic
from latentlapse.xray import checkpoints
from latentlapse.xray.prepare import Prepared

log = logging.getLogger(__name__)

CALIBRATION_PNG = "calibration.png"

# Session._refit_window: while it is open, a first Ctrl-C or SIGTERM stops the refit alone
RefitWindow = Callable[[], ContextManager[None]]


def final_results(run_dir: Path, prepared: Prepared, trainer, ckpt_dir: Path, device: str,
                  refit_window: RefitWindow, alone: bool = False) -> dict:
    """Score best.pt (under ``--refit``, the last epoch, which it keeps) on the validation split,
    fit its calibration there (stored into best.pt), refit if asked, and write the results.

    ``alone``: other processes trained too (torchrun), and the refit runs in this one alone.
    """
    from latentlapse.core import evaluation
    from latentlapse.core.results import (RAW_NETWORK, calibration_text, completed_refit, operating_points_text,
                                          summary_text, write_predictions, write_results)
    from latentlapse.xray import calibration
    from latentlapse.xray.calibration_figure import reliability_png
    from latentlapse.xray.operating import both_points
    from latentlapse.xray.training import selection_label

    p, config = prepared, prepared.config
    names = p.scheme.names
    best_path = checkpoints.checkpoint_path(ckpt_dir, "best")
    if config.refit:  # the last epoch is kept, the trainer's own, whatever an earlier refit left in best.pt
        best = checkpoints.payload(p, run_dir, trainer)
    else:
        best = checkpoints.load(best_path)
        trainer.model.load_state_dict(best["trainer"]["model"])
    logits = trainer.predict_logits(p.dataset.X[p.split.val])
    y_val = p.y[p.split.val]
    fitted = calibration.fit(logits, y_val)
    block = calibration.before_after(logits, y_val, fitted, names, "the validation split")
    points = {name: evaluation.scores(y_val, point.proba(logits).argmax(axis=1), len(names))
              for name, point in both_points(fitted, checkpoints.class_priors(p)["train"], names).items()}
    best["calibration"] = fitted.to_dict()
    checkpoints.save(best_path, {k: v for k, v in best.items() if k != "format"})
    extra = {"calibration": block, "operating_points": points}
    text = "\n" + calibration_text(block) + "\n" + operating_points_text(points)
    if config.refit:
        extra["refit"] = refit_best(run_dir, p, ckpt_dir, device, best, refit_window, alone)
        text += "\n" + refit_text(extra["refit"])
    raw = calibration.softmax(logits)
    metrics = write_results(
        run_dir, y_val, raw.argmax(axis=1), names, best_epoch=trainer.best_epoch,
        last_scores=dict(trainer.history.rows[-1]), epochs_run=trainer.epoch, extra=extra,
        selected_by=selection_label(trainer.options.select_by), extra_text=text,
        evaluated=(f"last epoch's model (best.pt before its refit) on the validation split, {RAW_NETWORK}"
                   if config.refit else None),
    )
    scored = "last epoch, before the refit" if config.refit else "best epoch"
    atomic.write_bytes(run_dir / CALIBRATION_PNG, reliability_png(
        y_val, raw, fitted.apply(logits), f"Reliability on the validation split ({len(y_val)} sources), {scored}"))
    if config.save_preds:
        path = write_predictions(config.save_preds, p.dataset.ids[p.split.val], y_val, raw, names)
        same = ("the model before the refit, so predict with the refitted best.pt gives others" if completed_refit(extra)
                else "latentlapse predict --uncalibrated --priors model gives the same")
        log.info("validation predictions written to %s (the raw network's probabilities, as the headline "
                 "scores: %s)", path, same)
    log.info(summary_text(metrics))
    log.info(calibration_text(block).rstrip())
    log.info(operating_points_text(points).rstrip())
    if config.refit:
        log.info(refit_text(extra["refit"]).rstrip())
    return metrics


def refit_best(run_dir: Path, prepared: Prepared, ckpt_dir: Path, device: str, scored: dict,
               refit_window: RefitWindow, alone: bool = False) -> dict:
    """Train the model again on every labelled source (``--refit``) and save it as best.pt with
    the calibration of ``scored`` (the best.pt just written); the run's scores stay those of the
    model trained on the training split. A first Ctrl-C stops the refit alone, and a refit that
    fails (a NaN loss, a full disk) only warns: best.pt then stays that model, and the run
    completes. Returns what final_metrics.json records of it."""
    from latentlapse.xray.experiment import refit

    p = prepared
    n = len(p.split.train) + len(p.split.val)
    log.info("refit: training the model again on all %d labelled sources (the validation split's %d too), "
             "%d epochs%s; it becomes best.pt (Ctrl-C stops the refit and keeps the model scored here)",
             n, len(p.split.val), p.config.epochs, ", in this process alone" if alone else "")
    started = time.perf_counter()
    kept = "best.pt stays the model trained on the training split, scored below"
    try:
        with refit_window():
            trainer, again = refit(p, device)
        payload = checkpoints.payload(again, run_dir, trainer)
        # the calibration's priors stay those it was fitted at; the raw network's are the refit's
        payload["priors"]["train"] = scored["priors"]["train"]
        payload["trainer"]["history"] = []  # its validation rows were training rows: no scores to keep
        record = {"sources": n, "epochs": trainer.epoch, "completed": True,
                  "seconds": round(time.perf_counter() - started, 1)}
        payload.update(scores=scored["scores"], calibration=scored["calibration"], refit=record)
        checkpoints.save(checkpoints.checkpoint_path(ckpt_dir, "best"), payload)
    except KeyboardInterrupt:
        log.warning("refit stopped: %s", kept)
        return {"sources": n, "completed": False, "stopped_by": "interrupt"}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log.warning("refit failed (%s): %s", error, kept)
        return {"sources": n, "completed": False, "error": error}
    return record


def refit_text(record: dict) -> str:
    """What ``--refit`` made of best.pt, said after the scores it leaves as they are."""
    if not record.get("completed"):
        why = f"failed ({record['error']})" if record.get("error") else "stopped before its end"
        return f"Refit: {why}; best.pt is the model trained on the training split, scored above.\n"
    return (f"Refit: best.pt was then trained again on all {record['sources']} labelled sources (the validation "
            f"split included) for {record['epochs']} epochs and keeps the calibration above; the scores above are "
            f"of the model trained on the training split alone (latentlapse cv scores the refitted one).\n")
