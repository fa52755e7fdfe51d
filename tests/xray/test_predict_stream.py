"""``latentlapse predict`` in pieces: the same rows as a whole-file read, a bad row stops it with
its line and no output, and FITS output carries the class probabilities as columns."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray import checkpoints, cli, pipeline
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data import chunks
from latentlapse.xray.data.readers import load_dataset
from latentlapse.xray.data.simulate import simulate_dataset
from latentlapse.xray.data.writers import write_dataset
from latentlapse.xray.predict import align_features, predict_file, predict_logits
from latentlapse.core.errors import InputError
from latentlapse.core.results import write_predictions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch model and a 90-source file (some unlabelled) in text, CSV and FITS."""
    root = tmp_path_factory.mktemp("stream")
    data = simulate_dataset(n=150, unlabelled=20, seed=3)
    text, table = root / "spectra.txt", root / "spectra.csv"
    write_dataset(text, data)
    write_dataset(table, data)
    result = pipeline.train(TrainConfig(data=str(text), epochs=1, device="cpu", runs_dir=str(root / "runs")))
    return root, result.run_dir / "best.pt", {"text": text, "csv": table}


def _whole_file_predictions(checkpoint, data, out):
    """What predict wrote before it streamed: the whole file read, predicted and written at once."""
    from latentlapse.xray.data.taxonomy import scheme

    from latentlapse.xray.operating import from_checkpoint

    payload = checkpoints.load(checkpoint)
    dataset = load_dataset(data)
    point = from_checkpoint(payload, "balanced", False)  # predict's default operating point
    model = checkpoints.model_from_checkpoint(payload)
    proba = point.proba(predict_logits(model, align_features(dataset, payload, data), 4096))
    names = payload["class_names"]
    return write_predictions(out, dataset.ids, scheme(len(names)).encode(dataset.labels), proba, names)


@pytest.mark.parametrize("kind", ["text", "csv"])
@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_pieces_give_the_same_file_as_a_whole_read(trained, kind, suffix, monkeypatch, tmp_path):
    _, checkpoint, files = trained
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)  # 170 sources: 11 pieces, the last one short
    summary = predict_file(str(checkpoint), str(files[kind]), str(tmp_path / f"streamed{suffix}"))
    assert summary.startswith("170 sources classified")
    expected = _whole_file_predictions(checkpoint, files[kind], tmp_path / f"whole{suffix}")
    assert (tmp_path / f"streamed{suffix}").read_bytes() == expected.read_bytes()


def test_pieces_keep_the_files_line_numbers(trained):
    _, _, files = trained
    pieces = list(chunks.iter_chunks(files["text"], rows=40))
    assert [len(p) for p in pieces] == [40, 40, 40, 40, 10]
    assert pieces[1].ids[0] == load_dataset(files["text"]).ids[40]


def test_fits_in_and_out_with_probabilities_as_columns(trained, monkeypatch, tmp_path):
    pytest.importorskip("astropy")
    from astropy.table import Table

    _, checkpoint, files = trained
    Table.read(files["csv"], format="ascii.csv").write(tmp_path / "spectra.fits")
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 64)
    stored = tmp_path / ("a_long_folder_name_" * 4) / "best.pt"  # a path longer than one header card
    stored.parent.mkdir()
    stored.write_bytes(checkpoint.read_bytes())
    predict_file(str(stored), str(tmp_path / "spectra.fits"), str(tmp_path / "p.fits"))
    out = Table.read(tmp_path / "p.fits")
    reference = Table.read(_whole_file_predictions(checkpoint, files["text"], tmp_path / "p.csv"), format="ascii.csv")
    assert len(out) == 170 and out.meta["EXTNAME"] == "PREDICTIONS"
    assert list(out["id"]) == [str(i) for i in reference["id"]]
    assert list(out["predicted_class"]) == list(reference["predicted_class"])
    assert list(np.ma.filled(out["true_class"], "")) == list(reference["true_class"].filled(""))
    np.testing.assert_allclose(out["p_HM_LM"], reference["p_HM/LM"], atol=1e-6)
    np.testing.assert_allclose(sum(out[c] for c in out.colnames if c.startswith("p_")), 1, atol=1e-5)
    # which model and which probabilities travel with the file (a long path continues over cards)
    from astropy.io import fits

    with fits.open(tmp_path / "p.fits") as hdus:
        hdus.verify("exception")
        header = hdus["PREDICTIONS"].header
        assert header["CHECKPNT"] == str(stored.resolve()) and len(str(stored.resolve())) > 68
        assert header["PROBS"].startswith("calibrated (T = ") and "priors balanced" in header["PROBS"]


def test_a_bad_row_far_into_the_file_names_its_line_and_leaves_no_output(trained, monkeypatch, tmp_path, capsys):
    _, checkpoint, files = trained
    lines = files["text"].read_text().splitlines()
    fields = lines[120].split()
    fields[5] = "oops"
    lines[120] = " ".join(fields)
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)  # pieces 1-7 are fine and written before line 121 is read
    code = cli.main(["predict", "--checkpoint", str(checkpoint), "--data", str(bad), "--out", str(tmp_path / "p.csv")])
    assert code == 1
    assert "line 121, column 6: 'oops' is not a number" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]  # neither the output nor its temp file


