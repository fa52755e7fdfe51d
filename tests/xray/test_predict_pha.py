"""Commands that need labels, given PHA spectra: the messages say how a PHA file is labelled
(its CLASS keyword), not to add a label column it cannot have."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray import cli, pipeline
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.simulate import simulate_dataset
from latentlapse.xray.data.writers import write_dataset

HINT = "set the CLASS keyword of each PHA file's SPECTRUM extension to its class (AGN, YSO, ...)"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("pha_model")
    write_dataset(root / "sim.txt", simulate_dataset(n=120, seed=4))
    config = TrainConfig(data=str(root / "sim.txt"), epochs=1, device="cpu", runs_dir=str(root / "runs"))
    result = pipeline.train(config)
    return result.run_dir / "best.pt"


def _unlabelled_pha(path):
    """A PHA spectrum without CLASS keyword (channel energies from the pn channel definition)."""
    fits = pytest.importorskip("astropy.io.fits")
    counts = np.random.default_rng(5).poisson(30, 2000)
    table = fits.BinTableHDU.from_columns([fits.Column(name="CHANNEL", format="J", array=np.arange(2000)),
                                           fits.Column(name="COUNTS", format="J", array=counts)])
    table.header.update(EXTNAME="SPECTRUM", HDUCLAS1="SPECTRUM", EXPOSURE=1000.0)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


@pytest.mark.parametrize("folder", [False, True])
def test_evaluate_on_unlabelled_pha_says_to_set_the_class_keyword(checkpoint, tmp_path, capsys, folder):
    path = _unlabelled_pha(tmp_path / "src.pha")
    data = tmp_path if folder else path
    code = cli.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].endswith(f"evaluate needs a labelled file ({HINT}); use predict for unlabelled sources")
    assert not (tmp_path / "ev").exists()


def test_train_on_unlabelled_pha_says_to_set_the_class_keyword(tmp_path, capsys):
    path = _unlabelled_pha(tmp_path / "src.pha")
    code = cli.main(["train", "--data", str(path), "--epochs", "1", "--runs_dir", str(tmp_path / "runs")])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"latentlapse train: error: {path}: no labelled sources; its spectrum carries no label; {HINT}, or use "
        f"'latentlapse predict' for unlabelled data")
