"""How well one run's training dynamics find flipped labels, next to cleanlab on five trainings.

Cases (each: the default 4-class run, ``--epochs`` epochs, training labels of the run's own
stratified split flipped with :func:`latentlapse.xray.data.label_noise.flip_labels`; validation
labels left clean):

- ``builtin5`` / ``builtin10``: the built-in simulated spectra (CNN), 5 % and 10 % flipped;
- ``catalog5``: the real Chandra catalogue (Yang+22; MLP, the reader's default features: the
  source's measurements, no sky position or bookkeeping), 5 % flipped;
- ``catalog0``: the same catalogue without injected flips: the top 20 suspects (no ground truth).

Training sources are ranked by (1) the suspect score of ``dynamics.csv`` (one run), (2) the
last epoch's loss alone (cross-entropy of the true class from the same run's last evaluation
pass), and (3) cleanlab: ``find_label_issues`` and its label-quality ranking (self-confidence)
on 5-fold out-of-fold probabilities of the same model (five more trainings, each choosing its
epoch on an inner validation split, ``experiment.fit_on_split``). Reported: ROC AUC over the
training sources and precision at k = the number flipped, plus which class pairs are found.

Trainings are cached under ``--cache`` (one folder per case), so ``--analyse`` re-scores them
without training. Run: ``python bench/label_noise.py [--cases builtin5 builtin10 catalog5 catalog0]
[--epochs 60] [--cache /tmp/latentlapse_label_noise]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs  # noqa: E402

from latentlapse.core import rng  # noqa: E402
from latentlapse.xray.config import TrainConfig  # noqa: E402
from latentlapse.xray.data.label_noise import flip_labels  # noqa: E402
from latentlapse.xray.data.taxonomy import apply_scheme  # noqa: E402
from latentlapse.core.timelapse import dynamics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))
CATALOG = SHARED_DATA / "catalogs" / "muwclass_cscv2_td_2022.csv"
CASES = {"builtin5": ("builtin", 0.05), "builtin10": ("builtin", 0.10),
         "catalog5": ("catalog", 0.05), "catalog0": ("catalog", 0.0)}


def load(kind: str, epochs: int, seed: int):
    """The config, labelled data set and classes of a case."""
    if kind == "builtin":
        from latentlapse.xray.data.simulate import simulate_dataset

        config = TrainConfig(classes=4, epochs=epochs, seed=seed, device="cpu")
        dataset = simulate_dataset(seed=42)
    else:
        from latentlapse.xray.data.readers import load_dataset

        config = TrainConfig(classes=4, epochs=epochs, seed=seed, device="cpu", data=str(CATALOG), model="mlp")
        dataset = load_dataset(CATALOG)
    labelled, y = apply_scheme(dataset, 4)
    return config, labelled, y


def train_case(name: str, folder: Path, epochs: int, seed: int, folds: int) -> None:
    """One run with the dynamics recorder, then the out-of-fold probabilities for cleanlab."""
    from sklearn.model_selection import StratifiedKFold

    from latentlapse.xray.data.balance import stratified_split
    from latentlapse.xray.experiment import build_trainer, fit_on_split
    from latentlapse.xray.prepare import prepare_split
    from latentlapse.xray.training_visualizer import TrainingVisualizer

    kind, fraction = CASES[name]
    config, labelled, y = load(kind, epochs, seed)
    split = stratified_split(y, config.val_split, rng.generator(config.seed, "split"))
    y_train = y[split.train]
    noisy_train, flipped = flip_labels(y_train, fraction, 4, rng.generator(seed, "label_noise"))
    y_noisy = y.copy()
    y_noisy[split.train] = noisy_train
    prepared = prepare_split(config, labelled, y_noisy, split)
    folder.mkdir(parents=True, exist_ok=True)
    recorder = TrainingVisualizer(folder, config, prepared, None)  # dynamics only
    trainer = build_trainer(prepared, "cpu", callbacks=[recorder])
    started = time.perf_counter()
    trainer.fit()
    run_seconds = time.perf_counter() - started
    epoch_seconds = [row["seconds"] for row in trainer.history.rows]
    print(f"  {name}: one run of {epochs} epochs in {run_seconds:.0f} s; recorder {recorder.seconds:.3f} s in all "
          f"({recorder.seconds / sum(epoch_seconds):.3%} of the epochs' time)", flush=True)
    oof = np.zeros((len(y_train), 4))
    train_set = labelled.subset(split.train)
    for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y_train, noisy_train)):
        started = time.perf_counter()
        oof[te] = fit_on_split(config, train_set, noisy_train, tr, te, "cpu").proba
        print(f"  {name}: fold {k + 1}/{folds} in {time.perf_counter() - started:.0f} s", flush=True)
    np.savez(folder / "case.npz", y_train=y_train, noisy_train=noisy_train, flipped=flipped, oof=oof,
             train_ids=labelled.ids[split.train], epoch_seconds=np.array(epoch_seconds),
             recorder_seconds=recorder.seconds)
    (folder / "done.json").write_text(json.dumps({"epochs": epochs, "seed": seed, "folds": folds}))


def analyse_case(name: str, folder: Path) -> dict:
    """AUC and precision at k of the three rankings, and the per-class-pair breakdown."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.metrics import roc_auc_score

    case = np.load(folder / "case.npz", allow_pickle=False)
    history = dynamics.load_history(folder)
    train = history.split == "train"
    sub = dynamics.DynamicsHistory(
        epochs=history.epochs, ids=history.ids[train], split=history.split[train], labels=history.labels[train],
        true_proba=history.true_proba[:, train], margin=history.margin[:, train], pred=history.pred[:, train],
        class_names=history.class_names)
    stats = dynamics.source_stats(sub)
    noisy, truth, oof = case["noisy_train"], case["y_train"], case["oof"]
    is_flipped = noisy != truth
    k = int(is_flipped.sum())
    last_loss = -np.log(np.clip(sub.true_proba[-1].astype(np.float64), 1e-6, 1.0))
    quality = get_label_quality_scores(noisy, oof, method="self_confidence")
    issues = find_label_issues(noisy, oof)
    scores = {"dynamics": stats.score, "last-epoch loss": last_loss, "cleanlab": 1.0 - quality}
    out: dict = {"case": name, "n_train": int(len(noisy)), "flipped": k, "epochs": int(len(history.epochs)),
                 "methods": {}, "flagged": {}, "pairs": {}}
    if k == 0:
        out["top"] = _top(sub, stats, 20)
        out["flagged"] = {"dynamics suspects": int(stats.suspect.sum()), "cleanlab find_label_issues": int(issues.sum())}
        return out
    for method, score in scores.items():
        top = np.argsort(-score, kind="stable")[:k]
        out["methods"][method] = {"auc": float(roc_auc_score(is_flipped, score)),
                                  "precision_at_k": float(is_flipped[top].mean())}
    for label, mask in (("dynamics suspects", stats.suspect), ("cleanlab find_label_issues", issues)):
        out["flagged"][label] = {"n": int(mask.sum()), "precision": float(is_flipped[mask].mean()) if mask.any() else 0.0,
                                 "recall": float(mask[is_flipped].mean())}
    names = history.class_names
    top_dyn = set(np.argsort(-stats.score, kind="stable")[:k].tolist())
    top_cl = set(np.argsort(-(1.0 - quality), kind="stable")[:k].tolist())
    for a in range(4):
        for b in range(4):
            rows = np.flatnonzero(is_flipped & (truth == a) & (noisy == b))
            if len(rows):
                out["pairs"][f"{names[a]} -> {names[b]}"] = {
                    "n": int(len(rows)), "dynamics": int(sum(r in top_dyn for r in rows)),
                    "cleanlab": int(sum(r in top_cl for r in rows))}
    return out


