"""Cross-validation on the real Chandra catalogue: latentlapse's catalogue model against gradient boosting.

Data: ``muwclass_cscv2_td_2022.csv`` (Yang et al. 2022, ApJ 941, 104; 2941 labelled sources),
read in place from the shared data folder — it has no licence, so it is never copied into the
project; the script says so and exits when the file is absent.

Each seed runs ``latentlapse cv`` (:func:`latentlapse.cv.cross_validate`, the user command's
own code path: stratified folds, everything fitted on each fold's training rows, the epoch and
the calibration chosen on an inner validation split) with ``--baseline hgb``: scikit-learn's
``HistGradientBoostingClassifier(class_weight='balanced')`` on the same features and folds.
The figures are medians over seeds of the fold means, and the seed-to-seed standard deviation
of the fold means (the steadiness bar: <= 0.005).

``--features default`` is the reader's default selection (``--features`` not given);
``physical`` names the source's own measurements explicitly (X-ray fluxes, variability,
optical/IR magnitudes, parallax, proper motion, distance); ``all`` lists every numeric non-error
column, sky position included, for comparison.
``--galactic`` instead splits the catalogue by Galactic longitude into four 90-degree bands
(no source in two) and trains on three, tests on the fourth: the shift a new survey field brings.

Run: ``python bench/catalog_cv.py [--seeds 42 1 2] [--folds 5] [--epochs 60] [--classes 4]
[--features default|all] [--members 3] [--galactic]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs, table  # noqa: E402

from latentlapse import calibration, cv, evaluation  # noqa: E402
from latentlapse.config import TrainConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED_DATA / "catalogs" / "muwclass_cscv2_td_2022.csv"


def all_columns() -> tuple[str, ...]:
    """Every numeric column that is not an id, label or quoted error (sky position included)."""
    with CATALOG.open() as handle:
        header = next(csv.reader(handle))
    return tuple(n for n in header if n not in ("CSCv2_name", "True_Class") and not n.startswith("e_"))


# What the reader's default selection keeps of this catalogue (sky position, positional error
# and detection significance left out), spelled out so the figure does not depend on the reader.
PHYSICAL = ("Fs", "Fm", "Fh", "Fb", "P_intra", "P_inter", "Gmag", "BPmag", "RPmag", "Jmag", "Hmag", "Kmag", "W1mag",
            "W2mag", "W3mag", "Plx", "PM", "rgeo", "b_rgeo", "B_rgeo")


def config_for(args, seed: int) -> TrainConfig:
    features = {"all": all_columns(), "physical": PHYSICAL, "default": None}[args.features]
    return TrainConfig(classes=args.classes, epochs=args.epochs, seed=seed, data=str(CATALOG), features=features,
                       members=args.members, oversample_target=args.oversample_target)


def cross_validation(args) -> None:
    per_seed = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = cv.cross_validate(config_for(args, seed), folds=args.folds, baseline="hgb")
        ours, hgb = (result["models"][m]["summary"] for m in ("latentlapse", "hgb"))
        per_seed.append((ours, hgb))
        print(f"seed {seed}: latentlapse {ours['acc']['mean']:.4f} / {ours['balanced_acc']['mean']:.4f} "
              f"(ECE raw {ours['ece_raw']['mean']:.4f}, calibrated {ours['ece_calibrated']['mean']:.4f}); "
              f"hgb {hgb['acc']['mean']:.4f} / {hgb['balanced_acc']['mean']:.4f}  "
              f"({time.perf_counter() - start:.0f} s, {result['n_features']} inputs)", flush=True)
    rows = []
    for index, name in enumerate(("latentlapse", "HistGradientBoosting (balanced)")):
        row = [name]
        for key in ("acc", "balanced_acc"):
            means = [s[index][key]["mean"] for s in per_seed]
            row += [f"{statistics.median(means):.4f}", f"{np.std(means):.4f}"]
        rows.append(row)
    ours = [s[0] for s in per_seed]
    for point in ("train_priors", "balanced_priors"):
        rows.append([f"latentlapse, calibrated, {point.replace('_', ' ')}",
                     f"{statistics.median(s[point]['acc']['mean'] for s in ours):.4f}", "",
                     f"{statistics.median(s[point]['balanced_acc']['mean'] for s in ours):.4f}", ""])
    print(f"\n{args.classes} classes, {args.features} features, {args.folds}-fold CV, seeds {args.seeds}")
    print(table(["model", "accuracy (median)", "seed std", "balanced acc. (median)", "seed std"], rows))
    print(f"ECE over folds, median over seeds: raw {statistics.median(s['ece_raw']['mean'] for s in ours):.4f}, "
          f"calibrated {statistics.median(s['ece_calibrated']['mean'] for s in ours):.4f}")


def galactic_bands(args) -> None:
    """Leave one 90-degree Galactic-longitude band out, for each band."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from latentlapse.data.readers import load_dataset
    from latentlapse.data.taxonomy import apply_scheme, scheme
    from latentlapse.experiment import fit_on_split

    config = config_for(args, args.seeds[0])
    with CATALOG.open() as handle:
        rows = list(csv.DictReader(handle))
    longitude = dict(zip((r["CSCv2_name"] for r in rows), SkyCoord(
        [float(r["CSCv2_RA"]) for r in rows] * u.deg, [float(r["CSCv2_DEC"]) for r in rows] * u.deg).galactic.l.deg))
    dataset = load_dataset(CATALOG, features=config.features, missing=config.missing)
    labelled, y = apply_scheme(dataset, config.classes)
    band = (np.array([longitude[i] for i in labelled.ids]) // 90).astype(int)
    names = scheme(config.classes).names
    table_rows = []
    for b in range(4):
        test, train = np.flatnonzero(band == b), np.flatnonzero(band != b)
        result = fit_on_split(config, labelled, y, train, test)
        hgb = cv.hgb_proba(labelled.X[train], y[train], labelled.X[test], config.seed).argmax(axis=1)
        ours = evaluation.scores(y[test], result.proba.argmax(axis=1), len(names))
        theirs = evaluation.scores(y[test], hgb, len(names))
        table_rows.append([f"{90 * b}-{90 * (b + 1)} deg", len(test), f"{ours['acc']:.4f}", f"{ours['balanced_acc']:.4f}",
                           f"{calibration.ece(result.calibrated, y[test]):.4f}", f"{theirs['acc']:.4f}",
                           f"{theirs['balanced_acc']:.4f}"])
        print(table_rows[-1], flush=True)
    print(f"\nGalactic-longitude bands, {args.classes} classes, {args.features} features, seed {config.seed}: "
          f"trained on three bands, tested on the fourth")
    print(table(["test band", "sources", "ours acc", "ours bal.acc", "ours ECE (cal.)", "hgb acc", "hgb bal.acc"],
                table_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--classes", type=int, choices=(4, 8), default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--members", type=int, default=TrainConfig().members)
    parser.add_argument("--oversample_target", type=float, default=TrainConfig().oversample_target)
    parser.add_argument("--features", choices=("default", "physical", "all"), default="default")
    parser.add_argument("--galactic", action="store_true", help="leave-one-Galactic-longitude-band-out instead of CV")
    args = parser.parse_args()
    if not CATALOG.is_file():
        print(f"skipped: {CATALOG} is absent (it is used in place and never copied into the project; "
              f"set LATENTLAPSE_SHARED_DATA to the folder that holds catalogs/)")
        return
    quiet_logs()
    # The MLPs are tiny: on a shared 2-core machine one thread is as fast and never stalls waiting
    # for a second core that another process holds (the scores do not depend on it).
    import torch

    torch.set_num_threads(1)
    galactic_bands(args) if args.galactic else cross_validation(args)


if __name__ == "__main__":
    main()
