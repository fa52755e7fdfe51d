"""Run folders written by hand — history, latent metrics, frames, layouts, results, metadata —
so that the curves, report and comparison are tested in milliseconds and on known numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from latentlapse.xray.config import TrainConfig, VizConfig
from latentlapse.xray.data.taxonomy import safe_name
from latentlapse.xray.data import grid
from latentlapse.core.timelapse import explorer, latent_metrics, layouts
from latentlapse.core.timelapse.projection import Layout, ProjectionState

NAMES = ("AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN")
SHORT = tuple(safe_name(n) for n in NAMES)
COUNTS = (1072, 756, 276, 80)  # training sources before oversampling, as in the built-in set
N_TRAIN, N_VAL = 40, 24


def history_rows(epochs: int) -> list[dict[str, float]]:
    """A healthy run: accuracies rise and saturate, losses fall and flatten."""
    rows = []
    for e in range(1, epochs + 1):
        learned = 1 - np.exp(-e / 8)
        rows.append({
            "epoch": e, "train_loss": 0.9 - 0.6 * learned, "train_eval_loss": 0.8 - 0.6 * learned,
            "train_acc": 0.55 + 0.4 * learned, "train_balanced_acc": 0.45 + 0.45 * learned,
            "val_loss": 0.85 - 0.55 * learned, "val_acc": 0.5 + 0.35 * learned,
            "val_balanced_acc": 0.4 + 0.4 * learned, "val_macro_f1": 0.35 + 0.4 * learned, "lr": 0.001,
            **{f"val_recall_{s}": 0.3 + 0.15 * i + 0.3 * learned for i, s in enumerate(SHORT)}, "seconds": 1.0,
        })
    return rows


def frame_row(epoch: int, progress: float) -> dict[str, float]:
    """One latent_metrics.csv row of a model ``progress`` (0..1) of the way to tight clusters."""
    spreads = [2.0 - 1.0 * progress] * 4
    dists = [2.0 + 2.0 * progress] * 6
    knn = np.full((4, 4), (0.4 - 0.37 * progress) / 3)
    np.fill_diagonal(knn, 0.6 + 0.37 * progress)
    row = {"epoch": epoch, "val_acc": 0.5 + 0.35 * progress, "val_errors": round(150 - 120 * progress),
           "val_total": 546, "silhouette": 0.05 + 0.45 * progress, "knn_acc": 0.6 + 0.3 * progress,
           "trustworthiness": 0.95, "displacement": float("nan") if epoch == 1 else 0.1,
           "spread_ratio": np.mean(spreads) / np.mean(dists), "spread_mean": np.mean(spreads)}
    row.update({f"spread_{s}": v for s, v in zip(SHORT, spreads)})
    pairs = [(a, b) for i, a in enumerate(SHORT) for b in SHORT[i + 1:]]
    row.update({f"dist_{a}__{b}": d for (a, b), d in zip(pairs, dists)})
    row.update({f"recall_{s}": 0.5 + 0.4 * progress for s in SHORT})
    row.update({f"knn_to_{c}__{d}": knn[i, j] for i, c in enumerate(SHORT) for j, d in enumerate(SHORT)})
    return row


def base_layout(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation display coordinates inside the unit box."""
    generator = np.random.default_rng(seed)
    return generator.uniform(-0.6, 0.6, (N_TRAIN, 2)), generator.uniform(-0.6, 0.6, (N_VAL, 2))


def write_run(folder: Path, *, epochs: int = 12, frames=(1, 5, 10, 12), transform=None, source: str = "synthetic spectra",
              config_changes: dict | None = None, write_layouts: bool = True, ids_order=None,
              inputs: bool = True, dynamics: bool = False) -> Path:
    """A completed, visualised run folder. ``transform(xy)`` maps run A's layout to this run's.

    Layouts carry class probabilities whose argmax is the recorded prediction (validation points
    0-2 wrong; training points 0 and 1 wrong too); ``inputs`` writes ``viz_inputs.npz`` with a
    power-law spectrum per source; ``dynamics`` records every epoch of every sample source (plus
    two outside the sample) and writes ``dynamics.csv``, with T001 and V002 as the label suspects."""
    folder.mkdir(parents=True)
    history = history_rows(epochs)
    _write_csv(folder / "history.csv", history)
    columns = latent_metrics.metric_columns(SHORT)
    rows = [frame_row(e, (e - 1) / max(epochs - 1, 1)) for e in frames]
    _write_csv(folder / "latent_metrics.csv", rows, columns)
    config = TrainConfig(epochs=epochs, viz=VizConfig(enabled=True), **(config_changes or {})).for_model("cnn").to_dict()
    metadata = {
        "run_directory": str(folder), "num_classes": 4, "method": "tsne", "start_time": "2026-11-25T10:00:00",
        "has_umap": False, "status": "completed", "seed": 42, "config": config, "class_names": list(NAMES),
        "class_counts": {"train_before_oversampling": dict(zip(NAMES, COUNTS)),
                         "validation": dict(zip(NAMES, (268, 189, 69, 20)))},
        "data": {"source": source, "sha256": "ab" * 32, "kind": "spectra"}, "command": "main.py --classes 4",
    }
    (folder / "run_metadata.json").write_text(json.dumps(metadata))
    confusion = [[250, 10, 6, 2], [8, 175, 5, 1], [9, 4, 54, 2], [5, 2, 3, 10]]
    per_class = {n: {"precision": 0.9, "recall": row[i] / sum(row), "f1": 0.8, "support": sum(row)}
                 for i, (n, row) in enumerate(zip(NAMES, confusion))}
    final = {"acc": 0.8956, "balanced_acc": 0.7812, "macro_f1": 0.7534, "per_class": per_class,
             "confusion_matrix": confusion, "class_names": list(NAMES), "best_epoch": epochs - 1, "epochs_run": epochs,
             "evaluated": "best checkpoint (chosen by validation balanced accuracy) on the validation split"}
    (folder / "final_metrics.json").write_text(json.dumps(final))
    (folder / "classification_report.txt").write_text("precision recall <b>not bold</b>\n")
    train_xy, val_xy = base_layout()
    if transform is not None:
        train_xy, val_xy = transform(train_xy), transform(val_xy)
    for e in frames:
        row = history[e - 1]
        _png(folder / f"epoch_{e:03d}_acc{row['val_acc']:.4f}.png", shade=int(255 * e / max(frames)))
        if write_layouts:
            _layout(folder, e, epochs, train_xy, val_xy, ids_order)
    if inputs:
        _inputs(folder)
    if dynamics:
        _dynamics(folder, epochs)
    return folder


