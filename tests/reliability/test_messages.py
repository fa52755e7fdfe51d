"""Messages that name the real problem (issue 16, items 3 and 4), each checked by its exact text:
an interrupt before the first checkpoint, a file that is not a checkpoint, an unknown
``predict --out`` suffix, the QUALITY note of a PHA given to ``predict``, and the class-scheme
lines (``--classes 2`` leaving classes out, ``--classes 8`` counting NS_BIN as NS) printed after
the run-folder line that the README promises comes first."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from latentlapse.xray import cli, pipeline

from .support import MAIN, PYTHON, cli_args, subprocess_env


@pytest.fixture(scope="module")
def two_class_checkpoint(tiny_spectra, tmp_path_factory):
    """best.pt of a one-epoch 2-class run on the tiny data."""
    from latentlapse.xray.config import TrainConfig

    root = tmp_path_factory.mktemp("msg")
    result = pipeline.train(TrainConfig(classes=2, epochs=1, data=str(tiny_spectra), runs_dir=str(root / "runs"),
                                        device="cpu"))
    assert result.status == "completed"
    return result.run_dir / "best.pt"


def test_ctrl_c_in_the_first_epoch_does_not_claim_a_checkpoint(make_config, logs, batch_hooks):
    batch_hooks.actions[(1, 1)] = "interrupt"
    result = pipeline.train(make_config(epochs=3))
    assert result.status == "interrupted" and result.exit_code == 130
    assert "interrupted during epoch 1; finishing up (no checkpoint yet)" in logs.messages
    assert not any("checkpoint of epoch 0" in message for message in logs.messages)
    assert f"interrupted before the first epoch finished; resume with: latentlapse train --resume {result.run_dir}" \
        in logs.messages


def test_the_resume_hint_repeats_main_py_by_the_path_the_user_gave(make_config, logs, batch_hooks, monkeypatch):
    """``python /work/main/main.py`` run elsewhere was told ``python main.py --resume``, which fails there."""
    monkeypatch.setattr(sys, "argv", ["/work/main dir/main.py", "--epochs", "3"])
    batch_hooks.actions[(1, 1)] = "interrupt"
    result = pipeline.train(make_config(epochs=3))
    assert (f"interrupted before the first epoch finished; resume with: python '/work/main dir/main.py' --resume "
            f"{result.run_dir}") in logs.messages


def test_ctrl_c_later_names_the_checkpoint_on_disk(make_config, logs, batch_hooks):
    batch_hooks.actions[(3, 1)] = "interrupt"
    pipeline.train(make_config(epochs=4))
    assert "interrupted during epoch 3; finishing up (the checkpoint of epoch 2 is on disk)" in logs.messages


@pytest.mark.parametrize("kind", ["text", "pickle", "tensors"])
def test_a_file_that_is_not_a_checkpoint_is_named_so_in_one_short_line(tmp_path, capsys, tiny_spectra, kind):
    import argparse

    import torch

    path = tmp_path / "model.pt"
    if kind == "text":
        path.write_text("not a model at all\n")
    elif kind == "pickle":  # a pickle torch refuses to load safely; its own message advises weights_only=False
        torch.save({"args": argparse.Namespace(lr=0.1)}, path)
    else:
        torch.save({"weight": torch.zeros(3)}, path)
    code = cli.main(["predict", "--checkpoint", str(path), "--data", str(tiny_spectra), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    reason = {"text": "it does not load as one", "pickle": "it does not load as one",
              "tensors": "a PyTorch file without the latentlapse format tag"}[kind]
    assert code == 1
    assert err == (f"latentlapse predict: error: {path}: not a latentlapse checkpoint ({reason}); "
                   f"give the best.pt or last.pt of a run folder\n")
    assert "weights_only" not in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("name, shown", [("p.txt", "'.txt' is not a predictions format"),
                                         ("predictions", "the file name has no suffix")])
def test_predict_refuses_an_unknown_out_suffix_before_any_work(tmp_path, capsys, name, shown):
    out = tmp_path / name
    # the checkpoint does not even exist: the suffix is refused before anything is read
    code = cli.main(["predict", "--checkpoint", str(tmp_path / "absent.pt"), "--data", str(tmp_path / "absent.txt"),
                     "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err == (f"latentlapse predict: error: --out {out}: {shown}; "
                                       f"end the name in .csv, .json or .fits\n")
    assert not out.exists()


@pytest.mark.parametrize("name, shown", [("p.txt", "'.txt' is not a predictions format"),
                                         ("nodir/p.csv", "the folder nodir does not exist; create it or choose "
                                                         "another --save_preds")])
def test_train_refuses_a_save_preds_it_could_not_write_before_the_run_folder(tmp_path, capsys, monkeypatch,
                                                                             name, shown):
    """--save_preds is written at the run's end: refused there, the whole training was lost."""
    monkeypatch.chdir(tmp_path)
    code = cli.train_main(["--data", "absent.txt", "--epochs", "1", "--save_preds", name])
    assert code == 2
    suffix = "; end the name in .csv, .json or .fits" if name.endswith(".txt") else ""
    assert capsys.readouterr().err == f"main.py: error: --save_preds {name}: {shown}{suffix}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", ["same", "dot", "folder"])
