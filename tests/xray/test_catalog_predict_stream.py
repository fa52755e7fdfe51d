"""``predict`` on a catalogue streams through the checkpoint's feature schema: pieces give the file a
whole read gives, a bad value names its line, a needed column empty in every row still stops the
command with no output, and the reader hands over its first piece before it reads the rest."""

from __future__ import annotations

import json

import pytest
from test_catalog_model import HEADER, _rows, _write, trained  # noqa: F401  (trained is a fixture)

from latentlapse.xray import checkpoints, cli
from latentlapse.xray.data import chunks
from latentlapse.xray.data.catalog_input import iter_with_schema
from latentlapse.core.errors import InputError
from latentlapse.xray.predict import checkpoint_schema


def _predict(checkpoint, data, out) -> tuple[int, str]:
    code = cli.main(["predict", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--quiet"])
    return code, out.read_text() if out.exists() else ""


def test_pieces_give_the_file_a_whole_read_gives(trained, tmp_path, monkeypatch):
    _, data, run_dir = trained
    code, whole = _predict(run_dir / "best.pt", data, tmp_path / "whole.json")
    assert code == 0
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)  # 120 sources: 8 pieces, the last one short
    code, pieces = _predict(run_dir / "best.pt", data, tmp_path / "pieces.json")
    assert code == 0 and pieces == whole and len(json.loads(pieces)) == 120


def test_fits_catalogue_streams_like_the_csv(trained, tmp_path, monkeypatch):
    table = pytest.importorskip("astropy.table")
    _, data, run_dir = trained
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 32)
    fits_path = tmp_path / "cat.fits"
    read = table.Table.read(data, format="ascii.csv", fill_values=[("", "nan")])
    read.write(fits_path)
    assert _predict(run_dir / "best.pt", fits_path, tmp_path / "f.json")[1] == \
        _predict(run_dir / "best.pt", data, tmp_path / "c.json")[1]


def test_a_bad_value_in_a_later_piece_names_its_line_and_leaves_no_file(trained, tmp_path, monkeypatch, capsys):
    _, _, run_dir = trained
    rows = _rows(100, 3)
    rows[90][5] = "high"  # hr of the source on line 92 (after the header), in the sixth piece of 16
    path = _write(tmp_path / "bad.csv", rows)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    code, _ = _predict(run_dir / "best.pt", path, tmp_path / "p.csv")
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "p.csv").exists() and list(tmp_path.glob(".*")) == []
    assert "bad.csv: line 92, column 6 (hr): 'high' is not a number" in err


def test_the_reader_hands_over_a_piece_before_reading_the_rest(trained, tmp_path):
    """Memory holds one piece: the first is ready while the bad row at the end is still unread."""
    _, _, run_dir = trained
    rows = _rows(200, 4)
    rows[-1][3] = "bright"
    path = _write(tmp_path / "late.csv", rows)
    schema = checkpoint_schema(checkpoints.load(run_dir / "best.pt"))
    pieces = iter_with_schema(path, schema, None, 50)
    first = next(pieces)
    assert len(first) == 50 and list(first.ids[:2]) == ["S000", "S001"]
    assert [len(p) for p in [next(pieces), next(pieces)]] == [50, 50]
    with pytest.raises(InputError, match="line 201, column 4 \\(Fs\\)"):
        next(pieces)


def test_a_needed_column_empty_in_every_piece_stops_after_the_last(trained, tmp_path, monkeypatch, capsys):
    _, _, run_dir = trained
    rows = _rows(60, 6)
    for row in rows:
        row[5] = ""  # hr: the model has no missing indicator for it
    path = _write(tmp_path / "no_hr.csv", rows)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    code, _ = _predict(run_dir / "best.pt", path, tmp_path / "p.csv")
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "p.csv").exists()
    assert "no_hr.csv: the file has no value in hr, which the model needs" in err
    rows[50][5] = "0.1"  # one value, in the last piece: the column is not empty
    code, written = _predict(run_dir / "best.pt", _write(tmp_path / "one_hr.csv", rows), tmp_path / "q.csv")
    assert code == 0 and len(written.splitlines()) == 61
    assert HEADER[5] == "hr"


