"""Scores for imbalanced classes: accuracy, balanced accuracy, macro-F1, per-class P/R/F1.

Per-epoch scores are derived from one confusion matrix in numpy (cheap enough to run every
epoch); the end-of-run report uses scikit-learn's ``classification_report`` as well, and a
test checks the two agree.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class (int64)."""
    index = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn does)."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, cm.sum(axis=0))
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over classes present) and macro-F1."""
    cm = confusion(y_true, y_pred, n_classes)
    stats = per_class(cm)
    present = stats["support"] > 0
    total = cm.sum()
    return {
        "acc": float(np.trace(cm) / total) if total else float("nan"),
        "balanced_acc": float(stats["recall"][present].mean()) if present.any() else float("nan"),
        "macro_f1": float(stats["f1"][present].mean()) if present.any() else float("nan"),
    }


def report(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict[str, object]:
    """Everything ``final_metrics.json`` holds: the scores, per-class table and confusion matrix."""
    n = len(class_names)
    cm = confusion(y_true, y_pred, n)
    stats = per_class(cm)
    return {
        **scores(y_true, y_pred, n),
        "per_class": {
            name: {key: float(stats[key][i]) if key != "support" else int(stats[key][i]) for key in stats}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }


def report_text(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> str:
    """scikit-learn's classification report plus the confusion matrix, as plain text."""
    from sklearn.metrics import classification_report

    n = len(class_names)
    text = classification_report(
        y_true, y_pred, labels=list(range(n)), target_names=list(class_names), digits=4, zero_division=0
    )
    cm = confusion(y_true, y_pred, n)
    width = max(8, max(len(name) for name in class_names) + 2)
    lines = ["Confusion matrix (rows: true class, columns: predicted class)", " " * width + "".join(f"{i:>8d}" for i in range(n))]
    for i, name in enumerate(class_names):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>8d}" for v in cm[i]))
    lines.append("columns: " + ", ".join(f"{i} = {name}" for i, name in enumerate(class_names)))
    return text + "\n" + "\n".join(lines) + "\n"