def _top(history, stats, n: int) -> list[dict]:
    names = history.class_names
    order = np.argsort(stats.rank, kind="stable")[:n]
    return [{"rank": int(stats.rank[i]), "id": str(history.ids[i]), "label": names[history.labels[i]],
             "model_says": names[stats.other_class[i]] if stats.other_class[i] >= 0 else "-",
             "share": round(float(stats.other_share[i]), 3), "confidence": round(float(stats.confidence[i]), 3),
             "aum": round(float(stats.aum[i]), 3)} for i in order]


def report(result: dict) -> None:
    print(f"\n{result['case']}: {result['n_train']} training sources, {result['flipped']} flipped, "
          f"{result['epochs']} epochs")
    for method, values in result["methods"].items():
        print(f"  {method:<16} ROC AUC {values['auc']:.3f}   precision at k={result['flipped']}: "
              f"{values['precision_at_k']:.3f}")
    for label, values in result["flagged"].items():
        if isinstance(values, dict):
            print(f"  {label}: {values['n']} flagged, precision {values['precision']:.3f}, recall {values['recall']:.3f}")
        else:
            print(f"  {label}: {values} flagged")
    if result["pairs"]:
        print("  flips by class pair (true -> given): found in the top k by dynamics / cleanlab")
        for pair, values in sorted(result["pairs"].items(), key=lambda kv: -kv[1]["n"]):
            print(f"    {pair:<40} {values['n']:>4}   {values['dynamics']:>4} / {values['cleanlab']:>4}")
    for row in result.get("top", []):
        print(f"    #{row['rank']:<3} {row['id']:<28} label {row['label']:<20} model says {row['model_says']:<20} "
              f"({row['share']:.0%} of epochs)  confidence {row['confidence']:.3f}  AUM {row['aum']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared 2-core machine)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/latentlapse_label_noise"))
    parser.add_argument("--analyse", action="store_true", help="only re-score cached trainings")
    args = parser.parse_args()
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        sys.exit("bench/label_noise.py compares with cleanlab: pip install 'latentlapse[bench]'")
    quiet_logs()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the start", flush=True)
    if not args.analyse:
        import torch

        torch.set_num_threads(args.threads)
    results = []
    for name in args.cases:
        if CASES[name][0] == "catalog" and not CATALOG.exists():
            print(f"{name}: {CATALOG} is absent; skipped")
            continue
        folder = args.cache / f"{name}_e{args.epochs}_s{args.seed}"
        if not (folder / "done.json").exists():
            if args.analyse:
                print(f"{name}: not trained yet under {folder}")
                continue
            train_case(name, folder, args.epochs, args.seed, args.folds)
        results.append(analyse_case(name, folder))
        report(results[-1])
    print(f"\nload: {os.getloadavg()[0]:.1f} (1-min average) at the end")
    (args.cache / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
