"""The built-in EPIC-pn simulator: sizes, normalisation, noise, randomness, and realism.

The realism tests compare class means with the values read off real normalised pn spectra
(DOMAIN.md, "Realism check"); they are statistical, so they use thresholds, not exact values.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray.data import grid, instrument, simulate
from latentlapse.xray.data.taxonomy import FINE_LABELS, UNLABELLED
from latentlapse.core.errors import UsageError

STARS = ["HM-STAR", "LM-STAR"]
NS_GROUP = ["NS", "LMXB", "HMXB", "NS_BIN"]
ENERGY = grid.centres()


@pytest.fixture(scope="module")
def default_set():
    return simulate.simulate_dataset()


@pytest.fixture(scope="module")
def mixed_set():
    return simulate.simulate_dataset(n=3000, unlabelled=500, seed=7)


def class_mean(dataset, labels) -> np.ndarray:
    return dataset.X[np.isin(dataset.labels, labels)].mean(axis=0, dtype=np.float64)


def at(mean: np.ndarray, energy_kev: float, half_width: int = 2) -> float:
    """The mean spectrum around ``energy_kev``, averaged over 2·half_width + 1 bins."""
    i = int((energy_kev - grid.E_MIN_KEV) // grid.BIN_WIDTH_KEV)
    return float(mean[max(i - half_width, 0): i + half_width + 1].mean())


def within_factor(value: float, expected: float, factor: float) -> bool:
    return expected / factor <= value <= expected * factor


# ----------------------------------------------------------------------------------- sizes
def test_default_set_has_the_real_sets_class_sizes(default_set):
    assert simulate.DEFAULT_COUNTS == {"AGN": 1340, "LM-STAR": 600, "HM-STAR": 345, "YSO": 246, "CV": 99,
                                       "NS": 40, "LMXB": 25, "HMXB": 20, "NS_BIN": 15}
    assert len(default_set) == 2730
    assert default_set.label_counts() == dict(sorted(simulate.DEFAULT_COUNTS.items()))


def test_shapes_types_and_metadata(default_set):
    d = default_set
    assert d.X.shape == (2730, 380) and d.X.dtype == np.float32
    assert d.kind == "spectra"
    np.testing.assert_array_equal(d.energy, ENERGY)
    assert d.feature_names[0] == "E0.5125" and d.feature_names[-1] == "E9.9875"
    assert len(d.feature_names) == 380
    assert list(d.ids[:2]) == ["SIM000001", "SIM000002"] and d.ids[-1] == "SIM002730"
    assert d.source == "simulated EPIC-pn (seed 42, n=2730)"


def test_rows_are_shuffled_so_classes_interleave(default_set):
    first_hundred = set(default_set.labels[:100])
    assert len(first_hundred) >= 4


def test_rows_sum_to_one(default_set):
    np.testing.assert_allclose(default_set.X.sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)


def test_class_counts_scale_with_largest_remainders():
    counts = simulate.class_counts(3000)
    assert sum(counts.values()) == 3000
    for label, size in counts.items():
        assert abs(size - simulate.DEFAULT_COUNTS[label] * 3000 / 2730) < 1
    assert simulate.class_counts(None) == simulate.DEFAULT_COUNTS


@pytest.mark.parametrize("n", [18, 25, 60, 137])
def test_small_sets_keep_two_sources_per_class(n):
    counts = simulate.class_counts(n)
    assert sum(counts.values()) == n
    assert min(counts.values()) == 2


def test_the_two_per_class_minimum_is_noted_where_it_changes_the_proportions(caplog):
    with caplog.at_level("INFO", logger="latentlapse.xray.data.simulate"):
        simulate.class_counts(20)
        simulate.class_counts(3000)
    assert [r.getMessage() for r in caplog.records] == [
        "n=20: every class keeps at least 2 sources, so the proportions differ from the real set's "
        "(AGN 10 -> 2, LM-STAR 4 -> 3, CV 1 -> 2, NS 0 -> 2, LMXB 0 -> 2, HMXB 0 -> 2, NS_BIN 0 -> 2)"]


def test_explicit_counts_override_the_proportions():
    d = simulate.simulate_dataset(counts={"CV": 3, "YSO": 2}, seed=1)
    assert d.label_counts() == {"CV": 3, "YSO": 2}


def test_unknown_class_in_counts_is_refused():
    with pytest.raises(UsageError, match="unknown class.*QSO"):
        simulate.simulate_dataset(counts={"QSO": 3})


def test_n_contradicting_counts_is_refused():
    with pytest.raises(UsageError, match="n=10 contradicts counts, which sum to 3"):
        simulate.simulate_dataset(n=10, counts={"CV": 3})


def test_negative_unlabelled_is_refused():
    with pytest.raises(UsageError, match="unlabelled sources must be ≥ 0, got -1"):
        simulate.simulate_dataset(n=20, unlabelled=-1)


def test_unlabelled_rows_come_after_the_labelled_ones(mixed_set):
    d = mixed_set
    assert len(d) == 3500
    assert d.source == "simulated EPIC-pn (seed 7, n=3000, unlabelled=500)"
    assert np.all(d.labels[3000:] == UNLABELLED) and np.all(d.labels[:3000] != UNLABELLED)
    labelled = {k: v for k, v in d.subset(np.arange(3000)).label_counts().items()}
    assert labelled == dict(sorted(simulate.class_counts(3000).items()))
    assert len(set(d.ids)) == 3500 and d.ids[-1] == "SIM003500"
    # Their true classes follow the same mixture (multinomial draw: ~4 sigma tolerance).
    truth = d.params["true_label"][3000:]
    share = np.mean(truth == "AGN")
    assert abs(share - 1340 / 2730) < 4 * np.sqrt(0.25 / 500)
    assert set(truth) <= set(FINE_LABELS)


# ------------------------------------------------------------------------ counts and noise
def test_expected_counts_follow_n_above_c_proportional_to_inverse_c(default_set):
    expected = default_set.params["expected_counts"]
    assert expected.min() >= 300 and expected.max() <= 3e4
    # N(>C) ∝ 1/C truncated to [300, 3e4]: median 594, 9.1% above 3000.
    assert 540 < np.median(expected) < 650
    assert 0.07 < np.mean(expected > 3000) < 0.11


def test_net_counts_scatter_as_poisson_source_plus_subtracted_background(default_set):
    p = default_set.params
    np.testing.assert_array_equal(p["net_counts"], default_set.counts)
    background = simulate.BACKGROUND_COUNTS_PER_KS * p["exposure_ks"]
    sigma = np.sqrt(p["expected_counts"] + background * (1 + p["area_ratio"]))
    assert np.all(np.abs(default_set.counts - p["expected_counts"]) < 6 * sigma)
    assert default_set.counts.min() > 150 and default_set.counts.max() < 3.1e4


def test_negative_bins_are_small_and_where_the_source_is_faint(default_set):
    d = default_set
    net_bin_counts = d.X * d.counts[:, None]
    # Over-subtraction is a few scaled background counts at most, never a large dip.
    assert net_bin_counts.min() > -15
    assert d.X.min() > -0.05
    # Below 2 keV almost every source outshines the background: negatives are rare there,
    # and rarer still for bright sources below 5 keV.
    assert np.mean(d.X[:, ENERGY < 2] < 0) < 0.1
    bright = d.counts > 3000
    assert np.mean(d.X[bright][:, ENERGY < 5] < 0) < 0.1


# ------------------------------------------------------------------------------ randomness
def test_same_seed_gives_bit_identical_data(default_set):
    again = simulate.simulate_dataset()
    np.testing.assert_array_equal(again.X, default_set.X)
    np.testing.assert_array_equal(again.counts, default_set.counts)
    np.testing.assert_array_equal(again.labels, default_set.labels)
    for name, values in default_set.params.items():
        np.testing.assert_array_equal(again.params[name], values)


def test_another_seed_gives_other_data():
    a = simulate.simulate_dataset(n=30, seed=1)
    b = simulate.simulate_dataset(n=30, seed=2)
    assert not np.array_equal(a.X, b.X)


def test_global_numpy_random_state_is_untouched():
    np.random.seed(0)
    state = np.random.get_state()
    simulate.simulate_dataset(n=30, unlabelled=5, seed=3)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


# ------------------------------------------------------------------------------ parameters
def test_parameters_are_present_and_physical(default_set):
    p, labels = default_set.params, default_set.labels
    for name in ("nh", "gamma", "kT1", "kT2", "kT_bb", "redshift", "net_counts", "model"):
        assert len(p[name]) == 2730
    agn = labels == "AGN"
    assert np.all((p["gamma"][agn] >= 1.2) & (p["gamma"][agn] <= 3.0))
    assert abs(np.mean(p["gamma"][agn]) - 1.97) < 0.05
    assert np.all(p["nh"][agn] >= 1e20) and np.all(p["nh"][agn] <= 5e20 + 1e23)
    assert 0.18 < np.mean(p["nh_intrinsic"][agn] > 0) < 0.32
    assert np.all(np.isfinite(p["redshift"][agn])) and np.all(np.isnan(p["redshift"][~agn]))
    assert np.all(np.isnan(p["kT1"][agn]))
    for label, kt1, kt2, nh in [("LM-STAR", (0.25, 0.6), (0.7, 5.0), (1e19, 2e21)),
                                ("HM-STAR", (0.2, 0.4), (0.6, 1.0), (3e21, 2e22)),
                                ("YSO", (0.6, 1.0), (2.0, 5.0), (2e21, 5e22))]:
        rows = labels == label
        assert np.all((p["kT1"][rows] >= kt1[0]) & (p["kT1"][rows] <= kt1[1]))
        assert np.all((p["kT2"][rows] >= kt2[0]) & (p["kT2"][rows] <= kt2[1]))
        assert np.all((p["nh"][rows] >= nh[0]) & (p["nh"][rows] <= nh[1]))
        assert np.all(np.isnan(p["gamma"][rows]))
    hmxb = labels == "HMXB"
    assert np.all((p["nh"][hmxb] >= 5e21) & (p["nh"][hmxb] <= 1e23))
    assert set(p["model"][labels == "NS"]) <= {"pulsar", "magnetar", "isolated"}


# ------------------------------------------------------------------------------ instrument
def test_instrument_tables_match_the_calibration():
    area = instrument.effective_area(np.array([0.5, 1.0, 1.5, 2.27, 5.0, 10.0]))
    np.testing.assert_allclose(area, [756, 1086, 1190, 745, 804, 222], rtol=0.03)
    assert instrument.cross_section(np.array([1.0]))[0] == pytest.approx(2.422e-22, rel=1e-3)


def test_response_has_the_pn_resolution():
    energy, response = instrument.model_energies(), instrument.response_matrix()
    row = response[np.argmin(np.abs(energy - 6.4))]
    assert row.sum() == pytest.approx(1.0, abs=1e-3)
    above_half = ENERGY[row >= row.max() / 2]
    assert above_half.max() - above_half.min() == pytest.approx(0.205, abs=0.03)


def test_background_is_flat_with_al_and_cu_lines():
    shape = instrument.background_shape()
    assert shape.sum() == pytest.approx(1.0)
    continuum = np.median(shape)
    for line in (1.49, 8.04):
        assert at(shape, line, 0) > 2 * continuum
    assert at(shape, 4.0) == pytest.approx(continuum, rel=0.05)


# -------------------------------------------------------------------------------- realism
def test_coronal_stars_peak_at_the_fe_l_bump(default_set):
    for labels in (STARS, ["LM-STAR"]):
        mean = class_mean(default_set, labels)
        assert 0.7 <= ENERGY[np.argmax(mean)] <= 0.95
    stars = class_mean(default_set, STARS)
    assert within_factor(stars.max(), 0.037, 1.5)
    assert within_factor(stars[0], 0.020, 1.5)
    assert within_factor(at(stars, 1.0), 0.023, 1.5)


def test_agn_fall_from_0p5_kev(default_set):
    mean = class_mean(default_set, ["AGN"])
    assert np.argmax(mean) <= 2
    coarse = mean[: 60].reshape(15, 4).mean(axis=1)  # 0.5–2 keV in 0.1 keV steps
    assert np.all(np.diff(coarse) < 0)
    assert within_factor(mean[0], 0.033, 1.5)
    assert within_factor(at(mean, 1.0), 0.015, 1.5)
    assert within_factor(at(mean, 2.0), 0.005, 1.5)


def test_yso_are_absorbed_below_1_kev(default_set):
    soft = slice(0, 8)  # 0.5–0.7 keV
    yso = class_mean(default_set, ["YSO"])[soft].mean()
    stars = class_mean(default_set, STARS)[soft].mean()
    assert yso < 0.3 * stars


def test_cvs_and_neutron_stars_are_harder_than_stars(default_set):
    hard = ENERGY > 5

    def above_5(labels):
        return class_mean(default_set, labels)[hard].sum()

    assert above_5(["CV"]) > 3 * above_5(STARS)
    assert above_5(NS_GROUP) > 3 * above_5(STARS)


def test_cv_and_neutron_star_means_match_real_spectra(default_set):
    cv = class_mean(default_set, ["CV"])
    assert within_factor(at(cv, 1.0), 0.016, 1.5)
    assert within_factor(at(cv, 2.0), 0.005, 1.5)
    assert within_factor(at(cv, 5.0, 8), 0.0015, 1.5)
    ns = class_mean(default_set, NS_GROUP)
    assert np.argmax(ns) <= 2
    assert within_factor(ns[0], 0.021, 1.5)
    assert within_factor(at(ns, 1.0), 0.010, 1.5)
    assert within_factor(at(ns, 2.0), 0.0045, 1.5)
    assert within_factor(at(ns, 5.0, 8), 0.002, 1.5)


def test_fe_k_lines_stand_out_in_hmxb_and_cv():
    d = simulate.simulate_dataset(counts={"HMXB": 300, "CV": 300}, seed=11)
    for label in ("HMXB", "CV"):
        mean = class_mean(d, [label])
        assert at(mean, 6.4, 1) > 1.15 * (at(mean, 5.9, 4) + at(mean, 7.3, 4)) / 2


# ---------------------------------------------------------------------------- the command
def test_simulate_command_writes_the_text_format_and_the_plot(tmp_path):
    out, png = tmp_path / "s.txt", tmp_path / "means.png"
    assert simulate.run_command(out=out, n=40, unlabelled=5, seed=7, plot=png) == 0
    rows = [line.split() for line in out.read_text().splitlines()]
    assert [len(r) for r in rows] == [383] * 40 + [382] * 5
    assert rows[0][0] == "SIM000001" and rows[0][-1] in FINE_LABELS
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["means.png", "s.txt"]


def test_the_built_in_set_records_the_checksum_of_simulates_default_file(tmp_path):
    from latentlapse.xray import cli
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.prepare import file_sha256, load_data

    out = tmp_path / "default.txt"
    assert cli.main(["simulate", "--out", str(out)]) == 0
    _, digest = load_data(TrainConfig())
    # the same data under either name: compare aligns the two runs, evaluate knows its training file
    assert digest == file_sha256(out)


@pytest.mark.parametrize("flags, message", [
    (["--out", "s.txt", "--seed", "-1"], "--seed must be a non-negative integer below 2**63, got -1"),
    (["--out", "nodir/s.txt"], "--out nodir/s.txt: the folder nodir does not exist; create it or choose another --out"),
    (["--out", "s.txt", "--plot", "nodir/m.png"],
     "--plot nodir/m.png: the folder nodir does not exist; create it or choose another --plot"),
    (["--out", "s.fits"], "--out s.fits: simulate does not write '.fits' files; end the name in .txt or .dat "
                          "(the text format) or .csv"),
    (["--out", "s.pha", "--label_noise", "0.1"], "--out s.pha: simulate does not write '.pha' files"),
    (["--out", "spectra"], "--out spectra: the file name has no suffix"),
])
def test_simulate_refuses_bad_flags_in_one_line_before_writing(tmp_path, monkeypatch, capsys, flags, message):
    from latentlapse.xray import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["simulate", "--n", "20", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []
