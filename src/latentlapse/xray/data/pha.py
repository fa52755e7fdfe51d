"""OGIP PHA source spectra: background-subtracted and rebinned by energy onto the 380-bin grid.

net = src − bkg · (BACKSCAL_src / BACKSCAL_bkg) · (AREASCAL_src / AREASCAL_bkg) ·
(EXPOSURE_src / EXPOSURE_bkg), in counts (the COUNTS column, or RATE × EXPOSURE; EXPOSURE is
required only there and with a background). Channels with QUALITY ≠ 0 are set to zero in
source and background. Each channel's net counts are then shared among the 25 eV grid bins in
proportion to the overlap of its [E_MIN, E_MAX] interval (EBOUNDS of the RMF named by
RESPFILE) — the pn's channels are not exactly 5 eV wide. Files named by BACKFILE and RESPFILE
are looked for next to the spectrum; gzip (``.FTZ``) is read transparently.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from latentlapse.xray.data import grid
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.fits_files import column_arrays, open_fits, require_complete
from latentlapse.xray.data.spectra_checks import (
    FITS_SUFFIXES,
    PHA_LABEL_HINT,
    PHA_SUFFIXES,
    Rows,
    UnknownLabels,
    canonical_labels,
    is_spectrum_hdu,
    require_astropy,
    spectra_dataset,
    suffix_of,
)
from latentlapse.core.errors import InputError

log = logging.getLogger(__name__)

PN_CHANNEL_KEV = 0.005  # EPIC-pn PI channel width, used only when no RMF is at hand
# What the 5 eV channel definition costs: the pn RMF's EBOUNDS (rmfgen, SAS 18, the example
# PN.rmf) sit up to 28 eV above it in 0.5-2.5 keV, under 0.2 eV above 2.5 keV.
PN_CHANNELS_NOTE = ("channel energies from the EPIC-pn channel definition (channel c covers 5c to 5(c+1) eV), "
                    "which can differ from the RMF's EBOUNDS by up to about 28 eV (one 25 eV grid bin) below "
                    "2.5 keV; put the RMF next to the spectrum to use its EBOUNDS")
_NO_FILE = {"", "NONE", "NULL"}


@dataclass(frozen=True)
class _Counts:
    """One SPECTRUM extension: counts per channel and the keywords that scale it."""

    channels: np.ndarray
    counts: np.ndarray
    quality: np.ndarray
    exposure: float | None  # None when the header has no EXPOSURE (needed only for RATE or a background)
    backscal: np.ndarray | float
    areascal: np.ndarray | float
    keywords: dict
    whose: str  # the file, as messages name it


@dataclass(frozen=True)
class _NetSpectrum:
    """A source's net spectrum on the grid (summing to 1) and what was decided reading it."""

    target: str  # OBJECT, "" when absent
    label: str
    values: np.ndarray
    net_counts: float
    notes: tuple[str, ...]


def read_pha(path: Path, unknown_labels: UnknownLabels | None = None) -> Dataset:
    """One PHA file (with its background) as a one-row spectra Dataset; a label of no known
    class is refused, or counted in ``unknown_labels`` and read as unlabelled."""
    spectrum = _net_spectrum(path, unknown_labels)
    return _dataset(path, [path], [spectrum], list(spectrum.notes))


def read_folder(folder: Path, unknown_labels: UnknownLabels | None = None) -> Dataset:
    """Every PHA source spectrum in a folder, sorted by name, one row each.

    Background files (those another file names by BACKFILE, or HDUCLAS2 = BKG), ARFs, RMFs
    and other FITS files are skipped.
    """
    require_astropy("reading PHA spectra")
    suffixes = PHA_SUFFIXES + FITS_SUFFIXES
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and suffix_of(p) in suffixes)
    spectra, backgrounds = [], set()
    for candidate in candidates:
        keywords = _spectrum_keywords(candidate)
        if keywords is None:
            continue
        if str(keywords.get("HDUCLAS2", "")).upper() == "BKG":
            backgrounds.add(candidate.resolve())
        named = _named_file(keywords, "BACKFILE")
        if named:
            backgrounds.add((candidate.parent / named).resolve())
        spectra.append(candidate)
    sources = [p for p in spectra if p.resolve() not in backgrounds]
    if not sources:
        raise InputError(
            f"{folder}: no PHA source spectra in this folder (looked for {', '.join(suffixes)} files "
            f"with a SPECTRUM extension); pass a folder of spectra or a single file"
        )
    net = [_net_spectrum(p, unknown_labels) for p in sources]
    notes = [f"{p.name}: {note}" for p, spectrum in zip(sources, net) for note in spectrum.notes]
    return _dataset(folder, sources, net, [f"{len(sources)} PHA file(s) read from the folder"] + notes)


