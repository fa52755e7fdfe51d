"""OGIP PHA input as pipelines write it: the files beside a spectrum, damaged copies, ids,
instruments, background and net spectra, and the messages that name what to change."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray import cli
from latentlapse.xray.data.readers import load_dataset
from latentlapse.core.errors import InputError


@pytest.fixture
def observation(tmp_path, make_pha):
    """A source with its background and RMF in one folder, as SAS writes them."""
    rng = np.random.default_rng(7)
    make_pha(tmp_path / "bkg.fits", rng.poisson(40, 2000), EXPOSURE=1000.0, BACKSCAL=4.0)
    make_pha.rmf(tmp_path / "PN_rmf.fits")
    source = make_pha(tmp_path / "PN.pha", rng.poisson(20, 2000), BACKFILE="bkg.fits", RESPFILE="PN_rmf.fits")
    return source


@pytest.mark.parametrize("name", ["bkg.fits", "PN_rmf.fits"])
def test_predict_refuses_an_out_that_would_replace_a_file_beside_a_pha_data_file(observation, capsys,
                                                                                 monkeypatch, name):
    monkeypatch.chdir(observation.parent)
    before = {p: p.read_bytes() for p in observation.parent.iterdir()}
    code = cli.main(["predict", "--checkpoint", "absent.pt", "--data", "PN.pha", "--out", name])
    assert code == 2
    assert capsys.readouterr().err == (
        f"latentlapse predict: error: --out {name}: would replace a file of the folder of the PHA --data file "
        f"PN.pha (its background, response or another spectrum); choose another --out\n")
    assert {p: p.read_bytes() for p in observation.parent.iterdir()} == before