def probabilities(pred: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """Class probabilities whose largest entry is ``pred`` (0.7 there, 0.1 elsewhere)."""
    proba = np.full((len(pred), n_classes), 0.1, dtype=np.float32)
    proba[np.arange(len(pred)), pred] = 0.7
    return proba


def spectrum(i: int) -> np.ndarray:
    """A normalised absorbed-power-law-like spectrum on the 380-bin grid, slope set by ``i``."""
    energy = grid.centres()
    rate = energy ** -(1.0 + 0.05 * i) * np.exp(-0.3 / energy)
    return rate / rate.sum()


def _dynamics(folder: Path, epochs: int) -> None:
    from latentlapse.core.timelapse import dynamics, dynamics_summary

    ids = np.array([f"T{i:03d}" for i in range(N_TRAIN + 1)] + [f"V{i:03d}" for i in range(N_VAL + 1)])
    split = np.array(["train"] * (N_TRAIN + 1) + ["val"] * (N_VAL + 1))
    labels = np.concatenate([np.arange(N_TRAIN + 1) % 4, np.arange(N_VAL + 1) % 4])
    suspects = np.isin(ids, ["T001", "V002"])
    dynamics.write_sources(folder, ids, split, labels, NAMES)
    for e in range(1, epochs + 1):
        logits = np.zeros((len(ids), 4))
        logits[np.arange(len(ids)), labels] = np.where(suspects, -1.0, 0.1 * e)  # suspects: never their label
        logits[suspects, (labels[suspects] + 1) % 4] = 2.0
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        dynamics.write_epoch(folder, e, dynamics.epoch_record(labels, proba, logits))
    dynamics_summary.write_summary(folder)


def _inputs(folder: Path) -> None:
    train = np.array([spectrum(i) for i in range(N_TRAIN)])
    val = np.array([spectrum(i) for i in range(N_VAL)])
    explorer.save_inputs(folder, kind="spectra", train_ids=[f"T{i:03d}" for i in range(N_TRAIN)],
                         val_ids=[f"V{i:03d}" for i in range(N_VAL)], train_X=train, val_X=val,
                         train_counts=100.0 + np.arange(N_TRAIN), val_counts=200.0 + np.arange(N_VAL),
                         energy=grid.centres(), feature_names=())


def _layout(folder, epoch, total, train_xy, val_xy, ids_order) -> None:
    train_ids = np.array([f"T{i:03d}" for i in range(N_TRAIN)])
    val_ids = np.array([f"V{i:03d}" for i in range(N_VAL)])
    train_labels, val_labels = np.arange(N_TRAIN) % 4, np.arange(N_VAL) % 4
    if ids_order is not None:  # the same sources listed in another order, as another run might
        order_t, order_v = ids_order
        train_ids, train_xy, train_labels = train_ids[order_t], train_xy[order_t], train_labels[order_t]
        val_ids, val_xy, val_labels = val_ids[order_v], val_xy[order_v], val_labels[order_v]
    val_pred = val_labels.copy()
    val_pred[:3] = (val_pred[:3] + 1) % 4
    train_pred = train_labels.copy()
    train_pred[:2] = (train_pred[:2] + 1) % 4
    spec = SimpleNamespace(total_epochs=total, method="tsne", train_ids=train_ids, val_ids=val_ids,
                           train_labels=train_labels, val_labels=val_labels)
    snapshot = SimpleNamespace(epoch=epoch, val_pred=val_pred, train_proba=probabilities(train_pred),
                               val_proba=probabilities(val_pred))
    layout = Layout(train_xy, val_xy, ProjectionState("tsne", train_xy * 40, val_xy * 40))  # raw t-SNE scale
    layouts.save_layout(folder, snapshot, spec, layout)


def _png(path: Path, shade: int) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 14), (shade, 120, 255 - shade)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def _write_csv(path: Path, rows: list[dict], columns=None) -> None:
    columns = list(columns or rows[0])
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if not np.isfinite(row[c]) else f"{row[c]:.6g}" for c in columns))
    path.write_text("\n".join(lines) + "\n")
