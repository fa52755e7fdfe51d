"""Scores for imbalanced classes: accuracy, balanced accuracy, macro-F1, per-class P/R/F1.

Per-epoch scores are derived from one confusion matrix in numpy (cheap enough to run every
epoch); the end-of-run report uses scikit-learn's ``classification_report`` as well, and a
test checks the two agree. A class without support (no source of it among those scored) has no
recall and no F1: NaN, and left out of balanced accuracy, macro-F1 and the report's macro
averages, in the per-epoch history and in the report alike.
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
    """Precision, recall, F1 and support per class: recall and F1 NaN for a class without
    support; otherwise 0 where undefined (a class never predicted), as scikit-learn's
    ``zero_division=0`` does."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, cm.sum(axis=0))
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    recall[support == 0] = f1[support == 0] = np.nan
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
    """scikit-learn's classification report plus the confusion matrix, as plain text. The report
    lists the classes with support (``labels``), so its macro averages are those of
    :func:`scores`; a line names each class without support and says what became of it."""
    from sklearn.metrics import classification_report

    n = len(class_names)
    cm = confusion(y_true, y_pred, n)
    present = [c for c in range(n) if cm[c].sum() > 0] or list(range(n))
    text = classification_report(
        y_true, y_pred, labels=present, target_names=[class_names[c] for c in present], digits=4, zero_division=0
    )
    text += "".join(_no_support_line(class_names[c], int(cm[:, c].sum())) for c in range(n) if c not in present)
    width = max(8, max(len(name) for name in class_names) + 2)
    lines = ["Confusion matrix (rows: true class, columns: predicted class)", " " * width + "".join(f"{i:>8d}" for i in range(n))]
    for i, name in enumerate(class_names):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>8d}" for v in cm[i]))
    lines.append("columns: " + ", ".join(f"{i} = {name}" for i, name in enumerate(class_names)))
    return text + "\n" + "\n".join(lines) + "\n"


def _no_support_line(name: str, called: int) -> str:
    """What the report says of a class no scored source belongs to."""
    calls = (f"; the model called {called} source{'s' if called > 1 else ''} {name}, all wrong (counted in the "
             f"accuracy; the 'micro avg' line above replaces 'accuracy' because those calls fall outside the table)"
             if called else "")
    return (f"{name}: no source of this class among those scored (support 0), so it has no recall or F1 "
            f"and is left out of the table and the macro averages{calls}\n")
