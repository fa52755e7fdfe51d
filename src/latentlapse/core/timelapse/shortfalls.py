"""What holds back a run that is learning: a plateau, weak cluster structure, low minority precision.

The guide's warning signs (clusters not forming, an embedded minority, over- and underfitting)
catch runs that fail. A run can pass all four and still stop improving a third of the way in,
keep a silhouette under the line ``metrics.png`` draws at 0.25, or buy the recall of its rare
classes with their precision. Each of these is a warning with its evidence — and, wherever a
sentence sets two numbers side by side that a reader could expect to agree, the reason they
can differ — and a remedy, so that the verdict never calls such a run "learning well".
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core.timelapse.remedy_terms import COMMAND_LINE, Terms
from latentlapse.core.timelapse.runfiles import Row, column
from latentlapse.core.timelapse.trends import SILHOUETTE_FORMED, Finding, apart, smooth

# A plateau: the best epoch (the one best.pt holds) lies at least 20 epochs and a third of the
# run before the end, and the smoothed validation balanced accuracy never rose more than one
# point above its value there — the later epochs only cost time.
PLATEAU_MIN_EPOCHS = 20
PLATEAU_MIN_FRACTION = 1 / 3
PLATEAU_TOLERANCE = 0.01
# The patience the remedy suggests: long enough to ride out the validation noise of a few
# hundred sources and one or two learning-rate cuts (ReduceLROnPlateau waits 5 epochs each).
SUGGESTED_PATIENCE = 20
# A learning rate that fell a hundredfold no longer changes the model much.
LR_COLLAPSE = 100.0
# Precision of a minority class counts as low under 0.6: fewer than 3 in 5 of the sources the
# model calls that class are of it (the run: NS 0.33, YSO/CV 0.56).
LOW_PRECISION = 0.6

# The kinds of warning a run that is learning can still show (the verdict weighs them apart
# from the guide's warning signs, which say the run is failing).
KINDS = ("plateau", "weak_structure", "low_minority_precision")


def checkpoint_rule(final: Mapping, config: Mapping) -> str | None:
    """How the run chose ``best.pt``: ``balanced`` (validation balanced accuracy), ``loss``
    (validation loss) or ``last`` (the one-cycle schedule's last epoch), from final_metrics.json's
    ``evaluated`` (else the config's schedule); None where there is no best.pt or it is not known
    (a library run, or a run without final metrics)."""
    evaluated = str((final or {}).get("evaluated", ""))
    if evaluated.startswith("best checkpoint"):
        for words, rule in (("balanced accuracy", "balanced"), ("validation loss", "loss"), ("last epoch", "last")):
            if words in evaluated:
                return rule
    return "last" if config.get("schedule") == "onecycle" else None


def plateau(history: Sequence[Row], frames: Sequence[Row], config: Mapping, final: Mapping | None = None, *,
            terms: Terms = COMMAND_LINE) -> list[Finding]:
    """Validation balanced accuracy stopped improving long before the end of the run (``terms``:
    how the remedy names the settings)."""
    if config.get("patience"):
        return []  # the run already stops on its own when validation stalls
    epochs = column(history, "epoch")
    balanced = column(history, "val_balanced_acc")
    n = len(epochs)
    if n == 0 or not np.isfinite(balanced).any():
        return []
    b = int(np.nanargmax(balanced))
    after = n - 1 - b
    if after < max(PLATEAU_MIN_EPOCHS, math.ceil(PLATEAU_MIN_FRACTION * n)):
        return []
    smoothed = smooth(balanced)
    if np.nanmax(smoothed[b:]) > smoothed[b] + PLATEAU_TOLERANCE:
        return []
    best, last = int(epochs[b]), int(epochs[-1])
    rule = checkpoint_rule(final or {}, config)
    kept = ", kept in best.pt" if rule == "balanced" else ""
    evidence = [f"validation balanced accuracy peaked at epoch {best} ({balanced[b]:.4f}{kept}); "
                f"epoch {last}: {balanced[-1]:.4f}; the {after} epochs after the peak ({after / n:.0%} of the run) "
                f"brought no gain"]
    seconds = column(history, "seconds")[b + 1:]
    values = {"epoch": best, "epochs_after": after, "best": float(balanced[b]), "last": float(balanced[-1])}
    if np.isfinite(seconds).any():
        values["seconds_after"] = float(np.nansum(seconds))
        evidence.append(f"they took {_duration(values['seconds_after'])} of training")
    errors = [(int(f["epoch"]), f.get("val_errors", math.nan)) for f in frames if f["epoch"] >= best]
    errors = [(e, v) for e, v in errors if math.isfinite(v)]
    if len(errors) >= 2:
        evidence.append(f"validation errors (full split): {int(errors[0][1])} at epoch {errors[0][0]}, "
                        f"{int(errors[-1][1])} at epoch {errors[-1][0]}; a larger fall since the first frame, "
                        f"where the diagnosis reports one, happened before the peak")
    lr = column(history, "lr")
    if np.isfinite(lr[[b, -1]]).all() and 0 < lr[-1] < lr[b]:
        values["lr_fall"] = fall = float(lr[b] / lr[-1])
        collapsed = fall >= LR_COLLAPSE
        evidence.append(f"the learning rate fell {'' if collapsed else f'{fall:.3g}× '}from {lr[b]:.2g} at epoch "
                        f"{best} to {lr[-1]:.2g} (cut each time the validation loss stalled)"
                        f"{', so the late updates hardly moved the weights' if collapsed else ''}")
    train = smooth(column(history, "train_acc"))
    if np.isfinite(train[[b, -1]]).all() and train[-1] - train[b] >= 0.01:
        evidence.append(f"training accuracy (5-epoch mean) still rose {train[b]:.3f} → {train[-1]:.3f}: the two can "
                        f"differ because the model kept fitting the training sources and their oversampled copies, "
                        f"a gain that did not carry over to sources it had not seen")
    stop, chosen = patience_stop(balanced, SUGGESTED_PATIENCE)
    if rule == "last":
        remedy = (f"the one-cycle schedule runs {terms('all epochs')} and keeps the last: {terms('epochs', best)} would "
                  f"anneal and end there")
    elif rule == "loss":
        remedy = (f"stop when validation stalls: {terms('patience', SUGGESTED_PATIENCE)} (for this model it watches the "
                  f"validation loss, which also chooses best.pt)")
    else:
        stopping = (terms("patience", SUGGESTED_PATIENCE) if rule == "balanced"
                    else f"early stopping after {SUGGESTED_PATIENCE} epochs without gain")
        keeps = "best.pt from" if rule == "balanced" else "its best at"
        remedy = (f"stop when validation stalls: {stopping} would have ended this run at epoch {int(epochs[stop])} "
                  f"instead of {last}, with {keeps} epoch {int(epochs[chosen])} ({balanced[chosen]:.4f})")
        values.update(patience_stop=int(epochs[stop]), patience_best=int(epochs[chosen]))
    return [Finding("plateau", "warning", f"Validation stopped improving after epoch {best} "
                    f"({after} of {n} epochs without gain)", tuple(evidence), remedy, values)]


def patience_stop(scores: np.ndarray, patience: int) -> tuple[int, int]:
    """(index of the epoch a run with ``--patience`` stops at, index of its best epoch) — the
    rule of the training loop: stop after ``patience`` epochs without a higher score."""
    best_index, best, waited = 0, -math.inf, 0
    for i, score in enumerate(scores):
        if score > best:
            best, best_index, waited = score, i, 0
        else:
            waited += 1
            if waited >= patience:
                return i, best_index
    return len(scores) - 1, best_index


def weak_structure(frames: Sequence[Row], judge_at: int, knn: float, knn_needed: float) -> list[Finding]:
    """Silhouette at or under the structure line although 5-NN accuracy says the classes are
    separable (when both are low, the guide's "clusters not forming" applies instead)."""
    late = [f for f in frames if f["epoch"] >= judge_at and math.isfinite(f.get("silhouette", math.nan))]
    if not late:
        return []
    last = late[-1]
    silhouette, epoch = last["silhouette"], int(last["epoch"])
    if silhouette > SILHOUETTE_FORMED:
        return []
    values = [f["silhouette"] for f in late]
    shown, line = apart(silhouette, SILHOUETTE_FORMED)
    knn_shown, needed_shown = apart(knn, knn_needed)
    evidence = (
        f"Epoch {epoch}: silhouette {shown}, under the line at {SILHOUETTE_FORMED:g} marked \"structure\" "
        f"in metrics.png ({SILHOUETTE_FORMED:g} or less: no substantial cluster structure); from epoch "
        f"{int(late[0]['epoch'])} on it stayed between {min(values):.2f} and {max(values):.2f}",
        f"yet 5-NN balanced accuracy is {knn_shown} (formed clusters reach {needed_shown}; the frames show plain 5-NN "
        f"accuracy, {last.get('knn_acc', math.nan):.2f}, which the large classes lift): the two can differ because "
        f"5-NN asks only whether a source's nearest neighbours share its class, while the silhouette weighs its "
        f"distance to its whole class against the nearest other class — classes that touch, or stretch into arms, "
        f"pass the first and fail the second",
        "the frames can still look clustered: t-SNE and UMAP draw neighbourhoods and exaggerate the gaps between them",
    )
    remedy = ("the network separates the classes at its decision boundaries without gathering them into compact "
              "clusters: give it more capacity (a wider or deeper network) or more epochs at a useful learning rate; "
              "where classes overlap in the data themselves (stars and YSO/CV spectra), better inputs help more")
    return [Finding("weak_structure", "warning", f"Weak cluster structure: silhouette {shown}, under the "
                    f"{line} structure line", evidence, remedy,
                    {"epoch": epoch, "silhouette": silhouette, "knn_balanced_acc": knn, "line": SILHOUETTE_FORMED})]


def low_minority_precision(final: Mapping, names: Sequence[str], class_counts: Sequence[int] | None,
                           config: Mapping, *, terms: Terms = COMMAND_LINE) -> list[Finding]:
    """Rare classes whose calls the best checkpoint gets wrong too often: precision under
    LOW_PRECISION. The reason and remedy follow the numbers: a class called more often than it
    occurs bought its recall with precision (oversampling, loss weights); one called no more often
    than it occurs is confused with others both ways, and less oversampling would only cut its
    recall (``terms``: how the remedy names the settings)."""
    per_class = final.get("per_class") or {}
    matrix = np.asarray(final.get("confusion_matrix") or [], dtype=np.int64)
    if not per_class or matrix.shape != (len(names), len(names)) or class_counts is None:
        return []
    largest = max(class_counts)
    low = [c for c, name in enumerate(names)
           if class_counts[c] < largest and matrix[:, c].sum() > 0
           and per_class.get(name, {}).get("precision", math.nan) < LOW_PRECISION]
    if not low:
        return []
    total, evidence = int(matrix.sum()), []
    for c in low:
        name, called, found, support = names[c], int(matrix[:, c].sum()), int(matrix[c, c]), int(matrix[c].sum())
        wrong = [(int(matrix[d, c]), names[d]) for d in range(len(names)) if d != c and matrix[d, c] > 0]
        mostly = ", ".join(f"{count} {other}" for count, other in sorted(wrong, reverse=True))
        recall = (f"recall {found / support:.2f} ({found} of its {support})" if support
                  else "no recall (no validation source of its own)")
        evidence.append(f"{name}: precision {per_class[name]['precision']:.2f} ({found} of the {called} validation "
                        f"sources called {name} are {name}; the others: {mostly}), {recall}")
    # precision < recall exactly when a class is called more often than it occurs
    traded = [c for c in low if matrix[:, c].sum() > matrix[c].sum()]
    confused = [c for c in low if c not in traded]
    target = config.get("oversample_target")
    remedies = []
    if traded:
        cause = (f"oversampling ({terms('oversample_target', target)}) trained on rare classes nearly as often as "
                 f"on the largest (each grown to {target:g}× the largest's size, the loss weights making up the rest)"
                 if target else "the loss weights favour rare classes")
        evidence.append(f"precision can be this far under recall because {cause}, so the model calls "
                        f"{_named(traded, names)} more often than {_occur(traded)} ({_calls(traded, matrix, names)}), "
                        f"while the validation split keeps the real proportions (of {total}): a small share of a "
                        f"large class called rare outnumbers the rare sources themselves")
        remedies.append(f"the price of oversampling: lower {terms('oversampling')} (now {target}; e.g. 0.5) to trade "
                        f"some of the recall of {_named(traded, names)} back for precision" if target
                        else terms("class weights", config.get("alpha", "auto")))
    if confused:
        less = f", and less oversampling would cut {'its' if len(confused) == 1 else 'their'} recall further"
        evidence.append(f"{_named(confused, names)} {'is' if len(confused) == 1 else 'are'} called no more often than "
                        f"{_occur(confused)} ({_calls(confused, matrix, names)}), so the low precision is not bought "
                        f"with recall: the model confuses {'it' if len(confused) == 1 else 'them'} with other classes "
                        f"both ways{less if target else ''}")
        remedies.append(f"the model does not yet tell {_named(confused, names)} apart from the classes it mixes "
                        f"{'it' if len(confused) == 1 else 'them'} with: more epochs or capacity, more labelled sources "
                        f"of {'it' if len(confused) == 1 else 'them'}, or better inputs where the classes overlap in "
                        f"the data")
    check = f"require a higher probability{terms('probabilities')} before trusting a rare-class call"
    remedy = "; ".join(remedies) + (f"; until then, {check}" if confused else f", or {check}")
    shown = ", ".join(f"{names[c]} {per_class[names[c]]['precision']:.2f}" for c in low)
    return [Finding("low_minority_precision", "warning", f"Low precision of minority classes: {shown}",
                    tuple(evidence), remedy,
                    {"classes": [names[c] for c in low],
                     "precision": [per_class[names[c]]["precision"] for c in low]})]


def _named(classes: Sequence[int], names: Sequence[str]) -> str:
    return " and ".join(names[c] for c in classes)


def _occur(classes: Sequence[int]) -> str:
    return "it occurs" if len(classes) == 1 else "they occur"


def _calls(classes: Sequence[int], matrix: np.ndarray, names: Sequence[str]) -> str:
    """"NAME: C calls for S sources" of each class, from the confusion matrix (rows true, columns called)."""
    return ", ".join(f"{names[c]}: {int(matrix[:, c].sum())} calls for {int(matrix[c].sum())} sources"
                     for c in classes)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