def test_predict_refuses_an_out_that_would_replace_its_data(tmp_path, capsys, monkeypatch, layout):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / ("spectra" if layout == "folder" else "same.csv")
    if layout == "folder":
        data.mkdir()
        (data / "src.fits").write_bytes(b"SIMPLE  = T")
    else:
        data.write_text("SIM1,0.5,0.5,100\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    out, reason = {"same": ("same.csv", "is the --data file, which the predictions would overwrite"),
                   "dot": ("./same.csv", "is the --data file, which the predictions would overwrite"),
                   "folder": ("spectra/src.fits", "would replace a file of the --data folder spectra")}[layout]
    code = cli.main(["predict", "--checkpoint", "absent.pt", "--data", data.name, "--out", out])
    assert code == 2
    assert capsys.readouterr().err == f"latentlapse predict: error: --out {out}: {reason}; choose another --out\n"
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def _pha(path, counts, quality):
    fits = pytest.importorskip("astropy.io.fits")
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="CHANNEL", format="J", array=np.arange(len(counts))),
        fits.Column(name="COUNTS", format="J", array=counts),
        fits.Column(name="QUALITY", format="I", array=quality),
    ])
    table.header.update(EXTNAME="SPECTRUM", HDUCLAS1="SPECTRUM", EXPOSURE=1000.0, BACKSCAL=1.0)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)


def test_predict_on_a_pha_with_quality_flags_shows_the_note(two_class_checkpoint, tmp_path, capsys):
    pytest.importorskip("astropy")
    energy = (np.arange(2000) + 0.5) * 0.005
    quality = np.zeros(2000, dtype=np.int16)
    quality[300:340] = 2
    pha = tmp_path / "src00.pha"
    _pha(pha, np.random.default_rng(3).poisson(200 * energy ** -1.0 / (energy[100:] ** -1.0).mean()), quality)
    out = tmp_path / "p.csv"
    code = cli.main(["predict", "--checkpoint", str(two_class_checkpoint), "--data", str(pha), "--out", str(out)])
    assert code == 0
    assert ("note: QUALITY flags: 40 channels excluded (40 of them in 0.5-10 keV), set to zero in source and "
            "background\n") in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2


