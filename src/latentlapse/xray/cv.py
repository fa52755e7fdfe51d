"""Stratified k-fold cross-validation of the train settings: ``latentlapse cv``.

Each fold trains exactly as a run does (:func:`latentlapse.xray.experiment.fit_on_split`: everything
fitted from data — imputation, scaling, oversampling, the epoch kept, the calibration — comes
from the fold's training rows, the epoch and calibration from an inner validation split of
them; under ``--refit``, the catalogue model's default, the model is then trained again on all
of them, as a run's best.pt is), then scores the held-out fold. With ``--baseline hgb`` scikit-learn's
``HistGradientBoostingClassifier(class_weight='balanced')`` is trained on the same folds and
exactly the model's inputs before its scaler (for a catalogue, the fold's feature schema applied
to every row), so the two columns of the summary are directly comparable.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from latentlapse.core import atomic, evaluation, rng
from latentlapse.xray import calibration
from latentlapse.xray.config import TrainConfig
from latentlapse.core.errors import UsageError

log = logging.getLogger(__name__)

BASELINES = ("hgb",)
METRICS = ("acc", "balanced_acc", "macro_f1")


def fold_indices(y: np.ndarray, folds: int, seed: int,
                 class_names: list[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled (train, test) row indices of ``folds`` folds; the seed's ``split``
    stream fixes them. Raises UsageError when a class (named from ``class_names``) has fewer
    sources than folds."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise UsageError(f"--folds must be at least 2, got {folds}")
    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() < folds:
        smallest = int(np.flatnonzero(counts == present.min())[0])
        name = class_names[smallest] if class_names else f"class {smallest}"
        raise UsageError(f"--folds {folds}: {name} has only {present.min()} sources, fewer than the folds; "
                         f"use --folds {max(int(present.min()), 2)} or fewer, or a coarser --classes")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=rng.int_seed(seed, "split") % 2**32)
    return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y)]


def hgb_proba(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, seed: int) -> np.ndarray:
    """The gradient-boosting baseline's class probabilities (missing values handled natively)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(class_weight="balanced", random_state=rng.int_seed(seed, "init") % 2**32)
    model.fit(X_train, y_train)
    proba = np.zeros((len(X_test), int(y_train.max()) + 1))
    proba[:, model.classes_] = model.predict_proba(X_test)
    return proba


