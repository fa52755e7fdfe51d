"""``latentlapse inspect``: one source's training history, or the most suspect labels, as text.

Read from the run's recorded dynamics (:mod:`latentlapse.core.timelapse.dynamics`), so it works on a
finished, interrupted or still running run; the first line says how a run that did not complete
ended. A source's history is shown at the epochs the time-lapse drew a frame (so it can be
matched with the pictures), or at every epoch when the run has no frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from latentlapse.core.errors import InputError, UsageError
from latentlapse.core.timelapse import dynamics
from latentlapse.core.timelapse.runfiles import load_run


def _load(run_dir: str | os.PathLike):
    run = load_run(run_dir)  # one-line InputError when the folder is not a run
    try:
        history = dynamics.load_history(run.run_dir)
    except FileNotFoundError:
        raise InputError(f"{run.run_dir}: no training dynamics recorded (no {dynamics.DYNAMICS_DIR}/ records); "
                         f"runs made before per-source dynamics existed cannot be inspected") from None
    return run, history, dynamics.source_stats(history)


def _run_name(run) -> str:
    """The run's folder name, with how it ended when it did not complete."""
    state = run.unfinished()
    return f"{Path(run.run_dir).name} ({state})" if state else Path(run.run_dir).name


def _name(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else "-"


def source_text(run_dir: str | os.PathLike, source_id: str) -> str:
    """The history of source ``source_id``; UsageError (one line) when the run has no such id."""
    run, history, stats = _load(run_dir)
    matches = np.flatnonzero(history.ids == source_id)
    if not len(matches):
        raise UsageError(f"{run.run_dir}: no source with id {source_id!r} among its {len(history.ids)} training "
                         f"and validation sources; see {dynamics.DYNAMICS_DIR}/{dynamics.SOURCES_FILE} for the ids")
    i = int(matches[0])
    names = history.class_names
    frames = [e for e in run.frame_epochs if e in set(history.epochs.tolist())]
    shown = np.flatnonzero(np.isin(history.epochs, frames)) if frames else np.arange(len(history.epochs))
    learned = int(stats.learned_epoch[i])
    lines = [
        f"{source_id} ({history.split[i]} split) in {_run_name(run)}: labelled {_name(names, int(history.labels[i]))}",
        f"region {stats.region[i]}; suspect rank {int(stats.rank[i])} of {len(history.ids)} "
        f"(score {stats.score[i]:.3f}{', a label suspect' if stats.suspect[i] else ''})",
        f"confidence {stats.confidence[i]:.3f}, variability {stats.variability[i]:.3f}, right in "
        f"{stats.correctness[i]:.0%} of {len(history.epochs)} epochs, {int(stats.forgetting[i])} forgetting events, "
        f"{'learned for good at epoch ' + str(learned) if learned > 0 else 'never learned for good'}, "
        f"area under the margin {stats.aum[i]:.3f}",
        f"{'at the frame epochs' if frames else 'at every epoch'}:",
        f"  {'epoch':>5}  {'predicted':<22} {'p(label)':>8}  {'margin':>7}",
    ]
    for e in shown:
        predicted = int(history.pred[e, i])
        mark = "" if predicted == history.labels[i] else "  (wrong)"
        lines.append(f"  {int(history.epochs[e]):>5}  {_name(names, predicted):<22} {history.true_proba[e, i]:>8.3f}  "
                     f"{history.margin[e, i]:>7.2f}{mark}")
    return "\n".join(lines)


def suspects_text(run_dir: str | os.PathLike, n: int) -> str:
    """The ``n`` most suspect labels of the run (flagged suspects only), most suspect first."""
    if n < 1:
        raise UsageError(f"--suspects must be at least 1, got {n}")
    run, history, stats = _load(run_dir)
    names = history.class_names
    order = dynamics.top_suspects(stats, n)
    n_suspects = int(stats.suspect.sum())
    head = f"{n_suspects} of {len(history.ids)} sources of {_run_name(run)} are label suspects"
    if not n_suspects:
        return head
    lines = [f"{head}; {dynamics.suspects_heading(len(order), n_suspects)}:",
             f"  {'rank':>4}  {'id':<24} {'split':<5}  {'label':<20} {'model says (epochs)':<27} {'final':<20} "
             f"{'region':<14} score"]
    for i in order:
        says = f"{_name(names, int(stats.other_class[i]))} ({stats.other_share[i]:.0%})"
        lines.append(f"  {int(stats.rank[i]):>4}  {history.ids[i]:<24} {history.split[i]:<5}  "
                     f"{_name(names, int(history.labels[i])):<20} {says:<27} {_name(names, int(stats.final_pred[i])):<20} "
                     f"{stats.region[i]:<14} {stats.score[i]:.3f}")
    return "\n".join(lines)
