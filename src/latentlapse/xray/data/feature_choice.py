"""Which catalogue columns become features, and the data problems worth naming before training.

By default a catalogue model uses the numeric columns that describe the *source*: sky position
(RA/Dec, Galactic l/b, ...), positional errors, names and ids, detection significance and
observation bookkeeping (ObsID, exposure, off-axis angle, ...) are left out, each with its
reason, unless named in ``--features``. Position says where a source is, not what it is: a model
that learns where the training fields lie on the sky does not transfer to a new field.

Also here: the likely placeholders of a numeric column (a value repeated exactly in more than a
few percent of its rows, standing out from its neighbours) and text flag columns (t/f, y/n).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from latentlapse.xray.data.schema import FLAG_VALUES, MISSING_TOKENS

COORDINATE = "sky position"
POSITION_ERROR = "positional error"
IDENTIFIER = "name or id"
SIGNIFICANCE = "detection significance"
BOOKKEEPING = "observation bookkeeping"

# Word lists match the words of a column name (split at _, /, -, spaces and case changes), lower case.
_COORDINATE_WORDS = {"ra", "dec", "de", "raj2000", "dej2000", "decj2000", "radeg", "dedeg", "decdeg", "ra2000",
                     "dec2000", "glon", "glat", "glong", "elon", "elat", "lii", "bii", "gall", "galb", "lon", "lat",
                     "declination", "ascension"}
# Galactic l and b as bare names are lower case only: ``B`` and ``L`` are a magnitude and a luminosity.
_COORDINATE_NAMES = {"l", "b"}
_COORDINATE_NAMES_ANY_CASE = {"gal_l", "gal_b"}
# A proper motion (pmRA, pmDE, pm_dec) names ra/dec words but is a physical property of the source.
_PROPER_MOTION_WORDS = {"pm", "pmra", "pmde", "pmdec"}
_POSITION_ERROR_NAMES = {"pu", "poserr", "pos_err", "e_pos", "epos", "err_pos", "posunc", "err_ellipse_r0",
                         "err_ellipse_r1", "err_ellipse_ang", "errmaj", "errmin", "errpa", "err_maj", "err_min",
                         "sigpos", "radecerr", "radec_err", "e_radec"}
_ERROR_WORDS = {"e", "err", "error", "sig", "sigma", "unc", "uncertainty"}
_SIGNIFICANCE_WORDS = {"signif", "significance"}
# A significance word is a detection's significance unless it stands beside one of these words:
# ``var_significance`` measures how variable the source is, a property of the source.
_VARIABILITY_WORDS = {"var", "variability", "fvar", "ks", "kp", "chi2", "flare"}
_SIGNIFICANCE_NAMES = {"s/n", "sn", "snr", "s_n", "signif", "significance", "det_ml", "detml", "det_sig", "detsig",
                       "det_like", "detlike", "likelihood", "flux_significance", "src_significance",
                       "significance_max"}
_BOOKKEEPING_WORDS = {"obsid", "obi", "exposure", "exptime", "expo", "livetime", "ontime", "theta",
                      "offaxis", "ccd", "ccdid", "chip", "mjd", "tstart", "tstop", "nobs", "detector", "instrument",
                      "revolution", "pointing", "seq", "recno"}
_BOOKKEEPING_NAMES = {"off_axis", "off_axis_angle", "date", "date_obs", "dateobs", "obs_id", "n_obs", "ccd_id",
                      "chip_id", "seq_num", "n_detections", "ndet", "n_det", "obs"}
# ``obs`` is bookkeeping (ObsID, n_obs, OBS_START, first_obs) unless it stands beside one of these
# quantities, where it means "observed" (Fb_obs, Lx_obs: an observed flux or luminosity).
_OBSERVED_QUANTITIES = {"f", "fs", "fm", "fh", "fb", "flux", "l", "lx", "lum", "luminosity", "mag", "rate", "nh",
                        "hr", "kt", "gamma"}

# A value repeated exactly in more than this share of a column's present values (and at least
# this many times) at the column's minimum or maximum is reported as a likely placeholder.
PLACEHOLDER_SHARE = 0.02
PLACEHOLDER_MIN_ROWS = 10
# Columns with fewer distinct values are counts or categories, where a repeated extreme is normal.
PLACEHOLDER_MIN_DISTINCT = 10


def words(name: str) -> list[str]:
    """The words of a column name, lower case: ``CSCv2_RA`` -> ``cscv2, ra``; ``RAJ2000`` -> ``raj2000``."""
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z0-9]+(?![a-z])", name)]


def exclusion_reason(name: str) -> str | None:
    """Why a column is left out of the default features, or None when it describes the source."""
    lower = name.strip().lower()
    parts = words(name)
    last = parts[-1] if parts else lower
    proper_motion = bool(set(parts) & _PROPER_MOTION_WORDS)
    if lower in _POSITION_ERROR_NAMES or last == "pu" or (
        not proper_motion and set(parts) & {"ra", "dec", "de", "pos", "radec"} and set(parts) & _ERROR_WORDS
    ):
        return POSITION_ERROR
    if (name.strip() in _COORDINATE_NAMES or lower in _COORDINATE_NAMES_ANY_CASE
            or (not proper_motion and (set(parts) & _COORDINATE_WORDS or lower.replace("_", "") in _COORDINATE_WORDS))):
        return COORDINATE
    if (lower in _SIGNIFICANCE_NAMES or lower.endswith(("s/n", "_snr")) or last == "snr"
            or _detection_significance(parts) or {"det", "ml"} <= set(parts) or "likelihood" in parts):
        return SIGNIFICANCE
    if (lower in _BOOKKEEPING_NAMES or set(parts) & _BOOKKEEPING_WORDS
            or ("obs" in parts and not set(parts) & _OBSERVED_QUANTITIES)):
        return BOOKKEEPING
    return None


def _detection_significance(parts: list[str]) -> bool:
    """A significance column of the detection (``flux_significance_b``, ``detect_significance``),
    not of the source's variability (``var_significance``)."""
    return bool(set(parts) & _SIGNIFICANCE_WORDS) and not set(parts) & _VARIABILITY_WORDS


