"""The catalogue feature schema: fitted on training rows only, applied row by row, stored as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentlapse.xray.data.feature_choice import choose_columns, exclusion_reason, flag_values, likely_placeholders
from latentlapse.xray.data.schema import FLAG, NUMBER, FeatureSchema, fit_schema, log10_notes, parse_columns
from latentlapse.core.errors import InputError

RAW = np.array([
    [1.0, 10.0],
    [2.0, np.nan],
    [3.0, 30.0],
    [1000.0, 40.0],   # row 3: a test row with a far larger value
    [np.nan, 50.0],   # row 4: a test row
])


def test_fit_uses_only_the_training_rows():
    schema = fit_schema(RAW, ["flux", "mag"], np.array([0, 1, 2]))
    assert schema.medians == (2.0, 20.0)  # the whole column's medians would be 2.5 and 35
    assert schema.indicators == ("mag",)  # flux has a gap only in a test row
    assert schema.input_names == ("flux", "mag", "mag_missing")
    assert schema.log10 == (False, False, False)  # 1..3 spans < 100x; with row 3 it would be log10


def test_transform_fills_with_training_medians_row_by_row():
    schema = fit_schema(RAW, ["flux", "mag"], np.array([0, 1, 2]))
    whole = schema.transform(RAW)
    np.testing.assert_array_equal(whole[4], np.float32([2.0, 50.0, 0.0]))
    np.testing.assert_array_equal(whole[1], np.float32([2.0, 20.0, 1.0]))
    alone = np.vstack([schema.transform(RAW[i:i + 1]) for i in range(len(RAW))])
    np.testing.assert_array_equal(alone, whole)


def test_log10_and_scaling_come_from_the_training_rows():
    raw = np.array([[1.0], [10.0], [1000.0], [1e6]])
    schema = fit_schema(raw, ["flux"], np.array([0, 1, 2]))
    assert schema.log10 == (True,)
    assert schema.mean[0] == pytest.approx(np.mean([0.0, 1.0, 3.0]))
    assert schema.std[0] == pytest.approx(np.std([0.0, 1.0, 3.0]))


def test_a_value_below_zero_keeps_a_wide_column_off_log10_and_is_named(tmp_path, shared_data):
    """One bad flux in a damaged copy of the real catalogue: the column stays linear (zeros and
    negative values are often real), and the run's notes name it, its first line and the cost."""
    import csv

    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.prepare import prepare

    rows = list(csv.reader(open(shared_data / "catalogs" / "muwclass_cscv2_td_2022.csv", newline="")))
    column = rows[0].index("Fs")
    assert rows[17][-1] == "AGN"  # line 18: a labelled AGN, in the training split of seed 42
    rows[17][column] = "-1e-16"
    damaged = tmp_path / "damaged.csv"
    with open(damaged, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    prepared = prepare(TrainConfig(data=str(damaged), epochs=1, seed=42))
    assert not dict(zip(prepared.schema.input_names, prepared.schema.log10))["Fs"]
    expected = ("Fs is fed linearly, not as log10: 1 of 2352 training rows holds a value <= 0 (the first: line 18, "
                "-1e-16), though its positive values span 8e-18 to 3.69e-12; on the linear scale 86% of its values "
                "lie in the lowest 1% of its range; if those values are errors, fix them or leave the cells empty "
                "(read as missing)")
    assert expected in prepared.dataset.notes and f"note: {expected}" in prepared.messages
    # the real values <= 0 of the undamaged catalogue (P_intra 0, W1mag < 0, Plx <= 0) barely squeeze
    # their columns on the linear scale: no note for them
    assert not any("fed linearly" in note for note in prepared.dataset.notes if not note.startswith("Fs "))


def test_log10_notes_name_a_source_where_lines_are_unknown():
    raw = np.array([[1e-15], [-1e-16], [1e-12], [3e-14]])
    schema = fit_schema(raw, ["flux"], np.arange(4))
    assert schema.log10 == (False,)
    notes = log10_notes(schema, raw, np.arange(4), lambda i: f"source S{i + 1}")
    assert len(notes) == 1 and "1 of 4 training rows holds a value <= 0 (the first: source S2, -1e-16)" in notes[0]
    train = np.array([0, 2, 3])  # without the bad row the column is fed as log10, and the row is named
    logged = fit_schema(raw, ["flux"], train)
    assert logged.log10 == (True,)
    assert log10_notes(logged, raw, train, lambda i: f"source S{i + 1}") == [
        "flux is fed as log10, but 1 row outside the training split holds a value <= 0 (the first: source S2, "
        "-1e-16), which the model reads as 1e-30, far below every training value; fix those values, or leave the "
        "cells empty (read as missing)"]


def test_column_without_training_values_is_left_out_with_its_reason():
    raw = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 5.0]])
    schema = fit_schema(raw, ["a", "b"], np.array([0, 1]), left_out=[("RA", "sky position")])
    assert schema.columns == ("a",)
    assert dict(schema.left_out) == {"RA": "sky position", "b": "no value in the training split"}