def _dataset(path: Path, files: list[Path], spectra: list[_NetSpectrum], notes: list[str]) -> Dataset:
    """Package net spectra, read from ``files``, with the shared checks of every spectra reader."""
    rows = Rows("spectrum", np.arange(1, len(spectra) + 1))
    ids, id_notes = _source_ids(files, [s.target for s in spectra])
    dataset = spectra_dataset(
        path,
        np.vstack([s.values for s in spectra]),
        np.array([s.net_counts for s in spectra]),
        np.array(ids),
        np.array([s.label for s in spectra]),
        rows,
        [f"bin {j + 1}" for j in range(grid.N_BINS)],
        notes=notes + id_notes,
    )
    return replace(dataset, label_hint=PHA_LABEL_HINT)


def _source_ids(files: list[Path], targets: list[str]) -> tuple[list[str], list[str]]:
    """Each file's id: its OBJECT keyword, unless absent or shared with another file read, then
    the file's name without suffix; and a note for each shared OBJECT.

    Pipelines (SAS, CIAO) copy OBJECT from the event file, so it names the observation's
    target: every source extracted from one observation has the same one, and only the file
    name tells their rows apart.
    """
    counts = Counter(t for t in targets if t)
    ids = [t if t and counts[t] == 1 else _stem(f) for f, t in zip(files, targets)]
    notes = []
    for target, n in counts.items():
        if n > 1:
            named = [f.name for f, t in zip(files, targets) if t == target]
            shown = ", ".join(named[:3]) + (", ..." if n > 3 else "")
            notes.append(f"{n} files ({shown}) have the same OBJECT '{target}' (the observation's target, not "
                         f"the source): their ids are their file names")
    return ids, notes


def _net_spectrum(path: Path, unknown_labels: UnknownLabels | None) -> _NetSpectrum:
    """Background-subtract, drop bad channels, rebin onto the grid and normalise one PHA file."""
    source = _read_counts(path)
    kind = str(source.keywords.get("HDUCLAS2", "")).strip().upper()
    if kind == "BKG":  # a folder skips these; given alone, it would be classified as a source
        raise InputError(f"{path}: is a background spectrum (HDUCLAS2 = BKG); pass the source spectrum")
    notes = _instrument_notes(source.keywords)
    bad = source.quality != 0
    subtracted: np.ndarray | float = 0.0
    background_name = _named_file(source.keywords, "BACKFILE")
    if background_name:
        background = _read_background(path, background_name, source)
        bad |= background.quality != 0
        scale = (
            (source.backscal / background.backscal)
            * (source.areascal / background.areascal)
            * (_exposure(source, "to scale the background") / _exposure(background, "to scale it to the source"))
        )
        subtracted = scale * background.counts
    elif kind == "NET":
        notes.append("already background-subtracted (HDUCLAS2 = NET)")
    else:
        notes.append("no BACKFILE: source counts used without background subtraction")
    # Zeroing the net count of a bad channel is zeroing it in source and background alike.
    counts = np.where(bad, 0.0, source.counts - subtracted)
    e_min, e_max, energy_notes = _channel_energies(path, source)
    if bad.any():
        in_band = int((bad & (e_max > grid.E_MIN_KEV) & (e_min < grid.E_MAX_KEV)).sum())
        notes.append(
            f"QUALITY flags: {int(bad.sum())} channels excluded ({in_band} of them in 0.5-10 keV), "
            f"set to zero in source and background"
        )
    rebinned = rebin(counts, e_min, e_max)
    net = float(rebinned.sum())
    if net <= 0:
        raise InputError(
            f"{path}: {net:.1f} net counts in 0.5-10 keV after background subtraction; "
            f"check BACKSCAL/EXPOSURE of source and background, or leave this source out"
        )
    raw_label = str(source.keywords.get("CLASS", source.keywords.get("LABEL", ""))).strip()
    label = canonical_labels(path, [raw_label], Rows("keyword CLASS/LABEL of spectrum", np.array([1])),
                             unknown_labels)[0]
    target = str(source.keywords.get("OBJECT", "")).strip()
    return _NetSpectrum(target, str(label), rebinned / net, net, tuple(notes + energy_notes))


