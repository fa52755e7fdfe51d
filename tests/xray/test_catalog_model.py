"""Catalogue models end to end: the feature schema in the checkpoint, predict through it, default
exclusions, fold-only imputation and the data-problem messages."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from latentlapse.xray import checkpoints, cli, pipeline
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.readers import load_dataset
from latentlapse.xray.data.taxonomy import apply_scheme
from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import explorer
from latentlapse.core.timelapse.runfiles import load_run
from latentlapse.xray.prepare import prepare

HEADER = ["src_name", "RA", "DEC", "Fs", "Gmag", "hr", "var", "junk", "label"]


def _rows(n: int, seed: int) -> list[list[str]]:
    """AGN (bright X-rays, faint optical) and LM stars; Gmag missing in some rows, a text column
    'junk' that is mostly '-', a t/f flag column."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        agn = i % 2 == 0
        flux = 10 ** rng.normal(-13.0 if agn else -14.5, 0.4)
        gmag = "" if rng.random() < 0.3 else f"{rng.normal(20.0 if agn else 14.0, 1.0):.3f}"
        hr = f"{rng.normal(0.3 if agn else -0.4, 0.2):.3f}"
        var = "t" if (rng.random() < (0.2 if agn else 0.7)) else "f"
        rows.append([f"S{i:03d}", f"{rng.uniform(0, 360):.5f}", f"{rng.uniform(-90, 90):.5f}", f"{flux:.4g}", gmag,
                     hr, var, "-" if rng.random() < 0.8 else "abc", "AGN" if agn else "LM-STAR"])
    return rows


