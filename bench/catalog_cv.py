"""5-fold stratified cross-validation on the real Chandra catalogue: the MLP vs random forests.

Data: ``muwclass_cscv2_td_2022.csv`` (Yang et al. 2022, ApJ 941, 104; 2941 labelled sources),
read in place from the shared data folder — it has no licence, so it is never copied into the
project; the script says so and exits when the file is absent. Classes: the 4-class scheme
(AGN | HM/LM stars | YSO/CV | NS/XRBs).

Published reference: the authors' random forest, leave-one-out, grouped into these 4 classes:
accuracy 0.910, balanced accuracy 0.886 (their own feature engineering). As a same-run
reference, scikit-learn's ``RandomForestClassifier`` is trained on exactly our features (same
missing-value handling: median fill plus a 0/1 ``<column>_missing`` indicator) and folds.

Features (``--features physical``, the default here): the source's physical measurements only —
X-ray fluxes in the soft/medium/hard/broad bands, the intra- and inter-observation variability
probabilities, Gaia/2MASS/WISE magnitudes, parallax, proper motion and the Bailer-Jones distance
(with its bounds). Left out, because they describe the observation rather than the source: sky
position (``CSCv2_RA``/``CSCv2_DEC`` — training sets are clustered on the sky, e.g. YSOs in
star-forming regions, so position leaks the label and does not transfer), the positional
uncertainty ``CSCv2_PU`` (off-axis angle) and the detection significance ``CSCv2_S/N`` (exposure
time). ``--features all`` uses every numeric column, the reader's default, for comparison.

The MLP's epoch is chosen on a stratified 20 % of each training fold (never on the test fold);
the forests train on the whole training fold.

Each seed draws its own folds and trains its own models; the medians over seeds are the figures.

Run: ``python bench/catalog_cv.py [--seeds 42 1 2] [--folds 5] [--epochs 100] [--oversample_target 0.7]
[--features physical|all]`` (about a minute).
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
from latentlapse.config import TrainConfig  # noqa: E402
from latentlapse.data.readers import load_dataset  # noqa: E402
from latentlapse.data.taxonomy import apply_scheme, safe_name, scheme  # noqa: E402
from latentlapse.experiment import fit_on_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED_DATA / "catalogs" / "muwclass_cscv2_td_2022.csv"
PUBLISHED = {"acc": 0.910, "balanced_acc": 0.886}
PHYSICAL_FEATURES = (
    "Fs", "Fm", "Fh", "Fb",  # X-ray fluxes: soft, medium, hard, broad band
    "P_intra", "P_inter",  # variability probabilities within / between observations
    "Gmag", "BPmag", "RPmag", "Jmag", "Hmag", "Kmag", "W1mag", "W2mag", "W3mag",  # optical/IR counterparts
    "Plx", "PM", "rgeo", "b_rgeo", "B_rgeo",  # Gaia astrometry and Bailer-Jones distance (with bounds)
)


def forest_scores(X_train, y_train, X_test, y_test, n_classes: int, class_weight, seed: int) -> dict[str, float]:
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=500, class_weight=class_weight, random_state=seed, n_jobs=1)
    forest.fit(X_train, y_train)
    return evaluation.scores(y_test, forest.predict(X_test), n_classes)


def cross_validate(labelled, y, names, args, seed: int, features) -> dict[str, tuple[float, float]]:
    """One k-fold cross-validation with ``seed`` (folds, MLP and forests): per-fold table printed,
    each model's mean (accuracy, balanced accuracy) over the folds returned."""
    from sklearn.model_selection import StratifiedKFold

    config = TrainConfig(classes=4, epochs=args.epochs, seed=seed, oversample_target=args.oversample_target,
                         data=str(CATALOG), features=features)
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=seed).split(labelled.X, y)
    runs = {"MLP (latentlapse)": [], "RF, balanced class weights": [], "RF, no class weights": []}
    recalls, rows = [], []
    for k, (train, test) in enumerate(folds, start=1):
        start = time.perf_counter()
        result = fit_on_split(config, labelled, y, train, test)
        seconds = time.perf_counter() - start
        mlp = {key: result.metrics[key] for key in ("acc", "balanced_acc")}
        recall = [result.metrics["per_class"][n]["recall"] for n in names]
        recalls.append(recall)
        rf_bal = forest_scores(labelled.X[train], y[train], labelled.X[test], y[test], 4, "balanced", seed)
        rf = forest_scores(labelled.X[train], y[train], labelled.X[test], y[test], 4, None, seed)
        for name, scores in zip(runs, (mlp, rf_bal, rf)):
            runs[name].append(scores)
        rows.append([k, f"{mlp['acc']:.3f}", f"{mlp['balanced_acc']:.3f}", *(f"{r:.2f}" for r in recall),
                     result.best_epoch, f"{seconds:.0f}", f"{rf_bal['acc']:.3f}", f"{rf_bal['balanced_acc']:.3f}",
                     f"{rf['acc']:.3f}", f"{rf['balanced_acc']:.3f}"])
    print(f"\nseed {seed}:")
    print(table(["fold", "MLP acc", "MLP bal.acc", *(f"rec {safe_name(n)[:10]}" for n in names), "best ep", "s",
                 "RFbal acc", "RFbal bal", "RF acc", "RF bal"], rows))
    print("MLP recall per class (mean over folds): "
          + ", ".join(f"{n} {r:.2f}" for n, r in zip(names, np.mean(recalls, axis=0))), flush=True)
    return {name: (statistics.mean(s["acc"] for s in scores), statistics.mean(s["balanced_acc"] for s in scores))
            for name, scores in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2],
                        help="one cross-validation per seed (its folds and training); medians are reported")
    parser.add_argument("--oversample_target", type=float, default=0.7)
    parser.add_argument("--features", choices=("physical", "all"), default="physical")
    args = parser.parse_args()
    if not CATALOG.is_file():
        print(f"skipped: {CATALOG} is absent (it is used in place and never copied into the project; "
              f"set LATENTLAPSE_SHARED_DATA to the folder that holds catalogs/)")
        return
    quiet_logs()
    # The MLP is tiny: on a shared 2-core machine one thread is as fast and never stalls waiting
    # for a second core that another process holds (the scores do not depend on it).
    import torch

    torch.set_num_threads(1)
    features = PHYSICAL_FEATURES if args.features == "physical" else None
    dataset = load_dataset(CATALOG, features=features, missing="indicator")
    labelled, y = apply_scheme(dataset, 4)
    names = scheme(4).names
    print(f"{CATALOG.name}: {len(labelled)} sources, {labelled.n_features} inputs "
          f"({args.features} features + missing-value indicators); classes "
          + ", ".join(f"{n} {c}" for n, c in zip(names, np.bincount(y, minlength=4))))
    print(f"MLP: {args.epochs} epochs, oversampling to {args.oversample_target:g} x majority, focal gamma "
          f"{TrainConfig().focal_gamma:g}, best epoch chosen on 20% of each training fold; "
          f"{args.folds}-fold CV for each seed of {args.seeds}")

    results = [cross_validate(labelled, y, names, args, seed, features) for seed in args.seeds]
    print()
    summary = []
    for name in results[0]:
        acc = [r[name][0] for r in results]
        bal = [r[name][1] for r in results]
        summary.append([name, f"{statistics.median(acc):.3f} ({min(acc):.3f}-{max(acc):.3f})",
                        f"{statistics.median(bal):.3f} ({min(bal):.3f}-{max(bal):.3f})"])
    summary.append(["published RF (Yang+22, LOO, own features)", f"{PUBLISHED['acc']:.3f}", f"{PUBLISHED['balanced_acc']:.3f}"])
    print(table(["model", f"accuracy: median (range) over {len(args.seeds)} seeds of {args.folds}-fold means",
                 "balanced accuracy"], summary))
    mlp_acc = statistics.median(r["MLP (latentlapse)"][0] for r in results)
    mlp_bal = statistics.median(r["MLP (latentlapse)"][1] for r in results)
    print(f"MLP vs published RF: accuracy {mlp_acc - PUBLISHED['acc']:+.3f}, balanced accuracy "
          f"{mlp_bal - PUBLISHED['balanced_acc']:+.3f}")


if __name__ == "__main__":
    main()