def _instrument_notes(keywords: dict) -> list[str]:
    """A note when TELESCOP or INSTRUME names another instrument than XMM-Newton's EPIC-pn, whose
    spectra (effective area, edges, resolution) are what the model learned from; none when the
    keywords are absent."""
    telescope = str(keywords.get("TELESCOP", "XMM") or "XMM").strip().upper()
    instrument = str(keywords.get("INSTRUME", "EPN") or "EPN").strip().upper()
    if telescope.startswith("XMM") and instrument == "EPN":
        return []
    return [f"TELESCOP = {telescope}, INSTRUME = {instrument}: the model's inputs are XMM-Newton EPIC-pn "
            f"spectra, and its probabilities may not carry over to another instrument's"]


def rebin(counts: np.ndarray, e_min: np.ndarray, e_max: np.ndarray) -> np.ndarray:
    """Counts per grid bin: each channel shared by the overlap fraction of its energy interval."""
    edges = grid.edges()
    width = e_max - e_min
    use = (width > 0) & (e_max > edges[0]) & (e_min < edges[-1])
    lo, hi = e_min[use, None], e_max[use, None]
    overlap = np.clip(np.minimum(hi, edges[None, 1:]) - np.maximum(lo, edges[None, :-1]), 0.0, None)
    return counts[use] @ (overlap / width[use, None])


def has_spectrum(path: Path) -> bool:
    """Whether a FITS file has an OGIP SPECTRUM extension; a file cut short before any extension
    (a truncated ``.FTZ``) is refused here, in one line, instead of being read as a table."""
    return _spectrum_keywords(path) is not None


def _spectrum_keywords(path: Path) -> dict | None:
    """Keywords of a file's SPECTRUM extension (primary header underneath), or None without one;
    a file of one HDU is checked for being cut short, as one cut before its first extension looks
    like that (a table reader checks its own table)."""
    with open_fits(path) as hdus:
        hdu = next((h for h in hdus[1:] if is_spectrum_hdu(h)), None)
        if hdu is None:
            if len(hdus) == 1:
                require_complete(path, hdus, str(path))
            return None
        return {**dict(hdus[0].header), **dict(hdu.header)}


def _read_counts(path: Path, whose: str | None = None) -> _Counts:
    """Counts per channel and the scaling keywords of a file's SPECTRUM extension; a cut or
    damaged file is refused naming it as ``whose`` (default: its path)."""
    whose = whose or str(path)
    with open_fits(path, whose) as hdus:
        hdu = next((h for h in hdus[1:] if is_spectrum_hdu(h)), None)
        require_complete(path, hdus, whose)
        if hdu is None:
            raise InputError(f"{path}: no SPECTRUM extension (EXTNAME or HDUCLAS1); pass an OGIP PHA spectrum")
        keywords = {**dict(hdus[0].header), **dict(hdu.header)}
        columns = column_arrays(hdu, whose)
    exposure = _positive(path, keywords, "EXPOSURE", 0.0) if "EXPOSURE" in keywords else None
    if "COUNTS" in columns:
        counts = columns["COUNTS"].astype(np.float64)
    elif "RATE" in columns:
        if exposure is None:
            raise InputError(_no_exposure(whose, "to turn its RATE column into counts"))
        counts = columns["RATE"].astype(np.float64) * exposure
    else:
        raise InputError(
            f"{path}: the SPECTRUM extension has neither a COUNTS nor a RATE column; pass an OGIP PHA spectrum"
        )
    if counts.ndim != 1:
        raise InputError(
            f"{path}: a type II PHA file ({counts.shape[0]} spectra in one table); split it into one file per spectrum"
        )
    first = int(keywords.get("TLMIN1", 0))
    channels = columns.get("CHANNEL", np.arange(first, first + len(counts))).astype(np.int64)
    if not np.isfinite(counts).all():
        channel = int(channels[~np.isfinite(counts)][0])
        raise InputError(f"{path}: channel {channel} has a NaN/inf count; the spectrum is damaged")
    quality = columns.get("QUALITY", np.full(len(counts), int(keywords.get("QUALITY", 0)))).astype(np.int64)
    backscal = _scaling(path, keywords, columns, "BACKSCAL")
    areascal = _scaling(path, keywords, columns, "AREASCAL")
    return _Counts(channels, counts, quality, exposure, backscal, areascal, keywords, whose)


def _exposure(spectrum: _Counts, purpose: str) -> float:
    """A spectrum's EXPOSURE where a background is scaled: required there, and only there."""
    if spectrum.exposure is None:
        raise InputError(_no_exposure(spectrum.whose, purpose))
    return spectrum.exposure


def _no_exposure(whose: str, purpose: str) -> str:
    return (f"{whose}: no EXPOSURE keyword in the SPECTRUM extension; it is needed {purpose} (and OGIP requires "
            f"it), add it to the header")


