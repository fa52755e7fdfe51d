"""write_dataset: both formats read back to identical arrays, ids and labels; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.readers import load_dataset
from latentlapse.xray.data.writers import write_dataset
from latentlapse.core.errors import InputError, UsageError

LABELS = ["AGN", "", "HM-STAR", "YSO", "", "NS_BIN"]


def assert_same(back: Dataset, data: Dataset) -> None:
    assert back.kind == data.kind
    assert back.X.dtype == np.float32
    np.testing.assert_array_equal(back.X, data.X)
    np.testing.assert_array_equal(back.counts, data.counts)
    assert back.ids.tolist() == data.ids.tolist()
    assert back.labels.tolist() == data.labels.tolist()
    assert back.feature_names == data.feature_names


def test_text_round_trip_is_exact(tmp_path, make_spectra):
    data = make_spectra(LABELS)
    write_dataset(tmp_path / "s.txt", data)
    assert_same(load_dataset(tmp_path / "s.txt"), data)


def test_text_rows_omit_the_label_when_unlabelled(tmp_path, make_spectra):
    write_dataset(tmp_path / "s.txt", make_spectra(LABELS))
    fields = [len(line.split()) for line in (tmp_path / "s.txt").read_text().splitlines()]
    assert fields == [383, 382, 383, 383, 382, 383]


def test_csv_round_trip_is_exact(tmp_path, make_spectra):
    data = make_spectra(LABELS)
    write_dataset(tmp_path / "s.csv", data)
    header = (tmp_path / "s.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["src_id", "E0.5125"] and header[-2:] == ["net_counts", "label"]
    assert_same(load_dataset(tmp_path / "s.csv"), data)


def test_csv_round_trip_with_few_bins(tmp_path, make_spectra):
    data = make_spectra(["CV", "", "AGN"], k=7)
    write_dataset(tmp_path / "s.csv", data)
    assert_same(load_dataset(tmp_path / "s.csv"), data)


def test_counts_are_written_exactly(tmp_path, make_spectra):
    data = make_spectra(["AGN", "CV"])
    data = Dataset(**{**data.__dict__, "counts": np.array([9850.0, 1234.5678901234567])})
    write_dataset(tmp_path / "s.txt", data)
    lines = (tmp_path / "s.txt").read_text().splitlines()
    assert lines[0].split()[-2] == "9850" and lines[1].split()[-2] == "1234.5678901234567"


def test_catalog_csv_round_trip(tmp_path):
    data = Dataset(
        X=np.array([[1.5, 2.25], [3.0, -4.125]], dtype=np.float32),
        labels=np.array(["AGN", ""]),
        ids=np.array(["A", "B"]),
        counts=np.full(2, np.nan),
        kind="catalog",
        feature_names=("Fs", "Gmag"),
    )
    write_dataset(tmp_path / "cat.csv", data)
    back = load_dataset(tmp_path / "cat.csv")
    assert back.kind == "catalog" and back.feature_names == ("Fs", "Gmag")
    np.testing.assert_array_equal(back.X, data.X)
    assert back.labels.tolist() == ["AGN", ""] and back.ids.tolist() == ["A", "B"]


def test_catalog_to_text_format_is_refused(tmp_path):
    data = Dataset(X=np.ones((1, 1), np.float32), labels=np.array([""]), ids=np.array(["A"]), counts=np.full(1, np.nan), kind="catalog")
    with pytest.raises(UsageError, match=r"cat\.txt: the text format holds spectra; write a catalogue to a \.csv file"):
        write_dataset(tmp_path / "cat.txt", data)


def test_id_with_whitespace_is_refused_and_nothing_is_written(tmp_path, make_spectra):
    data = make_spectra(["AGN", "CV"])
    data = Dataset(**{**data.__dict__, "ids": np.array(["NGC 1", "B"])})
    (tmp_path / "s.txt").write_text("previous content\n")
    with pytest.raises(InputError, match=r"s\.txt: source id 'NGC 1' cannot be written to the text format .* write to a \.csv file"):
        write_dataset(tmp_path / "s.txt", data)
    assert (tmp_path / "s.txt").read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]


def test_failed_write_leaves_the_previous_file(tmp_path, make_spectra, monkeypatch):
    (tmp_path / "s.txt").write_text("previous content\n")

    def crash(*args, **kwargs):
        raise OSError("disk vanished")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        write_dataset(tmp_path / "s.txt", make_spectra(["AGN"]))
    assert (tmp_path / "s.txt").read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]


def test_simulated_set_round_trips(tmp_path):
    simulate = pytest.importorskip("latentlapse.xray.data.simulate")
    data = simulate.simulate_dataset(n=60, unlabelled=10, seed=7)
    write_dataset(tmp_path / "sim.txt", data)
    back = load_dataset(tmp_path / "sim.txt")
    np.testing.assert_array_equal(back.X, data.X)
    np.testing.assert_array_equal(back.counts, data.counts)
    assert back.labels.tolist() == data.labels.tolist() and back.ids.tolist() == data.ids.tolist()
