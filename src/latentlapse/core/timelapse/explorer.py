"""The data behind the report's explorer: every frame's points, their inputs and their histories.

The visualiser writes ``viz_inputs.npz`` once at the start of a run — the input rows of the frame
sample (spectra as float16; a catalogue's values as read, float32, NaN where the file has none
rather than the imputed model inputs), the spectra's net counts and energy grid or the
catalogue's column names — so that the report can show a source's spectrum without the data
file. :func:`explorer_data` gathers that, the ``layouts/`` files and, when present, the
per-source training dynamics into one JSON-ready dict; the large arrays go in as base64 of
little-endian typed arrays, which the page decodes without parsing millions of numbers.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.timelapse import dynamics
from latentlapse.core.timelapse.layouts import FrameLayout, layout_files, load_layout
from latentlapse.core.timelapse.runfiles import RunFiles, class_style

log = logging.getLogger(__name__)

INPUTS_FILE = "viz_inputs.npz"
SCRIPT_FILES = (Path(__file__).with_name("explorer_plots.js"), Path(__file__).with_name("explorer.js"))
TRAIN, VAL = 0, 1
NO_CLASS = 255  # a predicted class that was not recorded (training points of an old layout)
SUSPECTS = 20  # without a ``suspect`` column, the "suspects only" filter keeps the top 20 ranks


def save_inputs(run_dir: str | os.PathLike, *, kind: str, train_ids: np.ndarray, val_ids: np.ndarray,
                train_X: np.ndarray, val_X: np.ndarray, train_counts: np.ndarray, val_counts: np.ndarray,
                energy: np.ndarray | None, feature_names: Sequence[str]) -> Path:
    """Write the frame sample's input rows to ``viz_inputs.npz`` atomically; returns its path.

    Spectra are stored as float16 (normalised rows; three significant digits are plenty for a
    plot), catalogue features as float32 (their values span many decades).
    """
    dtype = np.float16 if kind == "spectra" else np.float32
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        kind=np.str_(kind),
        train_ids=np.asarray(train_ids).astype(str), val_ids=np.asarray(val_ids).astype(str),
        train_X=np.asarray(train_X, dtype=dtype), val_X=np.asarray(val_X, dtype=dtype),
        train_counts=np.asarray(train_counts, dtype=np.float64), val_counts=np.asarray(val_counts, dtype=np.float64),
        energy=np.asarray(energy if energy is not None else [], dtype=np.float64),
        feature_names=np.asarray(list(feature_names), dtype=str),
    )
    path = Path(run_dir) / INPUTS_FILE
    atomic.write_bytes(path, buffer.getvalue())
    return path


def load_inputs(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays of ``viz_inputs.npz`` (no pickles), or None for a run without the file."""
    path = Path(run_dir) / INPUTS_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def explorer_data(run: RunFiles, *, history: Any = None, summary: Sequence[dict] | None = None) -> dict | None:
    """Everything the explorer draws, as a JSON-ready dict; None when the run has no layouts.

    Parameters
    ----------
    run : the run's parsed files (class names, epochs).
    history : per-source training dynamics with fields ``epochs`` (E,), ``ids`` (N,), ``split``
        (N,), ``true_proba`` (E, N) and ``margin`` (E, N); only the frame sample's columns are
        kept. None leaves the panel without them.
    summary : rows of ``dynamics.csv`` with at least ``id``, ``split``, ``region`` and
        ``suspect_rank`` (and ``suspect``, else the top ranks count as suspects); None leaves the
        panel and the suspects filter without them.

    Points are the training sample followed by the validation sample, in the first layout's
    order; a point missing from a frame gets NaN coordinates there.
    """
    files = layout_files(run.run_dir)
    if not files:
        return None
    frames = [load_layout(files[epoch]) for epoch in sorted(files)]
    first = frames[0]
    ids = np.concatenate([first.train_ids.astype(str), first.val_ids.astype(str)])
    split = np.concatenate([np.full(len(first.train_ids), TRAIN), np.full(len(first.val_ids), VAL)]).astype(np.uint8)
    labels = np.concatenate([first.train_labels, first.val_labels]).astype(np.uint8)
    names = run.class_names or [str(c) for c in range(int(labels.max()) + 1)]
    style = class_style(names, run.metadata)
    index = {(int(s), i): k for k, (s, i) in enumerate(zip(split, ids))}
    n, n_classes = len(ids), len(names)
    xy = np.full((len(frames), n, 2), np.nan, dtype=np.float32)
    pred = np.full((len(frames), n), NO_CLASS, dtype=np.uint8)
    proba = np.zeros((len(frames), n, n_classes), dtype=np.uint8)
    has_proba = False
    for f, frame in enumerate(frames):
        for part, part_ids, part_xy, part_pred, part_proba in _parts(frame):
            rows = np.array([index.get((part, str(i)), -1) for i in part_ids])
            keep = rows >= 0
            xy[f, rows[keep]] = part_xy[keep]
            if part_proba is not None:
                has_proba = True
                proba[f, rows[keep]] = np.rint(np.clip(part_proba[keep], 0, 1) * 250).astype(np.uint8)
                if part_pred is None:  # a layout written before training predictions were kept
                    part_pred = np.asarray(part_proba).argmax(axis=1)
            if part_pred is not None:
                pred[f, rows[keep]] = np.asarray(part_pred)[keep]
    data = {
        "classes": [{"name": c, "color": col, "marker": m} for c, col, m in zip(style.class_names, style.colors, style.markers)],
        "total": run.total_epochs,
        "epochs": [frame.epoch for frame in frames],
        "ids": ids.tolist(),
        "split": _b64(split),
        "labels": _b64(labels),
        "xy": _b64(xy),
        "pred": _b64(pred),
        "proba": _b64(proba) if has_proba else None,
        "inputs": _inputs(load_inputs(run.run_dir), ids, split),
        "dynamics": _dynamics(history, ids, split),
        "summary": _summary(summary, ids, split),
    }
    return data