def test_placeholders_are_missing_in_fit_and_transform():
    raw = np.array([[-99.0], [4.0], [6.0], [-99.0]])
    schema = fit_schema(raw, ["mag"], np.array([0, 1, 2]), placeholders=[-99.0])
    assert schema.medians == (5.0,) and schema.indicators == ("mag",)
    np.testing.assert_array_equal(schema.transform(raw[3:]), np.float32([[5.0, 1.0]]))


def test_round_trip_through_plain_json():
    schema = fit_schema(RAW, ["flux", "mag"], np.array([0, 1, 2]), types=[NUMBER, FLAG], placeholders=[-99.0],
                        left_out=[("RA", "sky position")])
    stored = json.loads(json.dumps(schema.to_dict()))
    assert FeatureSchema.from_dict(stored) == schema
    assert stored["inputs"] == ["flux", "mag", "mag_missing"] and stored["left_out"] == {"RA": "sky position"}


def test_parse_columns_reads_only_the_schema_columns_with_its_types():
    schema = fit_schema(np.array([[1.0, 1.0], [2.0, 0.0]]), ["f", "flag"], np.array([0, 1]), types=[NUMBER, FLAG])
    block = {"f": ["1.5", "", "nan"], "flag": ["t", "N", ""], "other": ["-", "x", "?"]}
    raw = parse_columns(schema, block, 3, lambda i, name: f"f.csv: line {i + 2}, column {name}")
    np.testing.assert_array_equal(raw, [[1.5, 1.0], [np.nan, 0.0], [np.nan, np.nan]])
    absent = parse_columns(schema, {"f": ["1"]}, 1, lambda i, name: "")
    assert np.isnan(absent[0, 1])


def test_parse_columns_names_the_bad_cell():
    schema = fit_schema(np.array([[1.0], [2.0]]), ["f"], np.array([0, 1]))
    with pytest.raises(InputError, match=r"f\.csv: line 3, column 2 \(f\): '-' is not a number, as the model's column f must be"):
        parse_columns(schema, {"f": ["1", "-"]}, 2, lambda i, name: f"f.csv: line {i + 2}, column 2 ({name})")


