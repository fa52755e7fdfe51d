"""The predictions writer refuses what a format would lose, leaving no file behind."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.core.errors import InputError
from latentlapse.core.prediction_writer import write_stream


def _pieces(ids):
    proba = np.tile(np.array([[0.7, 0.3]], dtype=np.float32), (len(ids), 1))
    return [(np.array(ids), np.full(len(ids), -1), proba)]


def test_fits_refuses_a_non_ascii_id_by_name_and_row(tmp_path):
    """'Ä1' and 'Ö1' would both have become '?1' in the FITS text column."""
    out = tmp_path / "p.fits"
    with pytest.raises(InputError) as caught:
        write_stream(out, _pieces(["SRC1", "Ä1", "Ö1"]), ["AGN", "HM/LM"])
    assert str(caught.value) == ("source id 'Ä1' (row 2 of the predictions) is not ASCII, and FITS text columns hold "
                                 "only ASCII; write the predictions to .csv or .json instead")
    assert list(tmp_path.iterdir()) == []


def test_csv_keeps_non_ascii_ids(tmp_path):
    out = tmp_path / "p.csv"
    write_stream(out, _pieces(["Ä1", "Ö1"]), ["AGN", "HM/LM"])
    assert [line.split(",")[0] for line in out.read_text(encoding="utf-8").splitlines()] == ["id", "Ä1", "Ö1"]