def run_dynamics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Keyword arguments of :func:`explorer_data` from the run's ``dynamics/`` records and
    ``dynamics.csv`` (each left out when the run has none)."""
    found: dict[str, Any] = {}
    for key, read in (("history", dynamics.load_history), ("summary", dynamics.read_summary)):
        try:
            found[key] = read(run_dir)
        except FileNotFoundError:
            continue
    return found


def script() -> str:
    """The explorer's JavaScript: the two static files next to this module, in one function scope
    (so that the page gains no global but ``window.explorer``)."""
    return "(function () {\n" + "\n".join(p.read_text(encoding="utf-8") for p in SCRIPT_FILES) + "})();\n"


# ------------------------------------------------------------------------------------- helpers
def _parts(frame: FrameLayout):
    """(split, ids, xy, predictions, probabilities) of the training and validation sample."""
    yield TRAIN, frame.train_ids.astype(str), frame.train_xy, frame.train_pred, frame.train_proba
    yield VAL, frame.val_ids.astype(str), frame.val_xy, frame.val_pred, frame.val_proba


def _columns(ids: np.ndarray, split: np.ndarray, source_ids, source_split) -> tuple[np.ndarray, np.ndarray]:
    """For each explorer point, its row in a source table (and whether it has one)."""
    lookup = {(_split_code(s), str(i)): k for k, (s, i) in enumerate(zip(source_split, source_ids))}
    rows = np.array([lookup.get((int(s), str(i)), -1) for s, i in zip(split, ids)], dtype=np.int64)
    return np.maximum(rows, 0), rows >= 0


def _split_code(value) -> int:
    """0 for the training split, 1 for validation, whether written as a code or a word."""
    if isinstance(value, str):
        return TRAIN if value.strip().lower().startswith("train") else VAL
    return int(value)


def _inputs(inputs: dict | None, ids: np.ndarray, split: np.ndarray) -> dict | None:
    if inputs is None:
        return None
    rows, found = _columns(ids, split, np.concatenate([inputs["train_ids"], inputs["val_ids"]]),
                           np.concatenate([np.zeros(len(inputs["train_ids"])), np.ones(len(inputs["val_ids"]))]))
    X = np.concatenate([inputs["train_X"], inputs["val_X"]])[rows]
    X[~found] = np.nan
    counts = np.concatenate([inputs["train_counts"], inputs["val_counts"]])[rows]
    counts[~found] = np.nan
    kind = str(inputs["kind"])
    out = {"kind": kind, "n": int(X.shape[1]), "counts": [None if not np.isfinite(c) else float(c) for c in counts]}
    if kind == "spectra":
        out.update(energy=np.round(inputs["energy"], 5).tolist(), x=_b64(X.astype(np.float16)), dtype="float16")
    else:
        out.update(names=inputs["feature_names"].tolist(), x=_b64(X.astype(np.float32)), dtype="float32")
    return out


def _dynamics(history: Any, ids: np.ndarray, split: np.ndarray) -> dict | None:
    if history is None:
        return None
    rows, found = _columns(ids, split, history.ids, history.split)
    true_proba = np.asarray(history.true_proba, dtype=np.float32)[:, rows]
    margin = np.asarray(history.margin, dtype=np.float32)[:, rows]
    true_proba[:, ~found] = np.nan
    margin[:, ~found] = np.nan
    return {"epochs": np.asarray(history.epochs).astype(int).tolist(),
            "trueProba": _b64(true_proba.astype(np.float16)), "margin": _b64(margin.astype(np.float16))}


def _summary(summary: Sequence[dict] | None, ids: np.ndarray, split: np.ndarray) -> dict | None:
    if not summary:
        return None
    rows, found = _columns(ids, split, [r["id"] for r in summary], [r["split"] for r in summary])
    region, rank, suspect = [], [], []
    for row, ok in zip(rows, found):
        record = summary[row] if ok else {}
        region.append(str(record.get("region", "")) or None)
        value = str(record.get("suspect_rank", "")).strip()
        rank.append(int(float(value)) if value not in ("", "nan") else None)
        flag = str(record.get("suspect", "")).strip().lower()
        suspect.append(flag in ("1", "true", "yes") if flag else rank[-1] is not None and rank[-1] <= SUSPECTS)
    return {"region": region, "suspectRank": rank, "suspect": suspect}


def _b64(array: np.ndarray) -> str:
    """An array's little-endian bytes as base64 text (decoded into a typed array by the page)."""
    array = np.ascontiguousarray(array)
    return base64.b64encode(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()).decode("ascii")
