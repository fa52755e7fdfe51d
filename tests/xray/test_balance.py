import numpy as np
import pytest

from latentlapse.xray.data.balance import (
    augment_spectra,
    balanced_sample_weights,
    oversample,
    stratified_split,
    target_counts,
)


def test_split_keeps_every_class_on_both_sides_and_is_disjoint():
    y = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3] * 3)
    split = stratified_split(y, 0.2, np.random.default_rng(0))
    assert set(split.train).isdisjoint(split.val)
    assert sorted(np.concatenate([split.train, split.val])) == list(range(len(y)))
    assert np.bincount(y[split.val], minlength=4).tolist() == [10, 2, 1, 1]
    assert np.bincount(y[split.train], minlength=4).tolist() == [40, 8, 1, 2]


def test_target_counts_follow_the_fraction_of_the_majority():
    counts = np.array([1072, 756, 276, 80])
    assert target_counts(counts, 1.0).tolist() == [1072, 1072, 1072, 1072]
    assert target_counts(counts, 0.7).tolist() == [1072, 756, 751, 751]
    assert target_counts(counts, 0.0).tolist() == counts.tolist()


def _spectra(y, rng):
    X = rng.random((len(y), 380)).astype(np.float32)
    return X / X.sum(axis=1, keepdims=True)


def test_oversampling_gives_exact_counts_and_copies_come_only_from_training_rows():
    rng = np.random.default_rng(1)
    y = np.array([0] * 40 + [1] * 12 + [2] * 5)
    X = _spectra(y, rng)
    result = oversample(X, y, 3, 1.0, np.random.default_rng(2), kind="spectra", counts=np.full(len(y), 2000.0))
    assert result.counts_after.tolist() == [40, 40, 40]
    assert np.bincount(result.y).tolist() == [40, 40, 40]
    assert np.array_equal(result.X[: len(y)], X)  # originals first, untouched
    assert np.all(result.origin < len(y)) and np.all(y[result.origin] == result.y)
    copies = result.X[len(y):]
    assert not any(np.array_equal(c, X[o]) for c, o in zip(copies, result.origin[len(y):]))  # all augmented
    # copies cycle through the class evenly: class 2 (5 sources, 35 copies) -> each copied 7 times
    assert np.bincount(result.origin[len(y):][result.y[len(y):] == 2]).tolist()[-5:] == [7] * 5


def test_no_validation_source_among_training_copies():
    rng = np.random.default_rng(4)
    y = np.array([0] * 60 + [1] * 15 + [2] * 6)
    split = stratified_split(y, 0.25, rng)
    X = _spectra(y, rng)
    result = oversample(X[split.train], y[split.train], 3, 1.0, rng, kind="spectra", counts=np.full(len(split.train), 1000.0))
    source_rows = split.train[result.origin]
    assert set(source_rows).isdisjoint(split.val)


def test_augmented_spectra_stay_normalised_and_near_their_source():
    rng = np.random.default_rng(5)
    energy = np.linspace(0.5, 10, 380)
    X = np.tile((energy ** -2 / (energy ** -2).sum()).astype(np.float32), (200, 1))
    out = augment_spectra(X, np.full(200, 20000.0), 0.5, rng)
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(out.mean(axis=0), X[0], atol=2e-4)
    assert out.std(axis=0).max() > 0


def test_rarer_classes_get_noisier_copies():
    rng = np.random.default_rng(6)
    X = np.full((400, 380), 1 / 380, dtype=np.float32)
    common = augment_spectra(X, np.full(400, 3000.0), 0.0, rng)
    rare = augment_spectra(X, np.full(400, 3000.0), 1.0, rng)
    assert rare.std() > common.std() * 1.1


def test_catalogue_noise_stays_within_quoted_errors_and_spares_flags():
    rng = np.random.default_rng(7)
    X = np.column_stack([np.full(300, 10.0), rng.integers(0, 2, 300).astype(float)]).astype(np.float32)
    errors = np.column_stack([np.full(300, 0.5), np.full(300, np.nan)])
    y = np.array([0] * 290 + [1] * 10)
    result = oversample(X, y, 2, 1.0, rng, kind="catalog", errors=errors)
    copies = result.X[300:]
    assert np.all(np.isin(copies[:, 1], (0.0, 1.0)))
    strength = 1 - 10 / 290
    assert copies[:, 0].std() == pytest.approx(0.5 * (0.5 + 0.5 * strength), rel=0.15)


def test_balanced_sampler_weights_make_classes_equally_likely():
    y = np.array([0, 0, 0, 1])
    weights = balanced_sample_weights(y, 2)
    assert weights[y == 0].sum() == pytest.approx(weights[y == 1].sum())


def test_augmenter_redraws_the_same_sources_with_new_noise():
    y = np.array([0] * 30 + [1] * 6)
    energy = np.linspace(0.5, 10, 380)
    slopes = np.concatenate([np.linspace(0.5, 3.0, 30), [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]])
    X = energy[None, :] ** -slopes[:, None]  # smooth power laws, clearly distinct within class 1
    X = (X / X.sum(axis=1, keepdims=True)).astype(np.float32)
    result = oversample(X, y, 2, 1.0, np.random.default_rng(9), kind="spectra", counts=np.full(len(y), 1e5))
    augmenter = result.augmenter
    assert augmenter.n_rows == 60 and np.array_equal(augmenter.origin, result.origin[len(y):])
    again = augmenter.copies(np.random.default_rng(10))
    assert again.shape == (24, 380) and again.dtype == np.float32
    assert not np.array_equal(again, result.X[len(y):])
    # each new copy is still near its own source, nearer than to the other sources of its class
    distance = np.abs(again[:, None, :] - X[None, y == 1, :]).sum(axis=2)
    assert np.array_equal(distance.argmin(axis=1), augmenter.origin - 30)
    assert np.array_equal(augmenter.copies(np.random.default_rng(10)), again)


def test_epoch_rows_redraw_every_row_and_keep_the_order():
    y = np.array([0] * 300 + [1] * 30)
    energy = np.linspace(0.5, 10, 380)
    X = energy[None, :] ** -np.random.default_rng(11).uniform(0.0, 3.0, size=(len(y), 1))  # smooth power laws
    X = (X / X.sum(axis=1, keepdims=True)).astype(np.float32)
    result = oversample(X, y, 2, 1.0, np.random.default_rng(12), kind="spectra", counts=np.full(len(y), 1e5))
    rows = result.augmenter.epoch_rows(np.random.default_rng(13))
    assert rows.shape == result.X.shape and rows.dtype == np.float32
    assert not np.any(np.all(rows == result.X, axis=1))
    assert np.allclose(rows.sum(axis=1), 1.0, atol=1e-4)
    # row i is still a draw of source origin[i]: closer to it than to the average source
    own = np.abs(rows - X[result.origin]).sum(axis=1)
    other = np.abs(rows - X.mean(axis=0)).sum(axis=1)
    assert np.mean(own < other) > 0.95
    assert np.array_equal(result.augmenter.epoch_rows(np.random.default_rng(13)), rows)


def test_a_source_with_an_enormous_count_level_is_redrawn_not_refused():
    X = np.full((2, 8), 1 / 8, dtype=np.float32)
    out = augment_spectra(X, np.array([1e300, 500.0]), 1.0, np.random.default_rng(0))  # numpy's Poisson stops near 1e19
    assert np.isfinite(out).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[0], 1 / 8, atol=1e-6)  # that many counts carry no visible noise