def test_under_torchrun_the_whole_file_checks_see_every_ranks_slice(trained, tmp_path, monkeypatch):
    """hr is empty in rank 0's half only: the file as a whole has values, so both processes
    classify their half and the merged file is the single-process one. The label column is empty
    everywhere: the note counts each source once."""
    import subprocess
    import sys

    from latentlapse.xray.predict import predict_file

    _, _, run_dir = trained
    rows = _rows(40, 8)
    for row in rows[:20]:
        row[5] = ""
    for row in rows:
        row[-1] = ""
    path = _write(tmp_path / "half.csv", rows)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    predict_file(str(run_dir / "best.pt"), str(path), str(tmp_path / "one.json"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "latentlapse", "predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path),
               "--out", str(tmp_path / "two.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("is empty in every row: all 40 sources read as unlabelled") == 1, done.stderr[-3000:]
    ours, theirs = (json.loads((tmp_path / name).read_text()) for name in ("two.json", "one.json"))
    assert [r["id"] for r in ours] == [r["id"] for r in theirs] == [r[0] for r in rows]
    assert [r["predicted_class"] for r in ours] == [r["predicted_class"] for r in theirs]


def _env() -> dict[str, str]:
    import os
    from pathlib import Path

    import latentlapse

    src = str(Path(latentlapse.__file__).resolve().parents[1])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))


def test_a_label_of_no_known_class_is_ignored_with_one_note(trained, tmp_path, monkeypatch, capsys):
    _, _, run_dir = trained
    rows = _rows(40, 5)
    rows[30][-1] = "QSO"  # line 32, in the second piece of 16
    path = _write(tmp_path / "qso.csv", rows)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    code = cli.main(["predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path),
                     "--out", str(tmp_path / "p.json")])
    assert code == 0
    written = json.loads((tmp_path / "p.json").read_text())
    assert len(written) == 40 and written[30]["true_class"] in ("", None) and written[29]["true_class"] == "HM/LM"
    notes = [line for line in capsys.readouterr().err.splitlines() if "no known class" in line]
    assert notes == [f"{path}: 1 source with a label of no known class (the first: 'QSO' at line 32) classified as "
                     f"unlabelled: predict needs no labels, and writes no true class for them"]


def test_a_value_below_zero_in_a_log10_column_is_named_once(trained, tmp_path, monkeypatch, capsys):
    _, _, run_dir = trained
    schema = checkpoint_schema(checkpoints.load(run_dir / "best.pt"))
    assert dict(zip(schema.input_names, schema.log10))["Fs"]
    rows = _rows(40, 6)
    rows[20][3], rows[35][3] = "0", "-2e-15"  # lines 22 and 37, in the second and third piece of 16
    path = _write(tmp_path / "neg.csv", rows)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    code = cli.main(["predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path),
                     "--out", str(tmp_path / "p.json")])
    assert code == 0 and len(json.loads((tmp_path / "p.json").read_text())) == 40
    notes = [line for line in capsys.readouterr().err.splitlines() if "<= 0" in line]
    assert notes == [f"{path}: Fs is fed as log10, but 2 sources hold a value <= 0 (the first: line 22, 0), which "
                     f"the model reads as 1e-30, far below every training value; fix those values, or leave the "
                     f"cells empty (read as missing)"]


def test_repeated_ids_get_one_warning_at_the_end_as_in_training(trained, tmp_path, monkeypatch, capsys):
    """Training warned of repeated source ids; predict on a catalogue said nothing."""
    _, _, run_dir = trained
    rows = _rows(40, 7)
    rows[30][0] = rows[40 - 1][0] = rows[2][0]  # S002 in the first, second and third piece of 16
    rows[5][0] = rows[4][0]  # S004 twice in the first piece
    path = _write(tmp_path / "dup.csv", rows)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 16)
    code = cli.main(["predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path),
                     "--out", str(tmp_path / "p.json")])
    assert code == 0 and len(json.loads((tmp_path / "p.json").read_text())) == 40
    warnings = [line for line in capsys.readouterr().err.splitlines() if "more than once" in line]
    assert warnings == [f"warning: {path}: 2 source ids appear more than once (S002, S004); the rows are kept as "
                        f"separate sources"]


