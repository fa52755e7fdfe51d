"""Bad input at the edges, through the command line: each case has its defined behaviour — a
one-line error on stderr, exit 1 and no run folder, or a run that reads the input correctly.

The readers' own tests (tests/xray/data/test_readers.py) cover the formats line by line; these check
what a user sees end to end, plus the cases that only show up there (a 1 GB file, a folder)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from latentlapse.xray import cli

from .support import cli_args, metadata

GIB = 1 << 30


def _refused(capsys, tmp_path, *argv) -> str:
    """Run ``main.py argv``; assert exit 1, exactly one line on stderr, nothing written; return the line."""
    runs = tmp_path / "runs"
    code = cli.train_main([*argv, "--runs_dir", str(runs)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("main.py: error: "), captured.err
    assert captured.out == "" and not runs.exists()
    return captured.err.strip()


def _bytes_read() -> int:
    """Bytes this process has read so far (Linux's ``/proc/self/io``, page cache included)."""
    for line in open("/proc/self/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.parametrize("head, binary_at", [(b"\x89\x00\xffGARBAGE", 0),  # 0x89 is not UTF-8
                         (b"S1 1 2 3 10 AGN\n" * 100, 1600)],
                         ids=["binary-head", "text-head-then-zeros"])
@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts bytes read through /proc/self/io")
def test_a_1_gb_garbage_file_is_refused_at_once_without_reading_it(head, binary_at, tmp_path, capsys):
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:  # sparse: a gigabyte on paper, a few bytes on disk
        handle.write(head)
        handle.truncate(GIB)
    assert path.stat().st_size == GIB
    read_before = _bytes_read()
    line = _refused(capsys, tmp_path, "--data", str(path))
    assert _bytes_read() - read_before < 16 << 20  # it looked at the head only (not timed: the machine may be busy)
    assert f"{path}: not a text, CSV, FITS or VOTable file (binary content at byte {binary_at})" in line
    assert "check that you passed the right file" in line


def test_a_file_of_a_single_spectrum_loads_but_cannot_train(tiny_spectra, tmp_path, capsys):
    path = tmp_path / "one.txt"
    path.write_text(tiny_spectra.read_text().splitlines()[0] + "\n")
    line = _refused(capsys, tmp_path, "--data", str(path))  # it loads (see test_readers); one class is too few
    assert "--classes 4 leaves only 1 class (" in line and ": 1 source) in " in line
    assert "a classifier needs at least two" in line


def test_a_class_of_a_single_spectrum_is_named(tmp_path, capsys):
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    path = tmp_path / "few.txt"
    write_dataset(path, simulate_dataset(counts={"AGN": 6, "HM-STAR": 6, "CV": 1}, seed=2))
    line = _refused(capsys, tmp_path, "--data", str(path))
    assert "class YSO/CV has 1 source (" in line
    assert "a class needs at least 2 to be split into training and validation" in line


def test_a_catalogue_whose_label_column_is_empty_has_no_labelled_sources(tmp_path, capsys):
    path = tmp_path / "catalogue.csv"
    path.write_text("name,Fs,Fh,label\n" + "".join(f"S{i},{i + 1},{2 * i + 1},\n" for i in range(20)))
    line = _refused(capsys, tmp_path, "--data", str(path))
    assert line == (f"main.py: error: {path}: no labelled sources; the file has 20 rows but none carries a label; "
                    f"add labels or use 'latentlapse predict' for unlabelled data")


def test_labels_with_stray_spaces_and_mixed_case_are_read_as_canonical_and_trained_on(tiny_spectra, tmp_path, capsys):
    from latentlapse.xray.data.readers import load_dataset
    from latentlapse.xray.data.writers import write_dataset

    clean = load_dataset(tiny_spectra)
    path = tmp_path / "messy.csv"
    write_dataset(path, clean)
    messy = {"AGN": "  agn ", "HM-STAR": "Hm-Star ", "LM-STAR": " lm_star", "YSO": "yso  ", "CV": " Cv", "NS": " ns ",
             "HMXB": "hmxb ", "LMXB": " LmXb", "NS_BIN": " ns-bin "}
    lines = path.read_text().splitlines()
    lines[1:] = [line.rsplit(",", 1)[0] + "," + messy[line.rsplit(",", 1)[1]] for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    assert load_dataset(path).labels.tolist() == clean.labels.tolist()

    code = cli.train_main(cli_args(path, tmp_path / "runs", 1, "--quiet"))
    assert code == 0, capsys.readouterr().err
    meta = metadata(tmp_path / "runs" / "run_001")
    assert meta["status"] == "completed" and meta["data"]["n_sources"] == 300
    counts = meta["class_counts"]
    assert sum(counts["train_before_oversampling"].values()) + sum(counts["validation"].values()) == 300


def _pha(path, counts, quality, label):
    fits = pytest.importorskip("astropy.io.fits")
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="CHANNEL", format="J", array=np.arange(len(counts))),
        fits.Column(name="COUNTS", format="J", array=counts),
        fits.Column(name="QUALITY", format="I", array=quality),
    ])
    table.header.update(EXTNAME="SPECTRUM", HDUCLAS1="SPECTRUM", EXPOSURE=1000.0, BACKSCAL=1.0, CLASS=label)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)


def test_a_pha_with_quality_flags_trains_without_the_flagged_channels_and_says_so(tmp_path, capsys):
    pytest.importorskip("astropy")
    folder = tmp_path / "pha"
    folder.mkdir()
    rng = np.random.default_rng(5)
    energy = (np.arange(2000) + 0.5) * 0.005  # the pn channel width, 5 eV
    for i in range(12):
        label = "AGN" if i % 2 else "HM-STAR"
        shape = energy ** -1.0 if label == "AGN" else np.exp(-energy / 0.8)
        quality = np.zeros(2000, dtype=np.int16)
        if i == 0:
            quality[300:340] = 2  # 40 bad channels at 1.5-1.7 keV
        _pha(folder / f"src{i:02d}.pha", rng.poisson(200 * shape / shape[100:].mean()), quality, label)

    code = cli.train_main(cli_args(folder, tmp_path / "runs", 1, "--classes", "2", "--quiet"))
    assert code == 0, capsys.readouterr().err
    meta = metadata(tmp_path / "runs" / "run_001")
    assert meta["status"] == "completed" and meta["data"]["n_sources"] == 12
    notes = meta["data"]["notes"]
    expected = "src00.pha: QUALITY flags: 40 channels excluded (40 of them in 0.5-10 keV)"
    assert any(note.startswith(expected) for note in notes), notes
    assert not any(note.startswith("src01.pha: QUALITY") for note in notes)


def test_files_and_junk_folders_named_like_runs_are_skipped_and_never_touched(tiny_spectra, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "run_001").mkdir()
    (runs / "run_001" / "notes.txt").write_text("an earlier run")
    (runs / "run_002").write_text("a file named like a run")
    (runs / "run_abc").mkdir()
    (runs / "run_07x").mkdir()
    before = {p.name: (p.is_dir(), sorted(q.name for q in p.iterdir()) if p.is_dir() else p.read_text())
              for p in runs.iterdir()}
    code = cli.train_main(cli_args(tiny_spectra, runs, 1, "--quiet"))
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines()[0] == str(runs / "run_003")
    after = {p.name: (p.is_dir(), sorted(q.name for q in p.iterdir()) if p.is_dir() else p.read_text())
             for p in runs.iterdir() if p.name != "run_003"}
    assert after == before
    assert json.loads((runs / "run_003" / "run_metadata.json").read_text())["status"] == "completed"
