"""Stratified k-fold cross-validation of the catalogue MLP on any table, next to gradient boosting.

Any CSV/FITS/VOTable catalogue: ``--data FILE`` (default: the real Chandra catalogue
``muwclass_cscv2_td_2022.csv`` of Yang et al. 2022, ApJ 941, 104, 2941 labelled sources, read in
place from the shared data folder — it has no licence, so it is never copied into the project;
the script says so and exits when it is absent), ``--label_column``, ``--features A,B,C`` (or
``+A,B`` for the default features plus A and B), ``--exclude``, ``--missing``, ``--placeholder``.

Every fold goes through the same code path as a training run (``experiment.fit_on_split`` ->
``prepare.prepare_split``): the feature schema — imputation medians, missing indicators, log10
choice, scaling — is fitted on the training rows of the fold only (the MLP's epoch is chosen on a
stratified 20 % of them), never on the test fold. The baselines train on the whole training fold
with exactly the MLP's inputs before its scaler (the fold's schema applied to every row):
scikit-learn's ``HistGradientBoostingClassifier(class_weight='balanced')`` and, with ``--rf``, a
balanced random forest.

Default features leave out sky position (``CSCv2_RA``/``CSCv2_DEC``), the positional error
``CSCv2_PU`` and the detection significance ``CSCv2_S/N`` (see the guide); ``--features
+CSCv2_RA,CSCv2_DEC`` puts position back, to measure what it is worth.

Published reference (shared catalogue, 4 classes): the authors' random forest, leave-one-out,
accuracy 0.910, balanced accuracy 0.886 (their own feature engineering).

Run: ``python bench/catalog_cv.py [--data FILE] [--classes 4] [--seeds 42 1 2] [--folds 5] [--epochs 100]
[--features +CSCv2_RA,CSCv2_DEC] [--rf]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs, table  # noqa: E402

from latentlapse import evaluation  # noqa: E402
from latentlapse.config import MISSING_POLICIES, TrainConfig  # noqa: E402
from latentlapse.data.readers import load_dataset  # noqa: E402
from latentlapse.data.taxonomy import apply_scheme, safe_name, scheme  # noqa: E402
from latentlapse.experiment import fit_on_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED_DATA / "catalogs" / "muwclass_cscv2_td_2022.csv"
PUBLISHED = {"acc": 0.910, "balanced_acc": 0.886}
MLP = "MLP (latentlapse)"
HGB = "HistGradientBoosting, balanced"
RF = "RF, balanced class weights"


def baseline_scores(name: str, X_train, y_train, X_test, y_test, n_classes: int, seed: int) -> dict[str, float]:
    """Accuracy and balanced accuracy of a scikit-learn baseline trained on the fold's training rows."""
    if name == HGB:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    else:
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=500, class_weight="balanced", random_state=seed, n_jobs=1)
    model.fit(X_train, y_train)
    return evaluation.scores(y_test, model.predict(X_test), n_classes)


def cross_validate(labelled, y, args, config: TrainConfig, seed: int) -> dict[str, tuple[float, float]]:
    """One k-fold cross-validation with ``seed`` (folds, MLP and baselines): per-fold table printed,
    each model's mean (accuracy, balanced accuracy) over the folds returned."""
    from sklearn.model_selection import StratifiedKFold

    names = scheme(args.classes).names
    n = args.classes
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    models = [MLP, HGB] + ([RF] if args.rf else [])
    runs: dict[str, list] = {m: [] for m in models}
    recalls, rows = [], []
    for k, (train, test) in enumerate(folds, start=1):
        start = time.perf_counter()
        result = fit_on_split(config, labelled, y, train, test)
        seconds = time.perf_counter() - start
        runs[MLP].append({key: result.metrics[key] for key in ("acc", "balanced_acc")})
        recalls.append([result.metrics["per_class"][c]["recall"] for c in names])
        X = result.inputs.X  # every row through the schema fitted on this fold's training rows
        for m in models[1:]:
            runs[m].append(baseline_scores(m, X[train], y[train], X[test], y[test], n, seed))
        rows.append([k, *(f"{runs[m][-1]['acc']:.3f} / {runs[m][-1]['balanced_acc']:.3f}" for m in models),
                     *(f"{r:.2f}" for r in recalls[-1]), result.best_epoch, f"{seconds:.0f}"])
    print(f"\nseed {seed}:")
    print(table(["fold", *(f"{m.split(',')[0]} acc / bal" for m in models),
                 *(f"MLP rec {safe_name(c)[:8]}" for c in names), "best ep", "MLP s"], rows))
    print("MLP recall per class (mean over folds): "
          + ", ".join(f"{c} {r:.2f}" for c, r in zip(names, np.mean(recalls, axis=0))), flush=True)
    return {m: (statistics.mean(s["acc"] for s in scores), statistics.mean(s["balanced_acc"] for s in scores))
            for m, scores in runs.items()}


