"""The EPIC-pn instrument and the absorbing interstellar medium, as seen by the simulator.

Everything here is built from the package's own tables (``instrument/``) and cached, so a
simulation pays for the response matrix once per process. The simulator works on a fine *model*
energy grid (0.2–12 keV in 10 eV steps) and folds it onto the 380 output bins of
:mod:`latentlapse.xray.data.grid` with one matrix product.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from latentlapse.xray.data import grid

MODEL_E_MIN_KEV = 0.2
MODEL_E_MAX_KEV = 12.0
MODEL_STEP_KEV = 0.01
# pn PI channels are 5 eV wide; each output bin is five of them.
CHANNEL_WIDTH_KEV = 0.005
CHANNELS_PER_BIN = round(grid.BIN_WIDTH_KEV / CHANNEL_WIDTH_KEV)

# Fractions of the particle background's 0.5–10 keV counts in its two fluorescence lines.
_BACKGROUND_LINES = ((1.49, 0.04), (8.04, 0.07))  # (Al K-alpha, Cu K-alpha): (keV, fraction)


def _table(name: str) -> np.ndarray:
    """A numeric CSV table shipped under ``latentlapse/xray/data/instrument`` ('#' lines skipped)."""
    text = resources.files("latentlapse.xray.data").joinpath("instrument", name).read_text("utf-8")
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    return np.array([[float(v) for v in row.split(",")] for row in rows[1:]])


@functools.lru_cache(maxsize=1)
def model_energies() -> np.ndarray:
    """Centres (keV) of the fine model grid on which photon spectra are evaluated."""
    n = round((MODEL_E_MAX_KEV - MODEL_E_MIN_KEV) / MODEL_STEP_KEV)
    return MODEL_E_MIN_KEV + MODEL_STEP_KEV * (np.arange(n) + 0.5)


@functools.lru_cache(maxsize=1)
def _area_table() -> np.ndarray:
    return _table("pn_medium_area.csv")


def effective_area(energy: np.ndarray) -> np.ndarray:
    """pn Medium-filter on-axis effective area (cm²) at ``energy`` keV, linearly interpolated."""
    table = _area_table()
    return np.interp(energy, table[:, 0], table[:, 1], left=0.0, right=0.0)


@functools.lru_cache(maxsize=1)
def _absorption_table() -> np.ndarray:
    return _table("morrison_mccammon_1983.csv")


def cross_section(energy: np.ndarray) -> np.ndarray:
    """Morrison & McCammon (1983) photoelectric cross-section per H atom (cm²), any shape.

    Energies above the table's 10 keV reuse its last segment, which is what redshifted
    intrinsic absorption needs (rest-frame energies up to ~50 keV, where σ is negligible).
    """
    table = _absorption_table()
    energy = np.asarray(energy, dtype=np.float64)
    segment = np.clip(np.searchsorted(table[:, 1], energy), 0, len(table) - 1)
    c0, c1, c2 = table[segment, 2], table[segment, 3], table[segment, 4]
    return (c0 + c1 * energy + c2 * energy**2) * energy**-3 * 1e-24


def transmission(energy: np.ndarray, nh: np.ndarray) -> np.ndarray:
    """exp(−N_H σ(E)) for each column density: shape ``(len(nh), len(energy))``."""
    return np.exp(-np.asarray(nh)[:, None] * cross_section(energy)[None, :])


def fwhm_kev(energy: np.ndarray) -> np.ndarray:
    """pn energy resolution, FWHM(E) = sqrt(4548 + 5856 E[keV]) eV, returned in keV."""
    return np.sqrt(4548.0 + 5856.0 * energy) * 1e-3


@functools.lru_cache(maxsize=1)
def response_matrix() -> np.ndarray:
    """Counts in each output bin per photon detected at each model energy: ``(n_model, 380)``.

    Each model energy is spread as a Gaussian of the pn FWHM over the 5 eV PI channels
    (density at the channel centre times its width) and every five channels are summed into
    one 25 eV bin. Photons redistributed outside 0.5–10 keV are lost, as in real data.
    """
    energy = model_energies()
    channels = grid.E_MIN_KEV + CHANNEL_WIDTH_KEV * (np.arange(grid.N_BINS * CHANNELS_PER_BIN) + 0.5)
    sigma = fwhm_kev(energy)[:, None] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    density = np.exp(-0.5 * ((channels[None, :] - energy[:, None]) / sigma) ** 2)
    density *= CHANNEL_WIDTH_KEV / (np.sqrt(2.0 * np.pi) * sigma)
    return density.reshape(len(energy), grid.N_BINS, CHANNELS_PER_BIN).sum(axis=2)


def fold(photon_flux: np.ndarray) -> np.ndarray:
    """Expected counts per output bin of photon flux densities on the model grid, ``(n, 380)``.

    The flux (photons cm⁻² s⁻¹ keV⁻¹ in any common unit) is multiplied by the effective area and
    the model step, then redistributed by :func:`response_matrix` in one matrix product.
    """
    weights = effective_area(model_energies()) * MODEL_STEP_KEV
    return (photon_flux * weights) @ response_matrix()


@functools.lru_cache(maxsize=1)
def background_shape() -> np.ndarray:
    """The particle background's spectrum on the output bins, summing to 1: ``(380,)``.

    Flat per keV in detector energy (the particle background is not focused by the mirrors, so
    no effective area) plus the Al Kα 1.49 keV and Cu Kα 8.04 keV fluorescence lines, both
    broadened by the detector resolution.
    """
    energy = model_energies()
    response = response_matrix()
    continuum = np.ones_like(energy) @ response
    shape = continuum / continuum.sum() * (1.0 - sum(frac for _, frac in _BACKGROUND_LINES))
    for line_energy, fraction in _BACKGROUND_LINES:
        line = response[np.argmin(np.abs(energy - line_energy))]
        shape = shape + fraction * line / line.sum()
    return shape
