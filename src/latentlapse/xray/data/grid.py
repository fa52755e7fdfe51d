"""The energy grid every spectrum is put on: 380 bins of 25 eV from 0.5 to 10 keV.

Bin i covers 0.5 + 0.025 i … 0.5 + 0.025 (i + 1) keV, i.e. five EPIC-pn PI channels (100–1999).
"""

from __future__ import annotations

import numpy as np

E_MIN_KEV = 0.5
E_MAX_KEV = 10.0
BIN_WIDTH_KEV = 0.025
N_BINS = 380


def edges() -> np.ndarray:
    """The 381 bin edges in keV."""
    return E_MIN_KEV + BIN_WIDTH_KEV * np.arange(N_BINS + 1)


def centres() -> np.ndarray:
    """The 380 bin centres in keV."""
    e = edges()
    return 0.5 * (e[:-1] + e[1:])
