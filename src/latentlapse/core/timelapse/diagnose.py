"""The guide's reading of a time-lapse, done by the tool: findings with evidence and remedies.

From a run's ``history.csv`` (one row per epoch) and ``latent_metrics.csv`` (one row per frame)
it answers the guide's questions — are clusters tightening, are classes moving apart, are errors
falling — and looks for its warning signs: clusters not forming, a minority class embedded in a
majority cluster, overfitting, underfitting. Each finding carries the numbers it rests on and,
for a warning, the guide's remedy. Trends need at least two frames (they are read in
:mod:`latentlapse.core.timelapse.trends`, with their thresholds); warnings need a run long enough for
them to mean something (``MIN_EPOCHS_TO_JUDGE``), so a short run is never blamed for what it has
not had time to do.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.results import completed_refit
from latentlapse.core.timelapse.styles import safe_name
from latentlapse.core.timelapse import shortfalls, trends
from latentlapse.core.timelapse.remedy_terms import COMMAND_LINE, Terms
from latentlapse.core.timelapse.runfiles import Row, RunFiles, column, load_run
from latentlapse.core.timelapse.trends import SILHOUETTE_FORMED, Finding, smooth

DIAGNOSIS_TXT = "diagnosis.txt"
DIAGNOSIS_JSON = "diagnosis.json"

# ---------------------------------------------------------------------------------- thresholds
# The guide's early phase (epochs 1-25) shows "no structure yet" by design; before 10 epochs a
# warning would blame the model for not having trained, so none is raised.
MIN_EPOCHS_TO_JUDGE = 10
# The rule for "still low": judged after half the run or 50 epochs, whichever is first.
JUDGE_AFTER_FRACTION = 0.5
JUDGE_AFTER_EPOCHS = 50
# 5-NN balanced accuracy must reach halfway from chance (1/K) to perfect for clusters to count
# as formed: scale-free in the number of classes (0.625 for 4 classes, 0.75 for 2).
KNN_FORMED_FRACTION = 0.5
# "Most" of a class's validation points: at least half have their 5-NN majority in one other
# class, and more of them sit among that class than among their own.
EMBEDDED_SHARE = 0.5
# Overfitting: smoothed validation loss ends 10 % above its minimum, the rise is more than three
# robust standard deviations of the per-epoch noise, training accuracy rose 2 points since the
# minimum while validation accuracy stalled — it kept less than half of training's gain, so
# the gap between them widened — and the decline lasted at least 5 epochs and 10 % of the run
# (a brief bump before a learning-rate drop is not overfitting). The same pattern with a
# smaller (but above-noise) rise of the loss is reported as an early sign (info).
OVERFIT_LOSS_RISE = 0.10
OVERFIT_NOISE_FACTOR = 3.0
OVERFIT_TRAIN_GAIN = 0.02
OVERFIT_VAL_SHARE = 0.5
OVERFIT_MIN_TAIL = 5
OVERFIT_MIN_TAIL_FRACTION = 0.10
# Underfitting: training balanced accuracy (plain accuracy rewards predicting the majority)
# ends below 60 % of the way from chance to perfect (0.70 for 4 classes) and gained less than
# 5 points over the second half — the same model trained the same way will not get far.
UNDERFIT_FRACTION = 0.6
UNDERFIT_FLAT_GAIN = 0.05
# "Flat" is read over the second half of the run, which should span at least 10 epochs.
UNDERFIT_MIN_EPOCHS = 20


@dataclass(frozen=True)
class Diagnosis:
    """All findings of one run, with what they were read from."""

    run: str
    epochs_run: int
    total_epochs: int
    frame_epochs: tuple[int, ...]
    findings: tuple[Finding, ...]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def verdict(self) -> str:
        """One line: the warning signs, or that the model is learning well."""
        warnings = self.warnings
        if warnings:
            signs = f"{len(warnings)} warning sign{'s' if len(warnings) > 1 else ''}: " + "; ".join(f.title for f in warnings)
            if all(f.kind in shortfalls.KINDS for f in warnings) and any(f.severity == "good" for f in self.findings):
                return f"learning, but with {signs}"
            return signs
        if any(f.kind == "short_run" for f in self.findings):
            return "too early to judge: no warning sign yet, but the run is short"
        if any(f.severity == "good" for f in self.findings):
            return "model learning well: no warning signs (clusters forming, no class embedded, no over- or underfitting)"
        return "no warning signs, but no clear progress in the latent space either"


def diagnose(
    history_rows: Sequence[Row],
    metric_rows: Sequence[Row],
    class_names: Sequence[str],
    total_epochs: int,
    *,
    class_counts: Sequence[int] | None = None,
    config: Mapping | None = None,
    final: Mapping | None = None,
    terms: Terms = COMMAND_LINE,
) -> list[Finding]:
    """The guide's readings of one run.

    Parameters
    ----------
    history_rows : ``history.csv`` rows (``epoch``, ``train_acc``, ``val_loss``, ...).
    metric_rows : ``latent_metrics.csv`` rows, one per frame (may be empty).
    class_names : display names in class order (``HM/LM``); columns use their safe forms.
    total_epochs : the epochs the run was configured for ("half the run").
    class_counts : training sources per class before oversampling; a class is a *minority*
        inside another's cluster only when it is the smaller of the two (None: any class).
    config : the run's config, to quote current values in remedies.
    final : ``final_metrics.json`` (per-class precision of the best checkpoint), when the run has one.
    terms : how remedies name the settings (command-line flags, or the training loop's terms).
    """
    config = dict(config or {})
    frames = sorted((r for r in metric_rows if math.isfinite(r.get("epoch", math.nan))), key=lambda r: r["epoch"])
    history = [r for r in history_rows if math.isfinite(r.get("epoch", math.nan))]
    epochs_run = int(max((r["epoch"] for r in history), default=0))
    names = list(class_names)
    short = [safe_name(n) for n in names]
    findings = trends.readings(frames, names, short)
    if epochs_run < MIN_EPOCHS_TO_JUDGE:
        findings.append(Finding(
            "short_run", "info", f"Run of {epochs_run} epoch{'s' if epochs_run != 1 else ''} is too short to judge the warning signs",
            (f"clusters, embedded classes, over- and underfitting are judged from epoch {MIN_EPOCHS_TO_JUDGE} on",),
        ))
        return findings
    not_forming = _not_forming(frames, short, total_epochs)
    findings += not_forming or shortfalls.weak_structure(frames, *_structure_bar(frames, short, total_epochs))
    findings += _embedded(frames, names, short, class_counts, config, terms)
    overfit = _overfitting(history, config, final or {}, terms)
    findings += (overfit or _underfitting(history, len(names), terms)
                 or shortfalls.plateau(history, frames, config, final, terms=terms))
    findings += shortfalls.low_minority_precision(final or {}, names, class_counts, config, terms=terms)
    return findings


# ------------------------------------------------------------------------------- warning signs
def _structure_bar(frames: list[Row], short: list[str], total_epochs: int) -> tuple[int, float, float]:
    """(epoch judged from, balanced 5-NN accuracy of the last frame, the 5-NN accuracy formed clusters reach)."""
    judge_at = min(math.ceil(JUDGE_AFTER_FRACTION * total_epochs), JUDGE_AFTER_EPOCHS)
    chance = 1 / max(len(short), 1)
    knn_needed = chance + KNN_FORMED_FRACTION * (1 - chance)
    if not frames:
        return judge_at, math.nan, knn_needed
    last = frames[-1]
    own = [last.get(f"knn_to_{s}__{s}", math.nan) for s in short]
    knn = float(np.nanmean(own)) if np.isfinite(own).any() else last.get("knn_acc", math.nan)
    return judge_at, knn, knn_needed


def _not_forming(frames: list[Row], short: list[str], total_epochs: int) -> list[Finding]:
    """Silhouette and balanced 5-NN accuracy both still low after half the run or 50 epochs."""
    judge_at, knn, knn_needed = _structure_bar(frames, short, total_epochs)
    late = [f for f in frames if f["epoch"] >= judge_at]
    if not late:
        return []
    last = late[-1]
    chance = 1 / max(len(short), 1)
    silhouette = last.get("silhouette", math.nan)
    if not (math.isfinite(knn) or math.isfinite(silhouette)):
        return []
    low_silhouette = not silhouette > SILHOUETTE_FORMED
    low_knn = not knn >= knn_needed
    if not (low_silhouette and low_knn):
        return []
    epoch, first = int(last["epoch"]), frames[0]
    knn_shown, needed_shown = trends.apart(knn, knn_needed)
    evidence = (
        f"Epoch {epoch}: silhouette {silhouette:.2f} (epoch {int(first['epoch'])}: {first.get('silhouette', math.nan):.2f}); "
        f"{SILHOUETTE_FORMED:g} or less means no substantial cluster structure",
        f"Epoch {epoch}: 5-NN balanced accuracy {knn_shown} (chance {chance:.2f}; formed clusters reach "
        f"{needed_shown})",
        f"judged at the last frame from epoch {judge_at} on (half the run or {JUDGE_AFTER_EPOCHS} epochs)",
    )
    return [Finding("clusters_not_forming", "warning", f"Clusters not forming after {epoch} epochs", evidence,
                    "increase model capacity (a wider or deeper network); check the data quality "
                    "(labels, units, spectra dominated by noise)",
                    {"epoch": epoch, "silhouette": silhouette, "knn_balanced_acc": knn, "judged_from": judge_at})]


def _embedded(frames, names, short, class_counts, config, terms: Terms) -> list[Finding]:
    """Classes whose validation points mostly have another (larger) class's training neighbours."""
    if not frames:
        return []
    last = frames[-1]
    epoch = int(last["epoch"])
    findings = []
    for c, sc in enumerate(short):
        shares = [(last.get(f"knn_to_{sc}__{sd}", math.nan), d) for d, sd in enumerate(short) if d != c]
        shares = [(s, d) for s, d in shares if math.isfinite(s)]
        if not shares:
            continue
        share, d = max(shares)
        own = last.get(f"knn_to_{sc}__{sc}", math.nan)
        if not (share >= EMBEDDED_SHARE and not own >= share):
            continue
        if class_counts is not None and not class_counts[c] < class_counts[d]:
            continue
        recall = last.get(f"recall_{sc}", math.nan)
        breakdown = sorted(((last.get(f"knn_to_{sc}__{sd}", math.nan), names[k]) for k, sd in enumerate(short)),
                           key=lambda pair: -pair[0] if math.isfinite(pair[0]) else 0)
        evidence = [f"Epoch {epoch}: {share:.0%} of {names[c]}'s validation points have mostly {names[d]} training "
                    f"neighbours (5-NN in feature space)",
                    "their neighbours are mostly: " + ", ".join(f"{n} {v:.0%}" for v, n in breakdown if v > 0),
                    f"{names[c]} recall on the full validation split: {recall:.2f}"]
        if class_counts is not None:
            evidence.append(f"training sources before oversampling: {names[c]} {int(class_counts[c])}, "
                            f"{names[d]} {int(class_counts[d])}")
        target, gamma = config.get("oversample_target"), config.get("focal_gamma")
        if target is None or target < 1.0:
            now = f" (now {target}; 1.0 balances fully)" if target is not None else ""
            first = f"raise {terms('oversampling')}{now}, "
        else:
            first = f"oversampling is already full ({terms('oversample_target', target)}): "
        remedy = (first + f"use stronger augmentation of {names[c]}, or raise {terms('focal gamma')}"
                  f"{f' (now {gamma}, e.g. 3.0)' if gamma is not None else ''}")
        findings.append(Finding("minority_embedded", "warning", f"{names[c]} embedded in the {names[d]} cluster",
                                tuple(evidence), remedy,
                                {"class": names[c], "host": names[d], "share": share, "recall": recall, "epoch": epoch}))
    return findings


_RULE_WORDS = {"balanced": "highest validation balanced accuracy", "loss": "lowest validation loss",
               "last": "the one-cycle schedule's last epoch"}


def _best_pt_words(best: int, rule: str, final: Mapping) -> str:
    """What best.pt holds: the epoch the rule kept, or (``--refit``) that training repeated on every source."""
    refit = completed_refit(final)
    if refit:
        return (f"best.pt holds this training repeated on all {refit['sources']} labelled sources for the same "
                f"{refit['epochs']} epochs (--refit), the last kept")
    return f"best.pt holds epoch {best} ({_RULE_WORDS[rule]})"


def _overfitting(history: list[Row], config: Mapping, final: Mapping, terms: Terms) -> list[Finding]:
    """Validation loss bottomed out and climbed while training accuracy rose and validation stalled."""
    epochs = column(history, "epoch")
    n = len(epochs)
    loss = column(history, "val_loss")
    if n < MIN_EPOCHS_TO_JUDGE or not np.isfinite(loss).all():
        return []
    s_loss, s_train, s_val = (smooth(column(history, key)) for key in ("val_loss", "train_acc", "val_acc"))
    i = int(np.argmin(s_loss))
    if n - 1 - i < max(OVERFIT_MIN_TAIL, math.ceil(OVERFIT_MIN_TAIL_FRACTION * n)):
        return []
    rise = s_loss[-1] - s_loss[i]
    noise = 1.4826 * float(np.median(np.abs(loss - s_loss)))  # robust standard deviation of the jitter
    train_gain, val_gain = s_train[-1] - s_train[i], s_val[-1] - s_val[i]
    stalled = val_gain < OVERFIT_VAL_SHARE * train_gain
    if not (rise > OVERFIT_NOISE_FACTOR * noise and train_gain >= OVERFIT_TRAIN_GAIN and stalled):
        return []
    began, last = int(epochs[i]), int(epochs[-1])
    if rise < OVERFIT_LOSS_RISE * s_loss[i]:  # the pattern is there but the climb is still small: say so
        return [Finding("overfitting_onset", "info", f"Early sign of overfitting from about epoch {began}", (
            f"validation loss (5-epoch mean) {s_loss[i]:.4f} at epoch {began}, {s_loss[-1]:.4f} at epoch {last} "
            f"({rise / s_loss[i]:+.0%}; called overfitting from {OVERFIT_LOSS_RISE:+.0%})",
            f"training accuracy {s_train[i]:.3f} → {s_train[-1]:.3f} while validation accuracy {s_val[i]:.3f} → "
            f"{s_val[-1]:.3f}",
        ), values={"epoch": began, "val_loss_rise": rise / s_loss[i], "train_acc_gain": train_gain,
                   "val_acc_gain": val_gain})]
    rule = shortfalls.checkpoint_rule(final, config)
    best = int(final["best_epoch"]) if rule and final.get("best_epoch") else None
    evidence = (
        f"Epoch {began}: validation loss {s_loss[i]:.4f} (5-epoch mean), its minimum; epoch {last}: {s_loss[-1]:.4f} "
        f"(mean of the last {trends.SMOOTH_EPOCHS // 2 + 1} epochs, {rise / s_loss[i]:+.0%})",
        f"training accuracy {s_train[i]:.3f} → {s_train[-1]:.3f} ({train_gain:+.3f}) while validation accuracy "
        f"{s_val[i]:.3f} → {s_val[-1]:.3f} ({val_gain:+.3f}): the gap between them widened",
    ) + ((_best_pt_words(best, rule, final),) if best else ())
    wd = config.get("weight_decay")
    stopping = terms("epochs", began) + ("" if rule == "last" else f", or {terms('patience', 10)}")
    oversampling = ", or oversample less aggressively" if (config.get("oversample_target") or 0) > 0 else ""
    remedy = (f"stop early at about epoch {began} ({stopping}); regularise: raise {terms('weight decay')}"
              f"{f' (now {wd})' if wd is not None else ''}, use a smaller model{oversampling}")
    return [Finding("overfitting", "warning", f"Overfitting from about epoch {began}", evidence, remedy,
                    {"epoch": began, "val_loss_min": s_loss[i], "val_loss_last": s_loss[-1], "train_acc_gain": train_gain,
                     "val_acc_gain": val_gain, "best_epoch": best})]


def _underfitting(history: list[Row], n_classes: int, terms: Terms) -> list[Finding]:
    """Training (balanced) accuracy low at the end and flat over the second half of the run."""
    epochs = column(history, "epoch")
    n = len(epochs)
    key = "train_balanced_acc" if np.isfinite(column(history, "train_balanced_acc")).any() else "train_acc"
    values = smooth(column(history, key))
    if n < UNDERFIT_MIN_EPOCHS or not np.isfinite(values[[n // 2, -1]]).all():
        return []
    chance = 1 / max(n_classes, 2)
    needed = chance + UNDERFIT_FRACTION * (1 - chance)
    level, gain = values[-1], values[-1] - values[n // 2]
    if not (level < needed and gain < UNDERFIT_FLAT_GAIN):
        return []
    label = key.replace("_", " ").replace("train", "training").replace("acc", "accuracy")
    evidence = (
        f"{label} (5-epoch mean): epoch {int(epochs[0])} {values[0]:.3f}, epoch {int(epochs[n // 2])} "
        f"{values[n // 2]:.3f}, epoch {int(epochs[-1])} {level:.3f}",
        "ends at {}, below {} (60 % of the way from chance {:.2f} to perfect), and up only {:+.3f} over the second "
        "half".format(*trends.apart(level, needed, 3), chance, gain),
    )
    return [Finding("underfitting", "warning", "Underfitting: training accuracy low and flat", evidence,
                    f"use a bigger model (more capacity) and train longer; check {terms('learning rate')}",
                    {"metric": key, "level": level, "second_half_gain": gain, "needed": needed})]


# ------------------------------------------------------------------------------ run and files
def diagnose_run(run_dir: str | os.PathLike) -> Diagnosis:
    """Read a run folder and diagnose it (InputError when it is not a run)."""
    return diagnose_files(load_run(run_dir))


def diagnose_files(run: RunFiles) -> Diagnosis:
    """Diagnose an already loaded run."""
    names = run.class_names
    counts = (run.metadata.get("class_counts") or {}).get("train_before_oversampling")
    class_counts = [counts[n] for n in names] if counts and all(n in counts for n in names) else None
    terms = Terms(library=run.from_library)
    findings = _missing_frames(run, terms)
    findings += diagnose(run.history, run.metrics, names, run.total_epochs, class_counts=class_counts,
                         config=run.config, final=run.final, terms=terms)
    findings += _label_suspects(run.run_dir)
    return Diagnosis(run=run.name, epochs_run=len(run.history), total_epochs=run.total_epochs,
                     frame_epochs=tuple(run.frame_epochs), findings=tuple(findings))


def _missing_frames(run: RunFiles, terms: Terms) -> list[Finding]:
    """Scheduled frames the run lacks: the readings of the time-lapse then span fewer epochs."""
    missing = run.missing_frames
    if not missing:
        return []
    drawn = run.frame_epochs
    span = (f"the readings of the time-lapse below compare epochs {drawn[0]} to {drawn[-1]}, the first and last frames "
            f"drawn" if drawn else "no frame was drawn, so the time-lapse gives no readings")
    epochs = ", ".join(map(str, missing))
    return [Finding("frames_missing", "info", f"The time-lapse lacks the frame{'s' if len(missing) > 1 else ''} of "
                    f"epoch{'s' if len(missing) > 1 else ''} {epochs}",
                    ("the schedule gave them a frame but none was drawn: a second Ctrl-C skips the frames not yet "
                     "drawn, and a frame that failed is named in the run's log", span),
                    f"for the whole film, run {terms('same seed')} again", {"epochs": missing})]


def _label_suspects(run_dir: Path) -> list[Finding]:
    """The per-source dynamics' finding (its own module: :mod:`latentlapse.core.timelapse.dynamics_summary`)."""
    from latentlapse.core.timelapse.dynamics_summary import suspect_findings

    return suspect_findings(run_dir)


_MARKS = {"good": "[good]", "warning": "[WARNING]", "info": "[note]"}


def format_text(diagnosis: Diagnosis) -> str:
    """The diagnosis as the plain-text block printed at the end of a run and saved as diagnosis.txt."""
    frames = len(diagnosis.frame_epochs)
    lines = [f"Diagnosis of {diagnosis.run}: {diagnosis.epochs_run} of {diagnosis.total_epochs} epochs, "
             f"{frames} frame{'s' if frames != 1 else ''}",
             f"Verdict: {diagnosis.verdict}", ""]
    for finding in diagnosis.findings:
        lines.append(f"{_MARKS[finding.severity]} {finding.title}")
        lines += [f"    {line}" for line in finding.evidence]
        if finding.remedy:
            lines.append(f"    -> Solution: {finding.remedy}")
    return "\n".join(lines).rstrip() + "\n"


def to_json(diagnosis: Diagnosis) -> dict:
    """The diagnosis as plain JSON-ready values (``diagnosis.json``)."""
    out = dataclasses.asdict(diagnosis)
    out["verdict"] = diagnosis.verdict
    return out


def write_diagnosis(run_dir: str | os.PathLike, diagnosis: Diagnosis) -> tuple[Path, Path]:
    """Write ``diagnosis.txt`` and ``diagnosis.json`` atomically; returns both paths."""
    folder = Path(run_dir)
    text_path, json_path = folder / DIAGNOSIS_TXT, folder / DIAGNOSIS_JSON
    atomic.write_text(text_path, format_text(diagnosis))
    atomic.write_json(json_path, to_json(diagnosis))
    return text_path, json_path