def choose_columns(
    candidates: Sequence[str], requested: Sequence[str] | None, exclude: Sequence[str] = ()
) -> tuple[list[str], list[tuple[str, str]]]:
    """The feature columns and the left-out ones with their reasons.

    ``requested`` (``--features``) is taken as given; otherwise every candidate but those
    :func:`exclusion_reason` names. ``exclude`` (``--exclude``) removes more.
    """
    excluded = set(exclude)
    left_out = [(name, "--exclude") for name in candidates if name in excluded]
    if requested is not None:
        chosen = [n for n in requested if n not in excluded]
        left_out += [(n, "not in --features") for n in candidates if n not in requested and n not in excluded]
        return chosen, left_out
    chosen = []
    for name in candidates:
        if name in excluded:
            continue
        reason = exclusion_reason(name)
        if reason is None:
            chosen.append(name)
        else:
            left_out.append((name, reason))
    return chosen, left_out


def flag_values(values: Sequence[str]) -> np.ndarray | None:
    """A text column of t/f, y/n, true/false, yes/no (any case) as 1/0 with NaN where empty; else None."""
    out = np.full(len(values), np.nan)
    seen = False
    for i, value in enumerate(values):
        token = str(value).strip().lower()
        if token in MISSING_TOKENS:
            continue
        if token not in FLAG_VALUES:
            return None
        out[i], seen = FLAG_VALUES[token], True
    return out if seen else None


def likely_placeholders(values: np.ndarray) -> list[tuple[float, int]]:
    """(value, rows) of the values of a numeric column that look like placeholders for "missing".

    A filler (-99, 99.99, 0 or a tiny flux standing for "no measurement") sits at an end of the
    column's range and repeats exactly: the minimum or maximum, present in more than
    ``PLACEHOLDER_SHARE`` of the column's values and at least ``PLACEHOLDER_MIN_ROWS`` times. A
    rounded measurement in the middle of the range may repeat as often and is not reported; nor
    are the bounds of a column within [0, 1] (a probability saturating at 1), nor columns with
    few distinct values (counts, categories).
    """
    present = values[np.isfinite(values)]
    if present.size < PLACEHOLDER_MIN_ROWS:
        return []
    unique, counts = np.unique(present, return_counts=True)
    if unique.size < PLACEHOLDER_MIN_DISTINCT:
        return []
    unit_interval = unique[0] >= 0 and unique[-1] <= 1
    found = []
    for i in sorted({0, unique.size - 1}):
        if unit_interval and unique[i] in (0.0, 1.0):
            continue
        if counts[i] > PLACEHOLDER_SHARE * present.size and counts[i] >= PLACEHOLDER_MIN_ROWS:
            found.append((float(unique[i]), int(counts[i])))
    return found