def _features(text: str | None, args) -> tuple[str, ...] | None:
    """``--features``: None (the default), a list, or ``+A,B`` = the default features plus A and B."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.lstrip("+").split(",") if n.strip())
    if not text.startswith("+"):
        return names
    default = load_dataset(args.data, label_column=args.label_column, exclude=args.exclude,
                           placeholders=args.placeholder, missing=args.missing)
    return tuple(default.feature_names) + tuple(n for n in names if n not in default.feature_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CATALOG, help="a catalogue table (CSV, FITS, VOTable)")
    parser.add_argument("--label_column", default=None)
    parser.add_argument("--features", default=None, help="A,B,C; or +A,B for the default features plus A and B")
    parser.add_argument("--exclude", type=lambda t: tuple(n for n in t.split(",") if n), default=())
    parser.add_argument("--placeholder", type=lambda t: tuple(float(v) for v in t.split(",")), default=())
    parser.add_argument("--missing", choices=MISSING_POLICIES, default="indicator")
    parser.add_argument("--classes", type=int, choices=(2, 4, 8), default=4)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2],
                        help="one cross-validation per seed (its folds and training); medians are reported")
    parser.add_argument("--oversample_target", type=float, default=0.7)
    parser.add_argument("--rf", action="store_true", help="also a balanced random forest (500 trees)")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} is absent (the shared catalogue is used in place and never copied into the "
              f"project; set LATENTLAPSE_SHARED_DATA to the folder that holds catalogs/, or pass --data)")
        return
    quiet_logs()
    # The MLP is tiny: on a shared 2-core machine one thread is as fast and never stalls waiting
    # for a second core that another process holds (the scores do not depend on it).
    import torch

    torch.set_num_threads(1)
    features = _features(args.features, args)
    dataset = load_dataset(args.data, label_column=args.label_column, features=features, exclude=args.exclude,
                           placeholders=args.placeholder, missing=args.missing)
    labelled, y = apply_scheme(dataset, args.classes)
    names = scheme(args.classes).names
    print(f"{args.data.name}: {len(labelled)} sources; features ({labelled.n_features}): "
          f"{', '.join(labelled.feature_names)}; classes "
          + ", ".join(f"{c} {k}" for c, k in zip(names, np.bincount(y, minlength=args.classes))))
    left = ", ".join(f"{n} ({why})" for n, why in labelled.left_out if not why.startswith("quoted error"))
    print(f"left out: {left or 'none'}")
    print(f"MLP: {args.epochs} epochs, oversampling to {args.oversample_target:g} x majority, focal gamma "
          f"{TrainConfig().focal_gamma:g}, missing '{args.missing}', best epoch chosen on 20% of each training fold; "
          f"schema fitted on the training rows of each fold; {args.folds}-fold CV for each seed of {args.seeds}")

    results = []
    for seed in args.seeds:
        config = TrainConfig(classes=args.classes, epochs=args.epochs, seed=seed, oversample_target=args.oversample_target,
                             data=str(args.data), label_column=args.label_column, features=features,
                             exclude=args.exclude, placeholders=args.placeholder, missing=args.missing)
        results.append(cross_validate(labelled, y, args, config, seed))
    print()
    summary = []
    for name in results[0]:
        acc = [r[name][0] for r in results]
        bal = [r[name][1] for r in results]
        summary.append([name, f"{statistics.median(acc):.3f} ({min(acc):.3f}-{max(acc):.3f})",
                        f"{statistics.median(bal):.3f} ({min(bal):.3f}-{max(bal):.3f})"])
    if args.data.resolve() == CATALOG.resolve() and args.classes == 4:
        summary.append(["published RF (Yang+22, LOO, own features)", f"{PUBLISHED['acc']:.3f}",
                        f"{PUBLISHED['balanced_acc']:.3f}"])
    print(table(["model", f"accuracy: median (range) over {len(args.seeds)} seeds of {args.folds}-fold means",
                 "balanced accuracy"], summary))


if __name__ == "__main__":
    main()
