"""Does the imbalance handling raise the rare classes' recall? Built-in data, 4 classes, 60 epochs.

Three settings, each over several seeds (seed = split, initialisation, sampling), everything
else at the defaults (batch 64, Adam lr 1e-3, weight decay 1e-4, per-epoch augmentation):

* ``oversample 1.0, focal gamma 2`` — the imbalance handling: augmented oversampling to the
  majority count and focal loss (``--alpha auto`` is then uniform: nothing left to correct);
* ``oversample 0, gamma 0, alpha auto`` — plain cross-entropy with inverse-frequency weights
  (``--alpha auto`` without oversampling corrects the full imbalance);
* ``oversample 0, gamma 0, alpha none`` — no correction at all, the reference.

Each run keeps the epoch with the best validation balanced accuracy (as ``main.py`` does) and
reports validation balanced accuracy and per-class recall there. The validation split is small
(20 NS/XRB and 69 YSO/CV sources: one source moves a recall by 0.05 / 0.015), so the same models
are also scored on an independent simulated set (another simulator seed, 6000 sources) — the
steadier number.

``--static_copies`` adds the imbalance handling as it was first built — augmented copies drawn
once and the originals never re-drawn — to show what per-epoch augmentation adds.

``--defaults_only`` runs the default spectra run alone (oversampling to 0.7, focal gamma 2, the
CNN's defaults) instead: its held-out balanced accuracy and calibrated ECE are the bars of issue 13.

Run: ``python bench/imbalance.py [--epochs 60] [--seeds 42 1 2] [--static_copies | --defaults_only]``
(about 5-7 minutes on a quiet machine; a third more with ``--static_copies``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs, table  # noqa: E402

from latentlapse.xray import calibration  # noqa: E402
from latentlapse.core import evaluation  # noqa: E402
from latentlapse.xray.config import TrainConfig  # noqa: E402
from latentlapse.xray.data.simulate import simulate_dataset  # noqa: E402
from latentlapse.xray.data.taxonomy import apply_scheme, scheme  # noqa: E402
from latentlapse.xray.experiment import build_trainer  # noqa: E402
from latentlapse.xray.prepare import prepare  # noqa: E402

SETTINGS = {
    "oversample 1.0, gamma 2 (imbalance handling)": dict(oversample_target=1.0, focal_gamma=2.0, alpha="auto"),
    "oversample 0, gamma 0, alpha auto (weighted CE)": dict(oversample_target=0.0, focal_gamma=0.0, alpha="auto"),
    "oversample 0, gamma 0, alpha none (no correction)": dict(oversample_target=0.0, focal_gamma=0.0, alpha="none"),
}
HANDLED, PLAIN = list(SETTINGS)[0], list(SETTINGS)[2]
STATIC = "oversample 1.0, gamma 2, copies drawn once"
DEFAULTS = "the default spectra run (oversample 0.7, gamma 2)"
HELD_OUT_SEED = 2027
HELD_OUT_SIZE = 6000


def run_once(config: TrainConfig, held_out_X: np.ndarray, held_out_y: np.ndarray, augment_each_epoch: bool = True) -> dict:
    """Train one configuration; scores of its best epoch on validation and the held-out set."""
    prepared = prepare(config)
    best: dict = {}

    def keep_best(trainer, name: str) -> None:
        if name == "best":
            best["model"] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    trainer = build_trainer(prepared, save_checkpoint=keep_best, augment_each_epoch=augment_each_epoch)
    trainer.fit()
    trainer.model.load_state_dict(best["model"])
    n = prepared.scheme.n_classes
    val_y = prepared.y[prepared.split.val]
    val_logits = trainer.predict_logits(prepared.dataset.X[prepared.split.val])
    val_pred = val_logits.argmax(axis=1)
    held_logits = trainer.predict_logits(held_out_X)
    held_pred = held_logits.argmax(axis=1)
    fitted = calibration.fit(val_logits, val_y)  # as a run does at its end: on the validation split
    return {
        "ece_raw": calibration.ece(calibration.softmax(held_logits), held_out_y),
        "ece_calibrated": calibration.ece(fitted.apply(held_logits), held_out_y),
        "best_epoch": trainer.best_epoch,
        "val": evaluation.scores(val_y, val_pred, n)["balanced_acc"],
        "val_recall": evaluation.per_class(evaluation.confusion(val_y, val_pred, n))["recall"],
        "held": evaluation.scores(held_out_y, held_pred, n)["balanced_acc"],
        "held_recall": evaluation.per_class(evaluation.confusion(held_out_y, held_pred, n))["recall"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--static_copies", action="store_true",
                        help="also run the imbalance handling with copies drawn once (no per-epoch augmentation)")
    parser.add_argument("--defaults_only", action="store_true",
                        help="only the default spectra run (the CNN's defaults), for its held-out balanced "
                             "accuracy and ECE")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the model is small, and one thread never stalls "
                             "waiting for a core another process holds on a shared machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    quiet_logs()
    names = scheme(4).names
    held_out, held_out_y = apply_scheme(simulate_dataset(n=HELD_OUT_SIZE, seed=HELD_OUT_SEED), 4)
    print(f"built-in data (simulator seed 42), 4 classes, {args.epochs} epochs, seeds {args.seeds}; held-out set: "
          f"simulator seed {HELD_OUT_SEED}, " + ", ".join(f"{n} {c}" for n, c in zip(names, np.bincount(held_out_y))))

    settings = {name: (overrides, True) for name, overrides in SETTINGS.items()}
    if args.static_copies:
        settings[STATIC] = (SETTINGS[HANDLED], False)
    if args.defaults_only:
        settings = {DEFAULTS: ({}, True)}
    results: dict[str, list[dict]] = {name: [] for name in settings}
    for seed in args.seeds:  # settings alternate within a seed, so all see the same machine load
        for name, (overrides, each_epoch) in settings.items():
            start = time.perf_counter()
            config = TrainConfig(classes=4, epochs=args.epochs, seed=seed, **overrides)
            result = run_once(config, held_out.X, held_out_y, augment_each_epoch=each_epoch)
            results[name].append(result)
            print(f"seed {seed:>3}  {name:<50} best epoch {result['best_epoch']:>3}  val bal.acc {result['val']:.3f}  "
                  f"held-out {result['held']:.3f}  ECE held-out raw {result['ece_raw']:.4f} calibrated "
                  f"{result['ece_calibrated']:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)

    short = ["AGN", "HM/LM", "YSO/CV", "NS/XRB"]
    for scope, title in (("val", "validation split (best epoch)"), ("held", f"held-out simulated set ({HELD_OUT_SIZE})")):
        rows = []
        for name, runs in results.items():
            recall = np.median([r[f"{scope}_recall"] for r in runs], axis=0)
            values = [r[scope] for r in runs]
            rows.append([name, f"{statistics.median(values):.3f}", f"{min(values):.3f}-{max(values):.3f}",
                         *(f"{v:.2f}" for v in recall)])
        print()
        print(f"{title}: medians over {len(args.seeds)} seeds")
        print(table(["setting", "bal.acc", "range", *(f"recall {s}" for s in short)], rows))

    for name, runs in results.items():
        print(f"held-out ECE (15 bins), median over seeds, {name}: raw "
              f"{statistics.median(r['ece_raw'] for r in runs):.4f}, calibrated on the validation split "
              f"{statistics.median(r['ece_calibrated'] for r in runs):.4f}")
    for scope in ("val", "held") if HANDLED in results else ():
        gain = (np.median([r[f"{scope}_recall"] for r in results[HANDLED]], axis=0)
                - np.median([r[f"{scope}_recall"] for r in results[PLAIN]], axis=0))
        print(f"{'validation' if scope == 'val' else 'held-out'}: imbalance handling vs no correction, median recall "
              f"change YSO/CV {gain[2]:+.2f}, NS/XRB {gain[3]:+.2f} "
              f"({'raised both' if gain[2] > 0 and gain[3] > 0 else 'NOT both raised'})")


if __name__ == "__main__":
    main()