def test_scans_of_two_slices_find_an_id_repeated_across_them(trained, tmp_path):
    from latentlapse.xray.data.catalog_input import Scan

    _, _, run_dir = trained
    schema = checkpoint_schema(checkpoints.load(run_dir / "best.pt"))
    rows = _rows(20, 9)
    rows[15][0] = rows[1][0]
    path = _write(tmp_path / "two.csv", rows)
    halves = [Scan(path, schema), Scan(path, schema)]
    for scan, span in zip(halves, (slice(0, 10), slice(10, 20))):
        list(iter_with_schema(path, schema, None, 8, span=span, scan=scan))
    assert list(halves[0].merge([halves[1]]).repeated) == ["S001"]


def test_columns_named_in_another_case_are_matched_with_a_note(trained, tmp_path, capsys):
    """FS for Fs (as ftools and TOPCAT write FITS columns) was 'the file lacks Fs'."""
    _, data, run_dir = trained
    upper = [name.upper() if name in ("Fs", "Gmag", "hr", "var") else name for name in HEADER]
    path = _write(tmp_path / "upper.csv", _rows(120, 0), header=upper)
    code, written = _predict(run_dir / "best.pt", path, tmp_path / "u.json")
    assert code == 0, capsys.readouterr().err
    assert written == _predict(run_dir / "best.pt", data, tmp_path / "c.json")[1]
    code = cli.main(["predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path), "--out",
                     str(tmp_path / "v.json")])
    assert f"{path}: columns the file has in upper case, read as the model's: FS as Fs, GMAG as Gmag, HR as hr, VAR as var" \
        in capsys.readouterr().err


def test_a_name_in_another_case_than_upper_is_not_guessed(trained, tmp_path, capsys):
    """Only the upper-case spelling FITS tools write is matched: in VizieR's names case is meaning
    (b_rgeo and B_rgeo, the lower and upper bound), so Hr is not taken for hr."""
    _, _, run_dir = trained
    header = [name.capitalize() if name == "hr" else name for name in HEADER]
    path = _write(tmp_path / "two.csv", _rows(20, 3), header=header)
    code, _ = _predict(run_dir / "best.pt", path, tmp_path / "p.json")
    assert code == 1
    assert "two.csv: the file lacks hr (it has Hr for hr: a name of another case, matched only when it is the " \
           "model's name in upper case and no other of the model's columns has that spelling)" in capsys.readouterr().err


def test_the_case_of_a_one_letter_prefix_is_never_folded():
    from latentlapse.xray.data.catalog_input import _case_matches

    assert _case_matches(("B_rgeo", "Fs"), ["b_rgeo", "FS"]) == {"Fs": "FS"}
    assert _case_matches(("b_rgeo", "B_rgeo"), ["B_RGEO"]) == {}
    assert _case_matches(("rgeo",), ["RGEO", "Rgeo"]) == {"rgeo": "RGEO"}


def test_columns_read_as_missing_name_a_column_of_another_case_the_file_has(tmp_path):
    """b_rgeo and B_rgeo were reported as absent from a file that holds B_RGEO, without a word
    about it."""
    from types import SimpleNamespace

    from latentlapse.xray.data.catalog_input import check_columns

    schema = SimpleNamespace(indicators=("b_rgeo", "B_rgeo"))
    notes = check_columns(tmp_path / "up.csv", schema, ["b_rgeo", "B_rgeo"], {"B_RGEO", "FS"})
    assert notes == ["columns absent or empty in this file, read as missing (the model has indicators for them): "
                     "b_rgeo, B_rgeo (the file has B_RGEO, of another case, which is not matched to them: rename it "
                     "to the model's name if it is the same quantity)"]