def cross_validate(config: TrainConfig, folds: int = 5, baseline: str | None = None,
                   split_seed: int | None = None) -> dict:
    """Train and score ``folds`` folds; returns per-fold and mean/std metrics (see :func:`summary_text`).

    The folds come from ``split_seed`` when given, else from ``config.seed``: a fixed
    ``split_seed`` compares model seeds (or settings) on the same folds.
    """
    from latentlapse.xray.data.taxonomy import apply_scheme, scheme
    from latentlapse.xray.experiment import fit_on_split
    from latentlapse.xray.pipeline import resolve_device
    from latentlapse.xray.prepare import load_data

    if baseline is not None and baseline not in BASELINES:
        raise UsageError(f"--baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    device = resolve_device(config.device)  # as train: auto is cuda when there is one
    dataset, _ = load_data(config)
    labelled, y = apply_scheme(dataset, config.classes)
    names = list(scheme(config.classes).names)
    split_seed = config.seed if split_seed is None else split_seed
    splits = fold_indices(y, folds, split_seed, names)
    models: dict[str, list[dict]] = {"latentlapse": []}
    if baseline:
        models[baseline] = []
    held_out: dict[str, list] = {"y": [], "raw": [], "calibrated": [], "floor": []}
    floor_rng = rng.generator(config.seed, "metrics")
    choice = None  # the first fold's thread choice, kept for the others
    refit = False
    for k, (train, test) in enumerate(splits, start=1):
        started = time.perf_counter()
        result = fit_on_split(config, labelled, y, train, test, device=device, thread_choice=choice)
        refit = result.refit
        if choice is None:
            from latentlapse.core.threads import describe

            choice = result.threads
            log.info(describe(choice))
        fold = {**result.metrics, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                "seconds": round(time.perf_counter() - started, 1)}
        raw = calibration.softmax(result.logits)
        fold["ece_raw"] = calibration.ece(raw, y[test])
        fold["ece_calibrated"] = calibration.ece(result.calibrated, y[test])
        fold["ece_floor"] = calibration.ece_floor(result.calibrated, floor_rng)
        for key, value in (("y", y[test]), ("raw", raw), ("calibrated", result.calibrated)):
            held_out[key].append(value)
        fold["nll_raw"] = calibration.nll(raw, y[test], len(names))
        fold["nll_calibrated"] = calibration.nll(result.calibrated, y[test], len(names))
        for point, proba in result.operating_points.items():
            fold[f"{point}_priors"] = evaluation.scores(y[test], proba.argmax(axis=1), len(names))
        models["latentlapse"].append(fold)
        line = f"fold {k}/{folds}: accuracy {fold['acc']:.4f}, balanced accuracy {fold['balanced_acc']:.4f}"
        if baseline:
            X = result.inputs.X  # the fold's schema applied to every row
            proba = hgb_proba(X[train], y[train], X[test], config.seed)
            models[baseline].append({**evaluation.report(y[test], proba.argmax(axis=1), names),
                                     "ece_raw": calibration.ece(proba, y[test])})
            line += f"; {baseline} {models[baseline][-1]['acc']:.4f} / {models[baseline][-1]['balanced_acc']:.4f}"
        log.info(line)
    summaries = {name: summarise(rows, names) for name, rows in models.items()}
    if held_out["y"]:  # every source scored once, by the fold that held it out
        y_all = np.concatenate(held_out["y"])
        summaries["latentlapse"]["ece_pooled"] = {
            "raw": calibration.ece(np.vstack(held_out["raw"]), y_all),
            "calibrated": calibration.ece(np.vstack(held_out["calibrated"]), y_all),
            "floor": calibration.ece_floor(np.vstack(held_out["calibrated"]), floor_rng)}
    return {
        "data": labelled.source,
        "n_sources": int(len(y)),
        "n_features": labelled.n_features,
        "class_names": names,
        "class_counts": dict(zip(names, np.bincount(y, minlength=len(names)).tolist())),
        "folds": folds,
        "seed": config.seed,
        "split_seed": split_seed,
        "refit": bool(refit),
        "config": config.to_dict(),
        "models": {name: {"folds": rows, "summary": summaries[name]} for name, rows in models.items()},
    }


def summarise(rows: list[dict], names: list[str]) -> dict:
    """Mean and (population) standard deviation over folds of every score and per-class score."""
    def stat(values):
        values = np.asarray(values, dtype=np.float64)
        return {"mean": float(values.mean()), "std": float(values.std())}

    out = {key: stat([r[key] for r in rows]) for key in (*METRICS, "ece_raw", "ece_calibrated", "ece_floor",
                                                             "nll_raw", "nll_calibrated") if key in rows[0]}
    for point in ("balanced_priors", "train_priors"):
        if point in rows[0]:
            out[point] = {key: stat([r[point][key] for r in rows]) for key in METRICS}
    out["per_class"] = {name: {key: stat([r["per_class"][name][key] for r in rows]) for key in ("precision", "recall", "f1")}
                        for name in names}
    return out


def _folds_from(result: dict) -> str:
    split_seed = result.get("split_seed", result["seed"])
    return "" if split_seed == result["seed"] else f", folds from seed {split_seed}"


def summary_text(result: dict) -> str:
    """The printed table: mean ± std over folds per metric and per class, models side by side."""
    models = result["models"]
    columns = list(models)
    rows = [(label, key, [models[m]["summary"].get(key) for m in columns])
            for label, key in (("accuracy", "acc"), ("balanced accuracy", "balanced_acc"), ("macro-F1", "macro_f1"),
                               ("ECE raw", "ece_raw"), ("ECE calibrated", "ece_calibrated"),
                               ("ECE floor (calibrated)", "ece_floor"))]
    rows = [row for row in rows if any(s is not None for s in row[2])]
    points = [(f"at {point.replace('_', ' ')}", models["latentlapse"]["summary"].get(point))
              for point in ("balanced_priors", "train_priors")]
    points = [(label, summary) for label, summary in points if summary]
    # the label column fits the longest label printed (a row's, a class's after its indent)
    width = max([len(n) + 12 for n in result["class_names"]] + [len(row[0]) + 2 for row in rows]
                + [len(label) + 2 for label, _ in points])

    def cell(stat) -> str:
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"

    lines = [f"{result['folds']}-fold stratified cross-validation of {result['data']} ({result['n_sources']} sources, "
             f"{result['n_features']} feature columns), seed {result['seed']}{_folds_from(result)}; mean ± std "
             f"(population) over folds",
             "latentlapse: the raw network's top class (predict --uncalibrated --priors model)"
             + ("; each fold's model refit on all its training rows" if result.get("refit") else "")
             + "; 'at ... priors': calibrated, re-weighted to those priors",
             f"{'':<{width}}" + "".join(f"{name:>22}" for name in columns)]
    for label, _, stats in rows:
        lines.append(f"{label:<{width}}" + "".join(f"{cell(s) if s else '-':>22}" for s in stats))
    pooled = models["latentlapse"]["summary"].get("ece_pooled")
    if pooled:
        lines.append(f"ECE of all held-out sources together: raw {pooled['raw']:.4f}, calibrated {pooled['calibrated']:.4f} "
                     f"(floor {pooled['floor']:.4f})")
    for label, summary in points:
        lines.append(f"{label:<{width}}{'acc ' + cell(summary['acc']):>26}  bal.acc {cell(summary['balanced_acc'])}")
    lines.append("recall per class:")
    for name in result["class_names"]:
        lines.append(f"  {name:<{width - 2}}" + "".join(
            f"{cell(models[m]['summary']['per_class'][name]['recall']):>22}" for m in columns))
    lines.append("F1 per class:")
    for name in result["class_names"]:
        lines.append(f"  {name:<{width - 2}}" + "".join(
            f"{cell(models[m]['summary']['per_class'][name]['f1']):>22}" for m in columns))
    return "\n".join(lines)


def write_json(path: str, result: dict) -> Path:
    """The full result (per fold and summary) as JSON, atomically."""
    target = Path(path)
    atomic.write_text(target, json.dumps(result, indent=1) + "\n")
    return target
