"""Latent metrics: exact values on a tiny literal fixture, NaN for absent classes, column order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from latentlapse.core.timelapse.latent_metrics import frame_metrics, knn_predict, metric_columns
from latentlapse.core.timelapse.projection import Layout
from latentlapse.core.timelapse.snapshot import Snapshot

SHORT = ["AGN", "HM_LM", "YSO_CV", "NS_HMXB_LMXB_NS_BIN"]

# Training sample, 2-D features: AGN spread 1 around (1, 0); HM/LM spread 2 around (10, 2);
# YSO/CV spread 2 around (0, 12); no NS/HMXB/LMXB/NS_BIN at all.
TRAIN = np.array([[0, 0], [2, 0], [10, 0], [10, 4], [0, 10], [0, 14]], dtype=np.float32)
TRAIN_LABELS = [0, 0, 1, 1, 2, 2]
# Validation sample: an AGN, an HM/LM, a YSO/CV inside the HM/LM cluster, a YSO/CV at home.
VAL = np.array([[1, 0.1], [10, 2], [9, 1], [0, 13]], dtype=np.float32)
VAL_LABELS = [0, 1, 2, 2]
# Full validation split: 8 sources, 3 errors.
TRUE_ALL = np.array([0, 0, 1, 1, 2, 3, 3, 3])
PRED_ALL = np.array([0, 1, 1, 1, 0, 3, 3, 0])


@pytest.fixture
def row(tmp_path, make_spec):
    spec = make_spec(tmp_path, TRAIN_LABELS, VAL_LABELS)
    snapshot = Snapshot(
        epoch=10, train_features=TRAIN, val_features=VAL, val_pred=np.array([0, 1, 1, 2]),
        val_true_all=TRUE_ALL, val_pred_all=PRED_ALL, scores={"val_acc": 0.625},
    )
    layout = Layout(TRAIN.astype(float), VAL.astype(float), state=None)
    return frame_metrics(snapshot, spec, layout, previous=None)


def test_columns_are_the_fixed_header_in_order(row):
    assert list(row) == metric_columns(SHORT)
    assert len(row) == 10 + 4 + 6 + 4 + 16
    assert metric_columns(SHORT)[:10] == [
        "epoch", "val_acc", "val_errors", "val_total", "silhouette", "knn_acc",
        "trustworthiness", "displacement", "spread_ratio", "spread_mean",
    ]
    assert "dist_AGN__HM_LM" in row and "dist_HM_LM__AGN" not in row
    assert "knn_to_YSO_CV__YSO_CV" in row


def test_errors_and_recall_use_the_full_validation_split(row):
    assert row["epoch"] == 10
    assert row["val_acc"] == 0.625
    assert row["val_errors"] == 3
    assert row["val_total"] == 8
    assert row["recall_AGN"] == 0.5
    assert row["recall_HM_LM"] == 1.0
    assert row["recall_YSO_CV"] == 0.0
    assert row["recall_NS_HMXB_LMXB_NS_BIN"] == pytest.approx(2 / 3)


def test_spread_and_centroid_distances_in_feature_space(row):
    assert row["spread_AGN"] == pytest.approx(1.0)
    assert row["spread_HM_LM"] == pytest.approx(2.0)
    assert row["spread_YSO_CV"] == pytest.approx(2.0)
    assert row["spread_mean"] == pytest.approx(5 / 3)
    assert row["dist_AGN__HM_LM"] == pytest.approx(math.sqrt(85))
    assert row["dist_AGN__YSO_CV"] == pytest.approx(math.sqrt(145))
    assert row["dist_HM_LM__YSO_CV"] == pytest.approx(math.sqrt(200))
    mean_distance = (math.sqrt(85) + math.sqrt(145) + math.sqrt(200)) / 3
    assert row["spread_ratio"] == pytest.approx((5 / 3) / mean_distance)


def test_a_class_absent_from_the_samples_gives_nan(row):
    name = "NS_HMXB_LMXB_NS_BIN"
    assert math.isnan(row[f"spread_{name}"])
    assert math.isnan(row[f"dist_AGN__{name}"])
    assert all(math.isnan(row[f"knn_to_{name}__{d}"]) for d in SHORT)


def test_knn_neighbourhoods_name_the_class_a_minority_is_embedded_in(row):
    # Every validation point has 2 + 2 + 1 votes among its 5 neighbours; ties go to the class
    # of the nearest neighbour. The YSO/CV point at (9, 1) sits in the HM/LM cluster.
    assert row["knn_acc"] == 0.75
    assert row["knn_to_AGN__AGN"] == 1.0
    assert row["knn_to_HM_LM__HM_LM"] == 1.0
    assert row["knn_to_YSO_CV__HM_LM"] == 0.5
    assert row["knn_to_YSO_CV__YSO_CV"] == 0.5
    assert row["knn_to_YSO_CV__AGN"] == 0.0
    assert row["knn_to_YSO_CV__NS_HMXB_LMXB_NS_BIN"] == 0.0


def test_map_quality_and_silhouette(row):
    assert row["trustworthiness"] == 1.0  # the "map" is the features themselves
    assert math.isnan(row["displacement"])  # first frame
    assert row["silhouette"] == pytest.approx(silhouette_score(TRAIN, TRAIN_LABELS))


def test_displacement_is_recorded_against_the_previous_frame(tmp_path, make_spec, make_snapshot):
    spec = make_spec(tmp_path, TRAIN_LABELS, VAL_LABELS)
    snapshot = make_snapshot(2, TRAIN, VAL, VAL_LABELS, n_wrong=1)
    layout = Layout(TRAIN.astype(float), VAL.astype(float), state=None)
    row = frame_metrics(snapshot, spec, layout, previous=layout)
    assert row["displacement"] == pytest.approx(0.0, abs=1e-12)


def test_val_acc_is_computed_when_the_scores_lack_it(tmp_path, make_spec):
    spec = make_spec(tmp_path, TRAIN_LABELS, VAL_LABELS)
    snapshot = Snapshot(1, TRAIN, VAL, np.array(VAL_LABELS), TRUE_ALL, PRED_ALL, scores={})
    layout = Layout(TRAIN.astype(float), VAL.astype(float), state=None)
    assert frame_metrics(snapshot, spec, layout, None)["val_acc"] == 5 / 8


def test_one_class_only_gives_nan_instead_of_errors(tmp_path, make_spec):
    spec = make_spec(tmp_path, [0] * 6, [0] * 4)
    snapshot = Snapshot(1, TRAIN, VAL, np.zeros(4, int), np.zeros(3, int), np.zeros(3, int))
    layout = Layout(TRAIN.astype(float), VAL.astype(float), state=None)
    row = frame_metrics(snapshot, spec, layout, None)
    assert math.isnan(row["silhouette"])
    assert math.isnan(row["spread_ratio"])
    assert math.isnan(row["recall_HM_LM"])
    assert row["knn_acc"] == 1.0


def test_knn_majority_beats_a_nearer_single_neighbour():
    train = np.array([[0.0], [1.1], [1.2], [5.0], [6.0]])
    labels = np.array([1, 0, 0, 1, 1])
    # Neighbours of 0.5 by distance: class 1, 0, 0 (k=3): two votes for class 0 win.
    assert knn_predict(train, labels, np.array([[0.5]]), n_classes=2, k=3).tolist() == [0]


def test_knn_in_chunks_and_by_scikit_learn_for_large_references_match_the_full_sort(monkeypatch):
    from latentlapse.core.timelapse import latent_metrics

    generator = np.random.default_rng(3)
    train, query = generator.normal(size=(400, 8)), generator.normal(size=(90, 8))
    labels = generator.integers(0, 4, 400)
    full = knn_predict(train, labels, query, 4)
    monkeypatch.setattr(latent_metrics, "_KNN_CHUNK", 400 * 7)  # 7 query rows at a time
    np.testing.assert_array_equal(knn_predict(train, labels, query, 4), full)
    monkeypatch.setattr(latent_metrics, "_KNN_FULL_SORT_MAX", 100)  # a large map's path
    np.testing.assert_array_equal(knn_predict(train, labels, query, 4), full)


def test_quadratic_metrics_of_a_large_sample_use_a_fixed_subsample(monkeypatch, tmp_path, make_spec):
    from sklearn.manifold import trustworthiness

    from latentlapse.core.timelapse import latent_metrics

    monkeypatch.setattr(latent_metrics, "METRIC_SAMPLE_MAX", 40)
    generator = np.random.default_rng(5)
    train_labels, val_labels = np.arange(120) % 3, np.arange(60) % 3
    train = generator.normal(size=(120, 6)) + 4 * train_labels[:, None]
    val = generator.normal(size=(60, 6)) + 4 * val_labels[:, None]
    spec = make_spec(tmp_path, train_labels, val_labels)
    t, v = latent_metrics.metric_subsamples(120, 60, spec.seed)
    assert len(t) == len(v) == 40 and list(t) == sorted(set(t))
    again = latent_metrics.metric_subsamples(120, 60, spec.seed)  # the same points every frame
    np.testing.assert_array_equal(t, again[0])
    np.testing.assert_array_equal(v, again[1])
    assert latent_metrics.metric_subsamples(30, 20, spec.seed) == (slice(None), slice(None))
    snapshot = Snapshot(epoch=1, train_features=train, val_features=val, val_pred=val_labels,
                        val_true_all=val_labels, val_pred_all=val_labels, scores={})
    xy = train[:, :2] + generator.normal(size=(120, 2))
    row = frame_metrics(snapshot, spec, Layout(xy, val[:, :2], state=None), previous=None)
    assert row["silhouette"] == pytest.approx(silhouette_score(train[t], train_labels[t]))
    assert row["trustworthiness"] == pytest.approx(trustworthiness(train[t], xy[t], n_neighbors=10))
    expected = knn_predict(train, train_labels, val[v], 4)
    assert row["knn_acc"] == pytest.approx(np.mean(expected == val_labels[v]))
