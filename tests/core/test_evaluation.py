import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

from latentlapse.core import evaluation


def test_scores_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    s = evaluation.scores(y_true, y_pred, 4)
    assert s["acc"] == pytest.approx(np.mean(y_true == y_pred))
    assert s["balanced_acc"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert s["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    stats = evaluation.per_class(evaluation.confusion(y_true, y_pred, 4))
    assert np.allclose(stats["precision"], p) and np.allclose(stats["recall"], r) and np.allclose(stats["f1"], f)
    assert stats["support"].tolist() == support.tolist()


def test_confusion_matrix_on_a_literal_case():
    cm = evaluation.confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_report_text_names_classes_and_matrix():
    text = evaluation.report_text(np.array([0, 1, 1]), np.array([0, 1, 0]), ["AGN", "HM/LM"])
    assert "AGN" in text and "HM/LM" in text and "Confusion matrix" in text
    report = evaluation.report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["AGN", "HM/LM"])
    assert report["confusion_matrix"] == [[1, 0], [1, 1]]
    assert report["per_class"]["HM/LM"]["recall"] == 0.5


def test_a_class_without_support_has_no_recall_and_leaves_the_macro_averages_alike():
    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2])  # no source of class 3
    y_pred = np.array([0, 0, 1, 1, 1, 3, 2, 0])  # ... but one called class 3
    stats = evaluation.per_class(evaluation.confusion(y_true, y_pred, 4))
    assert np.isnan(stats["recall"][3]) and np.isnan(stats["f1"][3]) and stats["precision"][3] == 0.0
    s = evaluation.scores(y_true, y_pred, 4)
    assert s["balanced_acc"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert s["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2], average="macro"))
    text = evaluation.report_text(y_true, y_pred, ["A", "B", "C", "D"])
    macro = next(line.split() for line in text.splitlines() if line.strip().startswith("macro avg"))
    assert float(macro[3]) == pytest.approx(s["balanced_acc"], abs=5e-5)
    assert float(macro[4]) == pytest.approx(s["macro_f1"], abs=5e-5)
    assert not any(line.split()[:1] == ["D"] for line in text.splitlines()[:8])  # no row of D in the table
    assert ("D: no source of this class among those scored (support 0), so it has no recall or F1 and is left out "
            "of the table and the macro averages; the model called 1 source D, all wrong") in text
