"""Small data the reader and writer tests build themselves: spectra sets and OGIP PHA files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentlapse.xray.data import grid
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.spectra_checks import bin_names

N_CHANNELS = 2000  # enough to cover the 0.5-10 keV grid at 5 eV per channel


@pytest.fixture
def make_spectra():
    """``make_spectra(labels, k=380, seed=0)``: positive spectra summing to 1, one row per label."""

    def make(labels, k: int = grid.N_BINS, seed: int = 0) -> Dataset:
        rng = np.random.default_rng(seed)
        n = len(labels)
        values = rng.random((n, k)).astype(np.float32) + np.float32(0.01)
        values /= values.sum(axis=1, keepdims=True)
        return Dataset(
            X=values.astype(np.float32),
            labels=np.array(labels, dtype=str),
            ids=np.array([f"SRC{i + 1}" for i in range(n)]),
            counts=np.round(rng.uniform(300, 30000, n), 2),
            kind="spectra",
            energy=grid.centres() if k == grid.N_BINS else None,
            feature_names=bin_names(k),
        )

    return make


@pytest.fixture
def make_pha():
    """``make_pha(path, counts, **keywords)`` writes an OGIP PHA file; ``make_pha.rmf(path)`` an EBOUNDS-only RMF.

    Keywords go into the SPECTRUM header (EXPOSURE, BACKSCAL, BACKFILE, RESPFILE, OBJECT, ...);
    ``quality`` adds a QUALITY column; ``gzip=True`` writes the gzip-compressed bytes (``.FTZ``).
    """
    fits = pytest.importorskip("astropy.io.fits")

    def write(path: Path, counts, *, quality=None, gzip: bool = False, **keywords) -> Path:
        counts = np.asarray(counts)
        columns = [
            fits.Column(name="CHANNEL", format="J", array=np.arange(len(counts))),
            fits.Column(name="COUNTS", format="J", array=counts),
        ]
        if quality is not None:
            columns.append(fits.Column(name="QUALITY", format="I", array=np.asarray(quality)))
        table = fits.BinTableHDU.from_columns(columns)
        table.header["EXTNAME"] = "SPECTRUM"
        table.header["HDUCLAS1"] = "SPECTRUM"
        table.header["EXPOSURE"] = 1000.0
        table.header["BACKSCAL"] = 1.0
        for key, value in keywords.items():
            table.header[key] = value
        hdus = fits.HDUList([fits.PrimaryHDU(), table])
        if gzip:
            import gzip as gz
            import io

            buffer = io.BytesIO()
            hdus.writeto(buffer)
            path.write_bytes(gz.compress(buffer.getvalue()))
        else:
            hdus.writeto(path)
        return path

    def rmf(path: Path, width_kev: float = 0.005) -> Path:
        channels = np.arange(N_CHANNELS)
        ebounds = fits.BinTableHDU.from_columns(
            [
                fits.Column(name="CHANNEL", format="J", array=channels),
                fits.Column(name="E_MIN", format="D", array=channels * width_kev),
                fits.Column(name="E_MAX", format="D", array=(channels + 1) * width_kev),
            ]
        )
        ebounds.header["EXTNAME"] = "EBOUNDS"
        fits.HDUList([fits.PrimaryHDU(), ebounds]).writeto(path)
        return path

    write.rmf = rmf
    return write