@pytest.mark.parametrize("name, reason", [
    ("CSCv2_RA", "sky position"), ("CSCv2_DEC", "sky position"), ("RAJ2000", "sky position"),
    ("DEJ2000", "sky position"), ("ra", "sky position"), ("Dec", "sky position"), ("GLON", "sky position"),
    ("glat", "sky position"), ("l", "sky position"), ("b", "sky position"), ("RA_ICRS", "sky position"),
    ("CSCv2_PU", "positional error"), ("e_RA", "positional error"), ("dec_err", "positional error"),
    ("err_ellipse_r0", "positional error"), ("CSCv2_S/N", "detection significance"), ("snr", "detection significance"),
    ("significance", "detection significance"), ("ObsID", "observation bookkeeping"),
    ("exposure", "observation bookkeeping"), ("theta", "observation bookkeeping"),
    ("off_axis", "observation bookkeeping"), ("MJD", "observation bookkeeping"),
    ("Fs", None), ("b_rgeo", None), ("B_rgeo", None), ("Gmag", None), ("P_inter", None), ("Plx", None),
    ("hard_hm", None), ("PM", None), ("W1mag", None),
    # physical columns the word rules once dropped with a false reason (review 7c F4)
    ("pmRA", None), ("pmDE", None), ("pm_dec", None), ("e_pmRA", None), ("PMRA", None),
    ("flux_obs", None), ("Fb_obs", None), ("Lx_obs", None), ("var_significance", None), ("B", None), ("L", None),
    ("n_obs", "observation bookkeeping"), ("OBS_ID", "observation bookkeeping"), ("obs", "observation bookkeeping"),
    ("obs_date", "observation bookkeeping"), ("flux_significance_b", "detection significance"),
    ("CSCv2_significance", "detection significance"), ("src_significance", "detection significance"),
    ("GAL_B", "sky position"),
    # what the narrowing must keep out (review 8 F3, F4): detection significances of any name but
    # variability, observation dates, 4XMM's detection likelihood
    ("detect_significance", "detection significance"), ("xray_significance", "detection significance"),
    ("total_significance", "detection significance"), ("soft_signif", "detection significance"),
    ("ext_significance", "detection significance"), ("ks_significance", None),
    ("OBS_START", "observation bookkeeping"), ("obs_stop", "observation bookkeeping"),
    ("first_obs", "observation bookkeeping"), ("SC_DET_ML", "detection significance"),
])
def test_default_exclusions(name, reason):
    assert exclusion_reason(name) == reason


def test_proper_motions_and_observed_fluxes_are_features_and_a_proper_motion_error_its_quoted_error(tmp_path):
    """pmRA/pmDE were left out as sky position, e_pmRA as a positional error, Fb_obs as
    bookkeeping, var_significance as detection significance and B as sky position."""
    path = tmp_path / "cat.csv"
    path.write_text("name,RA,Dec,pmRA,e_pmRA,pmDE,Fb_obs,var_significance,B,True_Class\n"
                    "A,10.1,-5,3.5,0.2,-1.1,1e-14,2.5,17.2,AGN\nB,11.2,-6,0.1,0.1,0.3,2e-14,9.1,12.1,CV\n")
    from latentlapse.xray.data.readers import load_dataset

    data = load_dataset(path)
    assert data.feature_names == ("pmRA", "pmDE", "Fb_obs", "var_significance", "B")
    assert dict(data.left_out) == {"RA": "sky position", "Dec": "sky position", "name": "name or id",
                                   "e_pmRA": "quoted error of pmRA"}


def test_choose_columns_named_features_override_and_exclude_removes():
    chosen, left = choose_columns(["RA", "Fs", "Gmag"], None, exclude=["Gmag"])
    assert chosen == ["Fs"] and dict(left) == {"Gmag": "--exclude", "RA": "sky position"}
    chosen, left = choose_columns(["RA", "Fs", "Gmag"], ["RA", "Fs"])
    assert chosen == ["RA", "Fs"] and dict(left) == {"Gmag": "not in --features"}


def test_flag_values():
    np.testing.assert_array_equal(flag_values(["t", "F", "", "yes", "n"]), [1, 0, np.nan, 1, 0])
    assert flag_values(["t", "maybe"]) is None


def test_likely_placeholders_at_an_end_of_the_range():
    rng = np.random.default_rng(0)
    flux = np.concatenate([10 ** rng.uniform(-15, -12, 500), np.full(40, 7.978845608028655e-18)])
    assert likely_placeholders(flux) == [(7.978845608028655e-18, 40)]
    rounded = np.round(rng.normal(0.0, 0.3, 500), 1)  # a rounded measurement repeats in mid-range
    assert likely_placeholders(rounded) == []
    probability = np.concatenate([rng.uniform(0, 1, 300), np.ones(100)])  # saturating at 1
    assert likely_placeholders(probability) == []