def _merged_output(args, tmp_path) -> list[str]:
    """stdout and stderr of ``python main.py ARGS`` in the order a terminal shows them."""
    done = subprocess.run([PYTHON, str(MAIN), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=subprocess_env(), cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout.splitlines()


def test_scheme_lines_come_after_the_run_folder_line(tiny_spectra, tmp_path):
    lines = _merged_output(cli_args(tiny_spectra, tmp_path / "runs", 1, "--classes", "2"), tmp_path)
    assert lines[0] == str(tmp_path / "runs" / "run_001")
    assert lines[1] == (f"--classes 2 leaves out YSO (27), CV (11), NS (4), LMXB (3), HMXB (2), NS_BIN (2) of the "
                        f"labelled sources in {tiny_spectra}")


def test_classes_8_says_ns_bin_is_counted_as_ns(tiny_spectra, tmp_path):
    lines = _merged_output(cli_args(tiny_spectra, tmp_path / "runs", 1, "--classes", "8"), tmp_path)
    assert lines[0] == str(tmp_path / "runs" / "run_001")
    assert lines[1] == ("--classes 8 counts NS_BIN (2) as NS: the scheme has no NS_BIN class, so these sources are "
                        "trained, scored and predicted as NS")


def test_ctrl_c_once_training_is_complete_finishes_the_run_and_says_so(make_config, logs, monkeypatch):
    import json
    import os
    import signal

    from latentlapse.xray import session

    finish = session.Session._final_results

    def interrupted_finish(self, trainer):  # the signal comes while the run's results are being made
        os.kill(os.getpid(), signal.SIGINT)
        return finish(self, trainer)

    monkeypatch.setattr(session.Session, "_final_results", interrupted_finish)
    result = pipeline.train(make_config(epochs=2, viz=True))
    assert result.status == "completed" and result.exit_code == 0
    assert any("training is complete and the run is being finished" in m for m in logs.messages)
    assert not any("interrupted" in m for m in logs.messages)
    meta = json.loads((result.run_dir / "run_metadata.json").read_text())
    assert meta["status"] == "completed"
    assert sorted(p.name[:9] for p in result.run_dir.glob("epoch_*.png")) == ["epoch_001", "epoch_002"]


def test_a_second_ctrl_c_as_the_run_finishes_skips_only_frames(make_config, logs, monkeypatch):
    import json
    import os
    import signal

    from latentlapse.xray import session

    finish = session.Session._final_results

    def twice_interrupted_finish(self, trainer):  # both signals come while the results are being made
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return finish(self, trainer)

    monkeypatch.setattr(session.Session, "_final_results", twice_interrupted_finish)
    result = pipeline.train(make_config(epochs=2, viz=True))
    assert result.status == "completed" and result.exit_code == 0
    run = result.run_dir
    for name in ("report.html", "diagnosis.txt", "dynamics.csv", "metrics.png", "final_metrics.json"):
        assert (run / name).is_file(), name
    drawn = sorted(int(p.name[6:9]) for p in run.glob("epoch_*.png"))
    notes = [f for f in json.loads((run / "diagnosis.json").read_text())["findings"] if f["kind"] == "frames_missing"]
    assert (notes[0]["values"]["epochs"] if notes else []) == [e for e in (1, 2) if e not in drawn]
    if notes:
        assert "the same --seed and --threads" in notes[0]["remedy"]


def test_a_catalogue_given_to_a_spectra_model_is_one_line_with_a_fix(two_class_checkpoint, tmp_path, capsys):
    """The catalogue's reading notes (one advising --placeholder, which predict lacks) came before
    the refusal, and the refusal had no fix."""
    rows = ["name,Fs,Fh,Gmag,True_Class"] + [f"S{i},8e-18,{i + 1}e-15,{'' if i % 4 else 15},AGN" for i in range(12)]
    catalogue = tmp_path / "cat.csv"
    catalogue.write_text("\n".join(rows) + "\n")
    code = cli.main(["predict", "--checkpoint", str(two_class_checkpoint), "--data", str(catalogue),
                     "--out", str(tmp_path / "p.csv")])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("probabilities:")]
    assert err == [
        f"latentlapse predict: error: {catalogue}: holds a catalogue, but the checkpoint's model was trained on "
        f"spectra; give spectra (the text format, a spectra table or PHA files), or the checkpoint of a model "
        f"trained on a catalogue"]
    assert not (tmp_path / "p.csv").exists()