@pytest.mark.parametrize("kind", ["text", "csv", "fits"])
def test_contiguous_spans_cover_the_file_once_in_order(trained, kind, tmp_path):
    """A torchrun rank reads only its slice; the slices of 3 ranks put together are the file."""
    from latentlapse.xray.distributed import contiguous_slice

    _, _, files = trained
    path = files.get(kind)
    if kind == "fits":
        Table = pytest.importorskip("astropy.table").Table
        path = tmp_path / "spectra.fits"
        Table.read(files["csv"], format="ascii.csv").write(path)
    whole = load_dataset(path)
    assert chunks.count_rows(path) == len(whole) == 170
    parts = [p for rank in range(3)
             for p in chunks.iter_chunks(path, rows=16, span=contiguous_slice(170, rank, 3))]
    assert [len(p) for p in parts[:5]] == [16, 16, 16, 9, 16]  # rank 0's 57 rows, then rank 1's
    np.testing.assert_array_equal(np.concatenate([p.ids for p in parts]), whole.ids)
    np.testing.assert_array_equal(np.concatenate([p.X for p in parts]), whole.X)


def test_the_merge_recuts_the_parts_into_the_single_process_pieces(monkeypatch):
    from latentlapse.xray.predict_parts import _repieced

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    sizes = (10, 7, 30, 0, 5)
    starts = np.cumsum((0,) + sizes)
    parts = [(np.arange(a, b).astype(str), np.arange(a, b), np.full((b - a, 2), a, np.float32))
             for a, b in zip(starts[:-1], starts[1:])]
    pieces = list(_repieced(iter(parts)))
    assert [len(p[0]) for p in pieces] == [16, 16, 16, 4]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), np.arange(52))


def test_sources_without_ids_or_labels_are_named_by_their_row_across_pieces(trained, monkeypatch, tmp_path,
                                                                             caplog):
    Table = pytest.importorskip("astropy.table").Table
    _, checkpoint, files = trained
    table = Table.read(files["csv"], format="ascii.csv")
    table.remove_columns([name for name in table.colnames if "id" in name.lower() or "label" in name.lower()])
    table.write(tmp_path / "anonymous.fits")
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 64)
    caplog.set_level("INFO", logger="latentlapse.xray.predict")
    predict_file(str(checkpoint), str(tmp_path / "anonymous.fits"), str(tmp_path / "p.csv"))
    ids = [line.split(",")[0] for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    assert ids == [f"row{i}" for i in range(1, 171)]  # not row1..row64 again in the second piece
    notes = [r.getMessage() for r in caplog.records if "unlabelled" in r.getMessage()]
    assert len(notes) == 1 and notes[0].endswith("all 170 sources read as unlabelled")  # once, for the file


def test_a_bin_column_the_file_lacks_is_named_not_only_counted(trained, tmp_path):
    _, checkpoint, files = trained
    lines = [line.split(",") for line in files["csv"].read_text().splitlines()]
    assert lines[0][380] == "E9.9875"  # the last bin: no gap in the header, so the reader takes 379 bins
    short = tmp_path / "short.csv"
    short.write_text("\n".join(",".join(fields[:380] + fields[381:]) for fields in lines) + "\n")
    with pytest.raises(InputError, match=r"short\.csv: spectra have 379 bins, the model expects 380: the file lacks "
                                         r"the model's bin columns E9\.9875 \(1\); give the file the bin columns"):
        predict_file(str(checkpoint), str(short), str(tmp_path / "p.csv"))
    assert not (tmp_path / "p.csv").exists()


def test_a_label_of_no_known_class_is_ignored_with_one_note_and_every_row_predicted(trained, monkeypatch,
                                                                                     tmp_path, caplog):
    _, checkpoint, files = trained
    lines = files["text"].read_text().splitlines()
    labelled = [i for i, line in enumerate(lines) if line.split()[-1] == "AGN"]
    for i in (labelled[3], labelled[-1]):  # in the first and in a later piece
        lines[i] = lines[i].rsplit(" ", 1)[0] + " QSO"
    damaged = tmp_path / "qso.txt"
    damaged.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    caplog.set_level("INFO", logger="latentlapse.xray.predict")
    summary = predict_file(str(checkpoint), str(damaged), str(tmp_path / "p.csv"))
    assert summary.startswith("170 sources classified")
    rows = [line.split(",") for line in (tmp_path / "p.csv").read_text().splitlines()]
    assert rows[0][:3] == ["id", "true_class", "predicted_class"]
    assert rows[1 + labelled[3]][1] == "" and rows[1 + labelled[-1]][1] == ""  # no true class for them
    assert rows[1 + labelled[2]][1] == "AGN"  # the known labels are still written
    notes = [r.getMessage() for r in caplog.records if "no known class" in r.getMessage()]
    assert notes == [f"note: 2 sources with a label of no known class (the first: 'QSO' at line {labelled[3] + 1}) "
                     f"classified as unlabelled: predict needs no labels, and writes no true class for them"]