def _write(path, rows, header=HEADER):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-class catalogue model (3 epochs) trained with --features naming the flag column."""
    root = tmp_path_factory.mktemp("catalog")
    data = _write(root / "cat.csv", _rows(120, 0))
    config = TrainConfig(classes=2, epochs=3, batch_size=32, data=str(data), runs_dir=str(root / "runs"),
                         features=("Fs", "Gmag", "hr", "var"))
    result = pipeline.train(config)
    assert result.status == "completed"
    return root, data, result.run_dir


def _predict(checkpoint, data, out) -> list[dict]:
    code = cli.main(["predict", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--quiet"])
    assert code == 0
    return json.loads(out.read_text())


def test_checkpoint_and_metadata_carry_the_schema(trained):
    root, data, run_dir = trained
    payload = checkpoints.load(run_dir / "best.pt")
    schema = payload["feature_schema"]
    assert schema["columns"] == ["Fs", "Gmag", "hr", "var"] and schema["types"][-1] == "flag"
    assert schema["indicators"] == ["Gmag"] and schema["inputs"][-1] == "Gmag_missing"
    assert schema["log10"][0] is True  # Fs spans > 100x
    meta = json.loads((run_dir / "run_metadata.json").read_text())
    assert meta["features"]["used"] == ["Fs", "Gmag", "hr", "var"]
    assert meta["features"]["left_out"]["RA"] == "not in --features"
    # the medians are those of the rows the model trained on, never of the held-out rows: the run's
    # training split in last.pt; every labelled source in best.pt, which the refit trained on
    prepared = prepare(TrainConfig.from_dict(payload["config"]))
    gmag = load_dataset(data, features=("Gmag",)).X[:, 0]
    first = checkpoints.load(run_dir / "last.pt")["feature_schema"]
    assert first["medians"][1] == pytest.approx(float(np.nanmedian(gmag[prepared.split.train])))
    assert payload["refit"]["sources"] == len(prepared.y)
    labelled = np.concatenate((prepared.split.train, prepared.split.val))
    assert schema["medians"][1] == pytest.approx(float(np.nanmedian(gmag[labelled])))
    assert first["medians"][1] != pytest.approx(schema["medians"][1])


def test_a_source_alone_gets_the_probabilities_it_gets_in_the_whole_file(trained, tmp_path):
    root, data, run_dir = trained
    whole = _predict(run_dir / "best.pt", data, tmp_path / "all.json")
    rows = _rows(120, 0)
    for i in (0, 1, 2, 5, 7):  # rows 1 and 2 include a missing Gmag
        alone = _predict(run_dir / "best.pt", _write(tmp_path / f"one{i}.csv", [rows[i]]), tmp_path / f"one{i}.json")
        assert alone == [whole[i]]
    assert any(row[4] == "" for row in (rows[i] for i in (0, 1, 2, 5, 7)))


def test_a_subset_of_one_class_predicts_whatever_other_columns_hold(trained, tmp_path):
    root, data, run_dir = trained
    rows = [r for r in _rows(120, 0) if r[-1] == "LM-STAR"][:12]
    for r in rows:
        r[7] = "-"  # 'junk' is now all '-': it was text, and is still ignored
    whole = _predict(run_dir / "best.pt", data, tmp_path / "all.json")
    subset = _predict(run_dir / "best.pt", _write(tmp_path / "stars.csv", rows), tmp_path / "stars.json")
    by_id = {r["id"]: r for r in whole}
    assert subset == [by_id[r[0]] for r in rows]


def test_an_empty_column_with_an_indicator_predicts(trained, tmp_path):
    root, data, run_dir = trained
    rows = _rows(10, 5)
    for r in rows:
        r[4] = ""
    records = _predict(run_dir / "best.pt", _write(tmp_path / "no_optical.csv", rows), tmp_path / "p.json")
    assert len(records) == 10
    header = [h for h in HEADER if h != "Gmag"]
    absent = _predict(run_dir / "best.pt", _write(tmp_path / "absent.csv", [r[:4] + r[5:] for r in rows], header),
                      tmp_path / "a.json")
    assert absent == records


def test_a_needed_column_without_an_indicator_is_named_in_one_line(trained, tmp_path, capsys):
    root, data, run_dir = trained
    header = [h for h in HEADER if h != "hr"]
    path = _write(tmp_path / "no_hr.csv", [r[:5] + r[6:] for r in _rows(10, 5)], header)
    code = cli.main(["predict", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path), "--out",
                     str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "x.csv").exists()
    assert len(err.strip().splitlines()) == 1
    assert "no_hr.csv: the file lacks hr, which the model needs and has no missing indicator for" in err


def test_visualize_reads_a_file_through_the_schema(trained, tmp_path):
    root, data, run_dir = trained
    rows = _rows(30, 9)
    path = _write(tmp_path / "other.csv", rows)
    code = cli.main(["visualize", "--checkpoint", str(run_dir / "best.pt"), "--data", str(path), "--method", "pca",
                     "--out", str(tmp_path / "viz"), "--quiet"])
    assert code == 0
    assert len(list((tmp_path / "viz").glob("*/statistics.txt"))) == 1


def test_sky_position_is_left_out_by_default_and_used_when_named(tmp_path):
    data = _write(tmp_path / "cat.csv", _rows(40, 1))
    default = load_dataset(data)
    assert default.feature_names == ("Fs", "Gmag", "hr", "var")  # var: a t/f flag
    assert dict(default.left_out)["RA"] == "sky position" and dict(default.left_out)["src_name"] == "name or id"
    named = load_dataset(data, features=("RA", "DEC", "Fs"))
    assert named.feature_names == ("RA", "DEC", "Fs")
    excluded = load_dataset(data, exclude=("hr",))
    assert excluded.feature_names == ("Fs", "Gmag", "var") and dict(excluded.left_out)["hr"] == "--exclude"


def test_cv_fold_imputation_is_fitted_on_the_training_fold(tmp_path):
    from latentlapse.xray.experiment import fit_on_split

    rows = _rows(60, 2)
    for i, r in enumerate(rows):  # the training rows' Gmag is about 10, the test rows' about 30
        r[4] = "" if i % 5 == 0 else (f"{10 + i % 3}" if i < 40 else f"{30 + i % 3}")
    labelled, y = apply_scheme(load_dataset(_write(tmp_path / "cat.csv", rows), features=("Fs", "Gmag")), 2)
    train, test = np.arange(40), np.arange(40, 60)
    result = fit_on_split(TrainConfig(classes=2, epochs=1, batch_size=16, seed=3), labelled, y, train, test)
    gmag = labelled.X[:, 1].astype(np.float64)
    assert np.nanmedian(gmag) != np.nanmedian(gmag[train])
    fitted_on = train  # fit_on_split holds back part of the training rows to pick the epoch: a subset of train
    assert min(np.nanmedian(gmag[fitted_on]), 11.0) <= result.schema.medians[1] <= 12.0
    missing_test = test[np.isnan(gmag[test])]
    assert missing_test.size and np.all(result.inputs.X[missing_test, 1] == np.float32(result.schema.medians[1]))


def test_drop_says_how_many_rows_per_class_before_a_class_size_error(tmp_path):
    rows = _rows(20, 3)
    for i, r in enumerate(rows):
        r[4] = "" if r[-1] == "LM-STAR" and i != 1 else "15.0"
    path = _write(tmp_path / "cat.csv", rows)
    config = TrainConfig(classes=2, epochs=1, data=str(path), missing="drop", features=("Fs", "Gmag"))
    with pytest.raises(InputError, match=r"class HM/LM has 1 source \(S001\) .* \(after --missing drop: 9 of 20 rows "
                                         r"dropped \(per class: LM-STAR 9 of 10;"):
        prepare(config)


def test_placeholder_is_reported_and_read_as_missing(tmp_path):
    rows = _rows(100, 4)
    for r in rows[:10]:
        r[3] = "7.978845608028655e-18"
    path = _write(tmp_path / "cat.csv", rows)
    notes = load_dataset(path).notes
    assert any("likely placeholder: Fs is exactly 7.978845608028655e-18 in 10 of 100 rows; if it stands for "
               "'no measurement', pass --placeholder 7.978845608028655e-18" in note for note in notes)
    fixed = load_dataset(path, placeholders=(7.978845608028655e-18,))
    assert np.isnan(fixed.X[:10, 0]).all() and not np.isnan(fixed.X[10:, 0]).any()
    assert not any("likely placeholder" in note for note in fixed.notes)


def test_empty_rows_are_counted(tmp_path):
    path = tmp_path / "cat.csv"
    _write(path, _rows(6, 0))
    path.write_text(path.read_text() + ",,,,,,,,\n,,,,,,,,\n")
    assert any("2 rows with every field empty were skipped (lines 8, 9)" in note for note in load_dataset(path).notes)


def test_a_given_schema_is_used_instead_of_refitting(tmp_path):
    # --resume and visualize pass the checkpoint's schema: the file's statistics must not replace it
    import dataclasses

    config = TrainConfig(classes=2, epochs=1, data=str(_write(tmp_path / "cat.csv", _rows(40, 6))))
    fitted = prepare(config).schema
    stored = dataclasses.replace(fitted, medians=tuple(m + 1.0 for m in fitted.medians))
    again = prepare(config, schema=stored)
    assert again.schema == stored
    gmag = load_dataset(config.data).X[:, 1]
    row = int(np.flatnonzero(np.isnan(gmag))[0])
    assert again.dataset.X[row, 1] == np.float32(stored.medians[1])


def test_a_votable_is_read_through_the_schema_like_the_csv(trained, tmp_path):
    table_module = pytest.importorskip("astropy.table")
    root, data, run_dir = trained
    rows = _rows(8, 7)
    csv_records = _predict(run_dir / "best.pt", _write(tmp_path / "s.csv", rows), tmp_path / "c.json")
    columns = {name: [r[j] for j in range(len(rows))] for name, r in zip(HEADER, zip(*rows))}
    columns["Fs"] = [float(v) for v in columns["Fs"]]
    columns["Gmag"] = np.ma.masked_invalid([float(v) if v else np.nan for v in columns["Gmag"]])
    columns["hr"] = [float(v) for v in columns["hr"]]
    path = tmp_path / "s.xml"
    table_module.Table(columns).write(path, format="votable")
    assert _predict(run_dir / "best.pt", path, tmp_path / "v.json") == csv_records


def test_cli_exclude_and_placeholder_reach_the_config(tmp_path):
    args = cli.command_parser("train", "main.py").parse_args(
        ["--data", "cat.csv", "--exclude", "hr,Gmag", "--placeholder=-99,7.978845608028655e-18"])
    config = cli.config_from_args(args)
    assert config.exclude == ("hr", "Gmag") and config.placeholders == (-99.0, 7.978845608028655e-18)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_resume_uses_the_checkpoint_schema(trained, tmp_path, monkeypatch):
    import shutil

    root, data, run_dir = trained
    copy = shutil.copytree(run_dir, tmp_path / "runs" / run_dir.name)
    meta = json.loads((copy / "run_metadata.json").read_text())
    meta["status"] = "failed"
    (copy / "run_metadata.json").write_text(json.dumps(meta))
    seen = {}
    real = pipeline.prepare

    def spy(config, schema=None):
        seen["schema"] = schema
        return real(config, schema=schema)

    monkeypatch.setattr(pipeline, "prepare", spy)
    assert pipeline.resume(copy).status == "completed"
    assert seen["schema"].to_dict() == checkpoints.load(copy / "last.pt")["feature_schema"]


def test_the_explorer_keeps_a_catalogues_values_as_read(tmp_path):
    """viz_inputs.npz holds the values the file gave, NaN for an empty cell or a placeholder (not
    the training median the model gets), and not the derived ``_missing`` indicators."""
    rows = _rows(120, 0)
    for row in rows[::10]:
        row[5] = "-99"  # hr
    data = _write(tmp_path / "cat.csv", rows)
    code = cli.train_main(["--data", str(data), "--classes", "2", "--epochs", "2", "--batch_size", "32",
                           "--features", "Fs,Gmag,hr,var", "--placeholder=-99", "--visualize_training",
                           "--viz_every", "2", "--runs_dir", str(tmp_path / "runs"), "--threads", "1", "--quiet"])
    assert code == 0
    run_dir = tmp_path / "runs" / "run_001"
    inputs = explorer.load_inputs(run_dir)
    assert inputs["feature_names"].tolist() == ["Fs", "Gmag", "hr", "var"]
    read = {r[0]: [float(v) if v not in ("", "-99") else np.nan for v in (r[3], r[4], r[5])] + [r[6] == "t"]
            for r in rows}
    shown = np.concatenate([inputs["train_X"], inputs["val_X"]])
    expected = np.array([read[i] for i in np.concatenate([inputs["train_ids"], inputs["val_ids"]])], dtype=np.float32)
    assert np.isnan(expected[:, 1]).sum() > 10 and np.isnan(expected[:, 2]).sum() > 5  # gaps in the sample
    np.testing.assert_array_equal(shown, expected)  # NaN where the file has no value
    page = explorer.explorer_data(load_run(run_dir))["inputs"]
    assert page["names"] == ["Fs", "Gmag", "hr", "var"]


def test_a_boolean_column_is_a_flag_in_fits_and_csv_alike(tmp_path):
    """FITS/ECSV booleans were number features and CSV True/False text left out: a model trained
    on the FITS refused the CSV export of the same catalogue."""
    table_module = pytest.importorskip("astropy.table")
    rows = _rows(60, 4)
    table = table_module.Table({"src_name": [r[0] for r in rows], "Fs": [float(r[3]) for r in rows],
                                "hr": [float(r[5]) for r in rows], "var": [r[6] == "t" for r in rows],
                                "label": [r[-1] for r in rows]})
    fits_path, csv_path = tmp_path / "cat.fits", tmp_path / "cat.csv"
    table.write(fits_path)
    table.write(csv_path, format="ascii.csv")
    assert "True" in csv_path.read_text()
    for path in (fits_path, csv_path):
        data = load_dataset(path)
        assert data.feature_names == ("Fs", "hr", "var") and data.feature_types == ("number", "number", "flag")
    result = pipeline.train(TrainConfig(classes=2, epochs=2, batch_size=32, data=str(fits_path),
                                        runs_dir=str(tmp_path / "runs")))
    checkpoint = result.run_dir / "best.pt"
    assert checkpoints.load(checkpoint)["feature_schema"]["types"] == ["number", "number", "flag"]
    from_fits = _predict(checkpoint, fits_path, tmp_path / "f.json")
    assert _predict(checkpoint, csv_path, tmp_path / "c.json") == from_fits and len(from_fits) == 60
