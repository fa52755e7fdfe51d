"""apply_scheme: fine labels onto 2 / 4 / 8 classes, refusing data a classifier cannot use."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.taxonomy import apply_scheme
from latentlapse.core.errors import InputError


def dataset(labels: list[str]) -> Dataset:
    n = len(labels)
    return Dataset(
        X=np.ones((n, 3), np.float32) / 3,
        labels=np.array(labels, dtype=str),
        ids=np.array([f"SRC{i + 1}" for i in range(n)]),
        counts=np.full(n, 100.0),
        kind="spectra",
        source="spectra.txt",
    )


def test_keeps_scheme_rows_with_their_class_indices():
    data = dataset(["AGN", "YSO", "", "LM-STAR", "HM-STAR", "AGN"])
    kept, classes = apply_scheme(data, 2)
    assert kept.ids.tolist() == ["SRC1", "SRC4", "SRC5", "SRC6"]
    assert classes.dtype == np.int64 and classes.tolist() == [0, 1, 1, 0]


def test_left_out_labels_are_logged(caplog):
    data = dataset(["AGN", "AGN", "HM-STAR", "LM-STAR", "YSO", "CV", "CV"])
    with caplog.at_level(logging.INFO, logger="latentlapse.xray.data.taxonomy"):
        apply_scheme(data, 2)
    assert "--classes 2 leaves out CV (2), YSO (1) of the labelled sources in spectra.txt" in caplog.text


def test_no_labelled_sources():
    with pytest.raises(InputError, match=r"spectra\.txt: no labelled sources; the file has 3 rows but none carries a label; add labels or use 'latentlapse predict'"):
        apply_scheme(dataset(["", "", ""]), 4)


def test_a_catalogue_whose_label_column_has_another_name_is_told_to_name_it(tmp_path):
    """otype/Type columns gave "none carries a label", though every row has one."""
    from latentlapse.xray.data.readers import load_dataset

    path = tmp_path / "cat.csv"
    path.write_text("name,Fs,otype\nA,1.5,AGN\nB,2.5,CV\nC,3.5,AGN\nD,4.5,CV\n")
    with pytest.raises(InputError, match=r"cat\.csv: no labelled sources: no label column was found \(True_Class, label "
                                         r"or class\); name yours with --label_column, or use 'latentlapse predict'"):
        apply_scheme(load_dataset(path), 4)
    assert len(apply_scheme(load_dataset(path, label_column="otype"), 4)[0]) == 4


def test_fewer_than_two_classes_left():
    expected = (
        r"--classes 4 leaves only 1 class \(AGN: 3 sources\) in spectra\.txt; a classifier needs at least "
        r"two: add labelled sources of HM/LM, YSO/CV, NS/HMXB/LMXB/NS_BIN"
    )
    with pytest.raises(InputError, match=expected):
        apply_scheme(dataset(["AGN", "AGN", "AGN", ""]), 4)


def test_no_class_left_suggests_a_scheme_that_keeps_the_labels():
    with pytest.raises(InputError, match=r"--classes 2 leaves no class in spectra\.txt; a classifier needs at least two: add labelled sources of AGN, HM/LM, or use --classes 4"):
        apply_scheme(dataset(["YSO", "YSO", "NS", "NS"]), 2)


def test_class_with_a_single_source_is_named():
    expected = (
        r"class NS/HMXB/LMXB/NS_BIN has 1 source \(SRC3\) in spectra\.txt; a class needs at least 2 "
        r"to be split into training and validation; add sources or use --classes 2"
    )
    with pytest.raises(InputError, match=expected):
        apply_scheme(dataset(["AGN", "AGN", "LMXB", "YSO", "CV", "HM-STAR", "LM-STAR"]), 4)


def test_an_empty_class_is_only_warned_about(caplog):
    data = dataset(["AGN", "AGN", "HM-STAR", "LM-STAR"])
    with caplog.at_level(logging.WARNING, logger="latentlapse.xray.data.taxonomy"):
        kept, classes = apply_scheme(data, 4)
    assert len(kept) == 4 and "class YSO/CV has no sources" in caplog.text


def test_the_documented_colour_and_marker_tables_are_what_a_scheme_draws_with(monkeypatch):
    """The guide sends a user to CLASS_COLORS / CLASS_MARKERS to change a run's colours."""
    from latentlapse.xray.data import taxonomy

    monkeypatch.setitem(taxonomy.CLASS_COLORS[4], 0, "#000000")
    monkeypatch.setattr(taxonomy, "CLASS_MARKERS", ("x", "+", "1", "2", "3", "4", "8", "p"))
    drawn = taxonomy.scheme(4)
    assert drawn.colors[0] == "#000000" and drawn.colors[1] == taxonomy.CLASS_COLORS[4][1]
    assert drawn.markers == ("x", "+", "1", "2")
