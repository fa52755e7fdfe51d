"""Cross-validation of the catalogue model on any table, next to gradient boosting (``latentlapse cv``).

Any CSV/FITS/VOTable catalogue: ``--data FILE`` (default: the real Chandra catalogue
``muwclass_cscv2_td_2022.csv`` of Yang et al. 2022, ApJ 941, 104, 2941 labelled sources, read in
place from the shared data folder — it has no licence, so it is never copied into the project;
the script says so and exits when it is absent), ``--label_column``, ``--features A,B,C`` (or
``+A,B`` for the default features plus A and B, or ``all`` for every numeric non-error column),
``--exclude``, ``--missing``, ``--placeholder``.

Each seed runs :func:`latentlapse.xray.cv.cross_validate` — the user command ``latentlapse cv``, the
same code path as a training run (``experiment.fit_on_split`` -> ``prepare.prepare_split``):
the feature schema (imputation medians, missing indicators, log10 choice, scaling), the
oversampling, the best epoch and the calibration are fitted on the training rows of the fold
only (epoch and calibration on a stratified 20 % of them), never on the test fold, and the
model is then refit on all of the fold's training rows as a run's best.pt is (``--no-refit``
scores the model trained on the 80 % instead) — with
``--baseline hgb``: scikit-learn's ``HistGradientBoostingClassifier(class_weight='balanced')``
on the same folds and exactly the model's inputs before its scaler (the fold's schema applied
to every row) — and, as a second reference, the same HGB on the catalogue's own values with NaN
left to its native missing-value handling. The figures are medians over seeds of the fold means, and the seed-to-seed
standard deviation of the fold means (the steadiness bar: <= 0.005). Each seed draws its own folds,
so that std holds the split's share of the variance as well as the model's (gradient boosting's
own std shows the split's); ``--split_seed N`` puts every seed on the folds of seed N, and the
std is then the model's alone.

Default features leave out sky position (``CSCv2_RA``/``CSCv2_DEC``), the positional error
``CSCv2_PU`` and the detection significance ``CSCv2_S/N`` (see the guide).
``--galactic`` instead splits the catalogue by Galactic longitude into four 90-degree bands
(no source in two), trains on three and tests on the fourth: the shift a new survey field brings.

Published reference (shared catalogue, 4 classes): the authors' random forest, leave-one-out,
accuracy 0.910, balanced accuracy 0.886 (their own feature engineering).

Run: ``python bench/catalog_cv.py [--data FILE] [--classes 4|8] [--seeds 42 1 2] [--folds 5] [--epochs 40]
[--features all|+A,B|A,B,C] [--members 3] [--no-refit] [--split_seed N] [--galactic]``.
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

from latentlapse.xray import calibration, cv  # noqa: E402
from latentlapse.core import evaluation  # noqa: E402
from latentlapse.xray.config import MISSING_POLICIES, TrainConfig  # noqa: E402
from latentlapse.xray.data.readers import load_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED_DATA / "catalogs" / "muwclass_cscv2_td_2022.csv"


def all_columns(args) -> tuple[str, ...]:
    """Every numeric column that is not an id, label or quoted error (sky position included)."""
    raw = load_dataset(args.data, label_column=args.label_column, features=None, exclude=args.exclude,
                       placeholders=args.placeholder, missing=args.missing)
    left = tuple(n for n, why in raw.left_out if not why.startswith(("quoted error", "name or id")))
    return tuple(raw.feature_names) + left


def features_of(args) -> tuple[str, ...] | None:
    """``--features``: None (the default), ``all``, a list, or ``+A,B`` = the default plus A and B."""
    text = args.features
    if text is None:
        return None
    if text == "all":
        return all_columns(args)
    names = tuple(n.strip() for n in text.lstrip("+").split(",") if n.strip())
    if not text.startswith("+"):
        return names
    default = load_dataset(args.data, label_column=args.label_column, exclude=args.exclude,
                           placeholders=args.placeholder, missing=args.missing)
    return tuple(default.feature_names) + tuple(n for n in names if n not in default.feature_names)


def config_for(args, seed: int) -> TrainConfig:
    return TrainConfig(classes=args.classes, epochs=args.epochs, seed=seed, data=str(args.data),
                       label_column=args.label_column, features=args.feature_list, exclude=args.exclude,
                       placeholders=args.placeholder, missing=args.missing, members=args.members,
                       oversample_target=args.oversample_target, refit=args.refit)


def hgb_native(config: TrainConfig, folds: int, split_seed: int) -> dict:
    """HGB on the catalogue's own values, NaN left for the trees' native missing-value handling
    (no imputation, indicators or log10), on the same folds: a second, independent reference."""
    from latentlapse.xray.data.taxonomy import apply_scheme
    from latentlapse.xray.prepare import load_data

    dataset, _ = load_data(config)
    labelled, y = apply_scheme(dataset, config.classes)
    rows = []
    for train, test in cv.fold_indices(y, folds, split_seed):
        proba = cv.hgb_proba(labelled.X[train], y[train], labelled.X[test], config.seed)
        rows.append(evaluation.scores(y[test], proba.argmax(axis=1), config.classes))
    return {key: {"mean": float(np.mean([r[key] for r in rows]))} for key in ("acc", "balanced_acc")}


def cross_validation(args) -> None:
    per_seed = []
    for seed in args.seeds:
        start = time.perf_counter()
        config = config_for(args, seed)
        result = cv.cross_validate(config, folds=args.folds, baseline="hgb", split_seed=args.split_seed)
        ours, hgb = (result["models"][m]["summary"] for m in ("latentlapse", "hgb"))
        native = hgb_native(config, args.folds, result["split_seed"])
        per_seed.append((ours, hgb, native))
        pooled = ours["ece_pooled"]
        print(f"seed {seed}: latentlapse {ours['acc']['mean']:.4f} / {ours['balanced_acc']['mean']:.4f} "
              f"(ECE per fold raw {ours['ece_raw']['mean']:.4f}, calibrated {ours['ece_calibrated']['mean']:.4f}, "
              f"floor {ours['ece_floor']['mean']:.4f}; all held-out sources raw {pooled['raw']:.4f}, calibrated "
              f"{pooled['calibrated']:.4f}, floor {pooled['floor']:.4f}); "
              f"hgb {hgb['acc']['mean']:.4f} / {hgb['balanced_acc']['mean']:.4f} (NaN-native "
              f"{native['acc']['mean']:.4f} / {native['balanced_acc']['mean']:.4f})  "
              f"({time.perf_counter() - start:.0f} s, {result['n_features']} inputs, load {os.getloadavg()[0]:.1f})",
              flush=True)
    rows = []
    for index, name in enumerate(("latentlapse, raw argmax", "HGB (balanced), the model's inputs",
                                  "HGB (balanced), raw values, NaN native")):
        row = [name]
        for key in ("acc", "balanced_acc"):
            means = [s[index][key]["mean"] for s in per_seed]
            row += [f"{statistics.median(means):.4f}", f"{np.std(means):.4f}"]
        rows.append(row)
    ours = [s[0] for s in per_seed]
    for point in ("train_priors", "balanced_priors"):
        row = [f"latentlapse, calibrated, {point.replace('_', ' ')}"]
        for key in ("acc", "balanced_acc"):
            means = [s[point][key]["mean"] for s in ours]
            row += [f"{statistics.median(means):.4f}", f"{np.std(means):.4f}"]
        rows.append(row)
    folds_from = "each seed's own folds" if args.split_seed is None else f"the folds of seed {args.split_seed}"
    print(f"\n{args.classes} classes, {args.features or 'default'} features, {args.folds}-fold CV, seeds {args.seeds}, "
          f"{folds_from}, {'no refit' if args.refit is False else 'refit on each fold'}")
    print(table(["model", "accuracy (median)", "seed std", "balanced acc. (median)", "seed std"], rows))
    print(f"ECE (15 bins, top label), median over seeds: mean over folds raw "
          f"{statistics.median(s['ece_raw']['mean'] for s in ours):.4f}, calibrated "
          f"{statistics.median(s['ece_calibrated']['mean'] for s in ours):.4f} (a perfectly calibrated model would "
          f"measure {statistics.median(s['ece_floor']['mean'] for s in ours):.4f} on folds this size); all held-out "
          f"sources together raw {statistics.median(s['ece_pooled']['raw'] for s in ours):.4f}, calibrated "
          f"{statistics.median(s['ece_pooled']['calibrated'] for s in ours):.4f} "
          f"(floor {statistics.median(s['ece_pooled']['floor'] for s in ours):.4f})")


def galactic_bands(args) -> None:
    """Leave one 90-degree Galactic-longitude band out, for each band."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from latentlapse.xray.data.taxonomy import apply_scheme, scheme
    from latentlapse.xray.experiment import fit_on_split

    config = config_for(args, args.seeds[0])
    with Path(args.data).open() as handle:
        rows = list(csv.DictReader(handle))
    longitude = dict(zip((r["CSCv2_name"] for r in rows), SkyCoord(
        [float(r["CSCv2_RA"]) for r in rows] * u.deg, [float(r["CSCv2_DEC"]) for r in rows] * u.deg).galactic.l.deg))
    dataset = load_dataset(args.data, label_column=args.label_column, features=config.features,
                           exclude=args.exclude, placeholders=args.placeholder, missing=config.missing)
    labelled, y = apply_scheme(dataset, config.classes)
    band = (np.array([longitude[i] for i in labelled.ids]) // 90).astype(int)
    names = scheme(config.classes).names
    table_rows = []
    for b in range(4):
        test, train = np.flatnonzero(band == b), np.flatnonzero(band != b)
        result = fit_on_split(config, labelled, y, train, test)
        X = result.inputs.X  # every row through the schema fitted on the training bands
        hgb = cv.hgb_proba(X[train], y[train], X[test], config.seed).argmax(axis=1)
        ours = evaluation.scores(y[test], result.proba.argmax(axis=1), len(names))
        theirs = evaluation.scores(y[test], hgb, len(names))
        table_rows.append([f"{90 * b}-{90 * (b + 1)} deg", len(test), f"{ours['acc']:.4f}", f"{ours['balanced_acc']:.4f}",
                           f"{calibration.ece(result.calibrated, y[test]):.4f}", f"{theirs['acc']:.4f}",
                           f"{theirs['balanced_acc']:.4f}"])
        print(table_rows[-1], flush=True)
    print(f"\nGalactic-longitude bands, {args.classes} classes, {args.features or 'default'} features, seed {config.seed}: "
          f"trained on three bands, tested on the fourth")
    print(table(["test band", "sources", "ours acc", "ours bal.acc", "ours ECE (cal.)", "hgb acc", "hgb bal.acc"],
                table_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CATALOG, help="a catalogue table (CSV, FITS, VOTable)")
    parser.add_argument("--label_column", default=None)
    parser.add_argument("--features", default=None, help="all; A,B,C; or +A,B for the default features plus A and B")
    parser.add_argument("--exclude", type=lambda t: tuple(n for n in t.split(",") if n), default=())
    parser.add_argument("--placeholder", type=lambda t: tuple(float(v) for v in t.split(",")), default=())
    parser.add_argument("--missing", choices=MISSING_POLICIES, default="indicator")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="default: the catalogue model's (40)")
    parser.add_argument("--classes", type=int, choices=(4, 8), default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--members", type=int, default=TrainConfig().members)
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                        help="refit each fold's model on all its training rows (default: the model's, on)")
    parser.add_argument("--oversample_target", type=float, default=TrainConfig().oversample_target)
    parser.add_argument("--split_seed", type=int, default=None,
                        help="every seed on the folds of this seed: the seed std is then the model's alone")
    parser.add_argument("--galactic", action="store_true", help="leave-one-Galactic-longitude-band-out instead of CV")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} is absent (the shared catalogue is used in place and never copied into the "
              f"project; set LATENTLAPSE_SHARED_DATA to the folder that holds catalogs/, or pass --data)")
        return
    quiet_logs()
    # The MLPs are tiny: on a shared 2-core machine one thread is as fast and never stalls waiting
    # for a second core that another process holds (the scores do not depend on it).
    import torch

    torch.set_num_threads(1)
    args.feature_list = features_of(args)
    galactic_bands(args) if args.galactic else cross_validation(args)


if __name__ == "__main__":
    main()