def _read_background(path: Path, name: str, source: _Counts) -> _Counts:
    """The background named by BACKFILE, looked for next to the source; same channels required."""
    background_path = path.parent / name
    if not background_path.is_file():
        raise InputError(
            f"{path}: background file '{name}' named by BACKFILE not found next to it "
            f"({background_path.absolute()}); put it there or set BACKFILE"
        )
    background = _read_counts(background_path, f"{background_path} (the background of {path.name})")
    if not np.array_equal(background.channels, source.channels):
        raise InputError(
            f"{path}: background '{name}' has {len(background.channels)} channels, the source "
            f"{len(source.channels)} (or other channel numbers); extract both with the same binning"
        )
    return background


def _channel_energies(path: Path, source: _Counts) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """E_MIN, E_MAX (keV) of each source channel from the RMF's EBOUNDS, or the pn relation."""
    name = _named_file(source.keywords, "RESPFILE")
    response = path.parent / name if name else None
    if response is not None and response.is_file():
        return (*_ebounds(path, response, source.channels), [])
    instrument = str(source.keywords.get("INSTRUME", "EPN")).strip().upper()
    why = f"RESPFILE '{name}' not found next to it" if name else "no RESPFILE"
    if instrument != "EPN":
        raise InputError(
            f"{path}: {why}, and channel energies are only known without a response for EPIC-pn "
            f"(INSTRUME = {instrument}); put the RMF next to the spectrum or set RESPFILE"
        )
    log.warning("%s: %s; channel energies from the EPIC-pn channel definition, up to about 28 eV off the RMF's "
                "below 2.5 keV", path, why)
    note = f"{why}: {PN_CHANNELS_NOTE}"
    channels = source.channels.astype(np.float64)
    return channels * PN_CHANNEL_KEV, (channels + 1) * PN_CHANNEL_KEV, [note]


def _ebounds(path: Path, response: Path, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E_MIN and E_MAX of the given channels from a response file's EBOUNDS extension."""
    whose = f"{response} (the response of {path.name})"
    with open_fits(response, whose) as hdus:
        hdu = next((h for h in hdus[1:] if str(h.header.get("EXTNAME", "")).upper() == "EBOUNDS"), None)
        if hdu is None:
            require_complete(response, hdus, whose)
            raise InputError(f"{path}: response '{response.name}' has no EBOUNDS extension; set RESPFILE to the RMF")
        columns = column_arrays(hdu, whose)
    known = columns["CHANNEL"].astype(np.int64)
    e_min, e_max = columns["E_MIN"].astype(np.float64), columns["E_MAX"].astype(np.float64)
    order = np.argsort(known)
    position = np.clip(np.searchsorted(known[order], channels), 0, len(known) - 1)
    found = known[order][position] == channels
    if not found.all():
        missing = int(channels[~found][0])
        raise InputError(
            f"{path}: channel {missing} is not in the EBOUNDS of '{response.name}'; the RMF does "
            f"not belong to this spectrum, set RESPFILE to the right one"
        )
    return e_min[order][position], e_max[order][position]


def companion_files(path: Path) -> list[Path]:
    """The files a PHA spectrum names beside it (BACKFILE, RESPFILE, ANCRFILE), which writing
    over would lose; none when its headers cannot be read (reading the spectrum says why)."""
    try:
        keywords = _spectrum_keywords(Path(path)) or {}
    except InputError:
        return []
    names = (_named_file(keywords, key) for key in ("BACKFILE", "RESPFILE", "ANCRFILE"))
    return [Path(path).parent / name for name in names if name]


def _named_file(keywords: dict, key: str) -> str:
    """A file named by a keyword, without an extension selector like ``[1]``; "" for none."""
    value = re.sub(r"[\[{].*$", "", str(keywords.get(key, "") or "")).strip()
    return "" if value.upper() in _NO_FILE else value


def _scaling(path: Path, keywords: dict, columns: dict, key: str) -> np.ndarray | float:
    """BACKSCAL or AREASCAL: a per-channel column if there is one, else the keyword (default 1)."""
    if key not in columns:
        return _positive(path, keywords, key, 1.0)
    values = columns[key].astype(np.float64)
    if not (values > 0).all():
        raise InputError(f"{path}: the {key} column has values that are not positive; fix the file")
    return values


def _positive(path: Path, keywords: dict, key: str, default: float) -> float:
    """A keyword that must be a positive number (``default`` when absent)."""
    value = keywords.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0:
        raise InputError(f"{path}: {key} = {value!r} must be a positive number; fix the header")
    return number


def _stem(path: Path) -> str:
    """File name without its (possibly double, gzip) suffix: ``PN.pha.gz`` -> ``PN``."""
    return path.name[: -len(suffix_of(path))] if suffix_of(path) else path.name
