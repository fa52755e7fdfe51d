"""Photon spectra of the nine source classes, with their physical parameters drawn per source.

Every function works on many sources at once: parameters are ``(n,)`` arrays and spectra are
``(n, m)`` photon flux densities on the model energy grid (``instrument.model_energies()``), in
arbitrary units — the simulator fixes each source's counts afterwards. Components are scaled
to unit photon flux in 0.5–10 keV before they are mixed, so mixing ratios are band flux ratios.
The models and parameter ranges follow the per-class table of ``DOMAIN.md``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from latentlapse.xray.data.instrument import cross_section, transmission

Params = dict[str, np.ndarray]
ClassModel = Callable[[np.random.Generator, int, np.ndarray], tuple[np.ndarray, Params]]

BAND_KEV = (0.5, 10.0)

# Thermal-plasma line complexes: (energy keV, peak temperature kT keV, equivalent width keV at
# solar abundance and that temperature). Peak temperatures are where each ion's emissivity
# peaks in collisional equilibrium; the equivalent widths are tuned so that coronal spectra
# show the Fe-L/Ne bump at 0.7–1.2 keV that real pn spectra of stars show.
PLASMA_LINES = np.array([
    (0.570, 0.17, 0.15),  # O VII
    (0.654, 0.30, 0.15),  # O VIII
    (0.730, 0.40, 0.35),  # Fe XVII
    (0.826, 0.45, 0.70),  # Fe XVII
    (0.920, 0.65, 0.60),  # Ne IX + Fe XIX-XX (Fe L)
    (1.020, 0.60, 0.30),  # Ne X
    (1.120, 1.30, 0.20),  # Fe XXIII-XXIV
    (1.350, 0.55, 0.08),  # Mg XI
    (1.470, 0.90, 0.06),  # Mg XII
    (1.860, 0.85, 0.10),  # Si XIII
    (2.000, 1.40, 0.06),  # Si XIV
    (2.460, 1.40, 0.08),  # S XV
    (2.620, 2.20, 0.04),  # S XVI
    (3.130, 1.80, 0.03),  # Ar XVII
    (3.900, 2.70, 0.03),  # Ca XIX
    (6.700, 5.00, 0.45),  # Fe XXV
    (6.970, 9.00, 0.20),  # Fe XXVI
])
# Spread of an ion's emissivity around its peak, in ln kT (about a factor 1.6 either side).
_LINE_LN_WIDTH = 0.5

# Cooling flow: number of temperatures, the coolest one (keV), and d(EM)/d(ln kT) ∝ kT^slope.
_COOLING_STEPS = 12
_COOLING_KT_MIN = 0.1
_COOLING_SLOPE = 0.5

# Shares of rotation-powered pulsars, magnetars and thermally emitting isolated neutron stars.
_NS_MIX = (0.5, 0.25, 0.25)


# ------------------------------------------------------------------------------ parameter draws
def uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """``n`` draws from U[low, high]."""
    return rng.uniform(low, high, n)


def log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """``n`` draws uniform in log between ``low`` and ``high`` (column densities, counts)."""
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def chance(rng: np.random.Generator, probability: float, n: int) -> np.ndarray:
    """Boolean ``(n,)``: which sources get an optional component drawn with ``probability``."""
    return rng.random(n) < probability


# ------------------------------------------------------------------------------------ components
def band_normalised(energy: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Rows of ``flux`` scaled to unit photon flux (sum over the grid) in 0.5–10 keV."""
    band = (energy >= BAND_KEV[0]) & (energy <= BAND_KEV[1])
    return flux / flux[:, band].sum(axis=1, keepdims=True)


def power_law(energy: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """N(E) ∝ E^−Γ."""
    return energy[None, :] ** -gamma[:, None]


def cutoff_power_law(energy: np.ndarray, gamma: np.ndarray, e_cut: np.ndarray) -> np.ndarray:
    """N(E) ∝ E^−Γ exp(−E/E_cut), the spectrum of accreting pulsars in HMXBs."""
    return power_law(energy, gamma) * np.exp(-energy[None, :] / e_cut[:, None])


def blackbody(energy: np.ndarray, kt: np.ndarray) -> np.ndarray:
    """Photon spectrum of a blackbody, N(E) ∝ E² / (exp(E/kT) − 1); ``energy`` 1-D or (n, m)."""
    e = np.broadcast_to(energy, (len(kt), energy.shape[-1]))
    return e**2 / np.expm1(np.minimum(e / kt[:, None], 700.0))


def disk_blackbody(energy: np.ndarray, kt_in: np.ndarray) -> np.ndarray:
    """Multi-colour accretion disc: blackbody rings with T ∝ r^(−3/4) from the inner radius out."""
    radii = np.geomspace(1.0, 300.0, 24)
    flux = np.zeros((len(kt_in), len(energy)))
    for r in radii:  # ring area ∝ r dr = r² d(ln r); the constant d(ln r) drops out
        flux += r**2 * blackbody(energy, kt_in * r**-0.75)
    return flux


def bremsstrahlung(energy: np.ndarray, kt: np.ndarray) -> np.ndarray:
    """Thermal bremsstrahlung per unit emission measure, kT^−½ E^−1 exp(−E/kT) (Gaunt factor 1)."""
    return kt[:, None] ** -0.5 / energy[None, :] * np.exp(-energy[None, :] / kt[:, None])


def narrow_lines(energy: np.ndarray, line_energy: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Unresolved lines (one per source) of integrated ``flux`` at ``line_energy``, ``(n, m)``.

    Each line is shared between the two model bins around it; the detector resolution, applied
    later, gives it its width.
    """
    step = energy[1] - energy[0]
    position = (line_energy - energy[0]) / step
    left = np.clip(np.floor(position).astype(int), 0, len(energy) - 2)
    frac = np.clip(position - left, 0.0, 1.0)
    out = np.zeros((len(line_energy), len(energy)))
    rows = np.arange(len(line_energy))
    out[rows, left] = flux * (1.0 - frac) / step
    out[rows, left + 1] = flux * frac / step
    return out


def value_at(energy: np.ndarray, flux: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Each row of ``flux`` linearly interpolated at its own energy ``at`` (keV)."""
    step = energy[1] - energy[0]
    position = np.clip((at - energy[0]) / step, 0.0, len(energy) - 1.001)
    left = np.floor(position).astype(int)
    frac = position - left
    rows = np.arange(len(at))
    return flux[rows, left] * (1.0 - frac) + flux[rows, left + 1] * frac


def plasma(energy: np.ndarray, kt: np.ndarray, abundance: np.ndarray) -> np.ndarray:
    """Optically thin thermal plasma per unit emission measure: continuum plus line complexes.

    A line's equivalent width is its solar value times the abundance times how close kT is to
    the ion's peak temperature (a Gaussian in ln kT), so a 0.3 keV corona shows O VII/VIII and
    Fe XVII, a 1 keV one the Fe-L/Ne bump and a 5 keV one Fe XXV at 6.7 keV.
    """
    line_e, peak_kt, solar_ew = PLASMA_LINES.T
    closeness = np.exp(-0.5 * (np.log(kt[:, None] / peak_kt[None, :]) / _LINE_LN_WIDTH) ** 2)
    continuum_at_line = bremsstrahlung(line_e, kt)
    line_flux = abundance[:, None] * solar_ew * closeness * continuum_at_line
    templates = narrow_lines(energy, line_e, np.ones_like(line_e))
    return bremsstrahlung(energy, kt) + line_flux @ templates


def absorbed(energy: np.ndarray, flux: np.ndarray, nh: np.ndarray) -> np.ndarray:
    """``flux`` seen through a column ``nh`` (cm⁻²) of cold gas at rest."""
    return flux * transmission(energy, nh)


def mixed(energy: np.ndarray, main: np.ndarray, extra: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """``main`` plus ``extra`` carrying ``fraction`` of the 0.5–10 keV photon flux of ``main``."""
    return band_normalised(energy, main) + fraction[:, None] * band_normalised(energy, extra)


def _where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask`` holds, NaN elsewhere: a parameter only some sources have."""
    return np.where(mask, values, np.nan)


# --------------------------------------------------------------------------------- class models
def agn(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Power law, soft-excess blackbody in half, Fe Kα at 6.4/(1+z), 25% intrinsically absorbed.

    Blackbody, line and intrinsic absorber sit at the source's redshift; Galactic NH at z = 0.
    """
    gamma = np.clip(rng.normal(1.97, 0.28, n), 1.2, 3.0)
    nh_gal = log_uniform(rng, 1e20, 5e20, n)
    redshift = np.clip(np.exp(rng.normal(np.log(1.0), 0.7, n)), 0.02, 4.0)
    nh_int = np.where(chance(rng, 0.25, n), log_uniform(rng, 3e21, 1e23, n), 0.0)
    soft = chance(rng, 0.5, n)
    kt_bb = uniform(rng, 0.1, 0.2, n)
    soft_fraction = np.where(soft, uniform(rng, 0.05, 0.25, n), 0.0)
    fe_ew = uniform(rng, 0.05, 0.15, n)

    rest = energy[None, :] * (1.0 + redshift[:, None])
    continuum = mixed(energy, power_law(energy, gamma), blackbody(rest, kt_bb), soft_fraction)
    fe_energy = 6.4 / (1.0 + redshift)
    line_flux = fe_ew / (1.0 + redshift) * value_at(energy, continuum, fe_energy)
    flux = absorbed(energy, continuum + narrow_lines(energy, fe_energy, line_flux), nh_gal)
    obscured = nh_int > 0
    flux[obscured] *= np.exp(-nh_int[obscured, None] * cross_section(rest[obscured]))
    params = {"gamma": gamma, "nh": nh_gal + nh_int, "nh_intrinsic": nh_int, "redshift": redshift,
              "kT_bb": _where(soft, kt_bb), "fe_ew": fe_ew,
              "model": np.where(soft, "powerlaw+bbody", "powerlaw")}
    return flux, params


def _corona(
    rng: np.random.Generator,
    n: int,
    energy: np.ndarray,
    *,
    kt1: tuple[float, float],
    kt2: tuple[float, float],
    nh: tuple[float, float],
    abundance: tuple[float, float],
    flare: tuple[float, float, float] | None = None,
    hot: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, Params]:
    """Absorbed two-temperature plasma, optionally flaring or with a third, hot component.

    Parameters
    ----------
    kt1, kt2, abundance : ranges of uniform draws; ``nh`` : range of a log-uniform draw.
    flare : (probability, kT low, kT high): a flare replaces the second temperature.
    hot : (probability, kT low, kT high): a third component with 10–50% of the emission
        measure of the other two (colliding winds in massive binaries).
    """
    z = uniform(rng, *abundance, n)
    t1, t2 = uniform(rng, *kt1, n), uniform(rng, *kt2, n)
    column = log_uniform(rng, *nh, n)
    em2 = log_uniform(rng, 0.3, 3.0, n)
    flaring, has_hot, t3 = np.zeros(n, bool), np.zeros(n, bool), np.full(n, np.nan)
    if flare is not None:
        flaring = chance(rng, flare[0], n)
        t2 = np.where(flaring, uniform(rng, flare[1], flare[2], n), t2)
    flux = plasma(energy, t1, z) + em2[:, None] * plasma(energy, t2, z)
    if hot is not None:
        has_hot = chance(rng, hot[0], n)
        t3 = _where(has_hot, uniform(rng, hot[1], hot[2], n))
        em3 = uniform(rng, 0.1, 0.5, n) * (1.0 + em2)
        flux[has_hot] += em3[has_hot, None] * plasma(energy, t3[has_hot], z[has_hot])
    params = {"kT1": t1, "kT2": t2, "kT3": t3, "abundance": z, "nh": column,
              "model": np.select([flaring, has_hot], ["2T flare", "3T"], "2T")}
    return absorbed(energy, flux, column), params


def lm_star(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Late-type coronae: 0.25–0.6 + 0.7–2 keV plasma, subsolar metals, 10% caught flaring."""
    return _corona(rng, n, energy, kt1=(0.25, 0.6), kt2=(0.7, 2.0), nh=(1e19, 2e21),
                   abundance=(0.2, 0.6), flare=(0.1, 2.0, 5.0))


def hm_star(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Massive-star wind shocks: 0.2–0.4 + 0.6–1 keV, absorbed; 20% colliding-wind 2–4 keV."""
    return _corona(rng, n, energy, kt1=(0.2, 0.4), kt2=(0.6, 1.0), nh=(3e21, 2e22),
                   abundance=(0.5, 1.0), hot=(0.2, 2.0, 4.0))


def yso(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Young stars: hot (0.6–1 + 2–5 keV) plasma behind their birth cloud's 2e21–5e22 cm⁻²."""
    return _corona(rng, n, energy, kt1=(0.6, 1.0), kt2=(2.0, 5.0), nh=(2e21, 5e22),
                   abundance=(0.2, 0.5))


def cooling_flow(energy: np.ndarray, kt_max: np.ndarray, abundance: np.ndarray) -> np.ndarray:
    """Plasma cooling from ``kt_max`` to 0.1 keV: a sum of plasmas on a log grid of kT.

    The emission measure per ln kT grows as kT^0.5 (isobaric cooling: time spent at each
    temperature ∝ kT / Λ(kT) with Λ ∝ kT^0.5 for bremsstrahlung).
    """
    flux = np.zeros((len(kt_max), len(energy)))
    for step in np.linspace(0.0, 1.0, _COOLING_STEPS):
        kt = kt_max * (_COOLING_KT_MIN / kt_max) ** step
        flux += (kt / kt_max)[:, None] ** _COOLING_SLOPE * plasma(energy, kt, abundance)
    return flux


def cv(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Accreting white dwarfs: cooling flow up to 10–40 keV, Fe 6.4 keV, 30% partially covered."""
    kt_max = uniform(rng, 10.0, 40.0, n)
    z = uniform(rng, 0.3, 1.0, n)
    nh = log_uniform(rng, 1e20, 3e21, n)
    fe_ew = uniform(rng, 0.05, 0.15, n)
    covered = chance(rng, 0.3, n)
    cover = np.where(covered, uniform(rng, 0.3, 0.9, n), 0.0)
    nh_pc = log_uniform(rng, 1e22, 1e23, n)

    continuum = cooling_flow(energy, kt_max, z)
    fe_flux = fe_ew * value_at(energy, continuum, np.full(n, 6.4))
    flux = absorbed(energy, continuum + narrow_lines(energy, np.full(n, 6.4), fe_flux), nh)
    flux *= 1.0 - cover[:, None] + cover[:, None] * transmission(energy, nh_pc)
    params = {"kT_max": kt_max, "abundance": z, "nh": nh, "fe_ew": fe_ew,
              "cover_fraction": _where(covered, cover), "nh_pc": _where(covered, nh_pc),
              "model": np.where(covered, "cflow+pcfabs", "cflow")}
    return flux, params


def ns(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Isolated neutron stars: rotation-powered pulsars, magnetars and thermal cooling NSs."""
    kind = rng.choice(np.array(["pulsar", "magnetar", "isolated"]), size=n, p=_NS_MIX)
    nh = log_uniform(rng, 1e20, 1e22, n)
    pulsar, magnetar = kind == "pulsar", kind == "magnetar"
    gamma = np.where(pulsar, uniform(rng, 1.0, 2.0, n), uniform(rng, 2.0, 4.0, n))
    kt_bb = np.select([pulsar, magnetar], [uniform(rng, 0.08, 0.3, n), uniform(rng, 0.3, 0.6, n)],
                      uniform(rng, 0.05, 0.12, n))
    fraction = uniform(rng, 0.2, 1.0, n)
    thermal, nonthermal = blackbody(energy, kt_bb), power_law(energy, gamma)
    flux = np.where(pulsar[:, None], mixed(energy, nonthermal, thermal, fraction),
                    mixed(energy, thermal, nonthermal, np.where(magnetar, fraction, 0.0)))
    params = {"gamma": _where(kind != "isolated", gamma), "kT_bb": kt_bb, "nh": nh, "model": kind}
    return absorbed(energy, flux, nh), params


def ns_binary(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Neutron stars in binaries (millisecond pulsars, quiescent systems): hard PL + warm BB."""
    gamma = uniform(rng, 1.0, 1.6, n)
    kt_bb = uniform(rng, 0.1, 0.3, n)
    nh = log_uniform(rng, 1e20, 3e21, n)
    flux = mixed(energy, power_law(energy, gamma), blackbody(energy, kt_bb), uniform(rng, 0.1, 1.0, n))
    return absorbed(energy, flux, nh), {"gamma": gamma, "kT_bb": kt_bb, "nh": nh,
                                        "model": np.full(n, "powerlaw+bbody")}


def lmxb(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Low-mass X-ray binaries: soft state (disc + boundary-layer BB) or hard state (power law)."""
    soft = chance(rng, 0.5, n)
    kt_in = uniform(rng, 0.5, 1.5, n)
    kt_bb = uniform(rng, 1.5, 2.5, n)
    gamma = uniform(rng, 1.5, 2.1, n)
    nh = log_uniform(rng, 5e20, 2e22, n)
    disc = mixed(energy, disk_blackbody(energy, kt_in), blackbody(energy, kt_bb), uniform(rng, 0.1, 0.5, n))
    flux = np.where(soft[:, None], disc, band_normalised(energy, power_law(energy, gamma)))
    params = {"kT_in": _where(soft, kt_in), "kT_bb": _where(soft, kt_bb),
              "gamma": _where(~soft, gamma), "nh": nh, "model": np.where(soft, "soft", "hard")}
    return absorbed(energy, flux, nh), params


def hmxb(rng: np.random.Generator, n: int, energy: np.ndarray) -> tuple[np.ndarray, Params]:
    """High-mass X-ray binaries: accreting pulsar (cutoff PL) in a dense wind, Fe Kα 6.4 keV."""
    gamma = uniform(rng, 0.3, 1.3, n)
    e_cut = uniform(rng, 10.0, 20.0, n)
    fe_ew = uniform(rng, 0.05, 0.3, n)
    nh = log_uniform(rng, 5e21, 1e23, n)
    continuum = cutoff_power_law(energy, gamma, e_cut)
    line = narrow_lines(energy, np.full(n, 6.4), fe_ew * value_at(energy, continuum, np.full(n, 6.4)))
    params = {"gamma": gamma, "e_cut": e_cut, "fe_ew": fe_ew, "nh": nh, "model": np.full(n, "cutoffpl")}
    return absorbed(energy, continuum + line, nh), params


CLASS_MODELS: dict[str, ClassModel] = {
    "AGN": agn,
    "LM-STAR": lm_star,
    "HM-STAR": hm_star,
    "YSO": yso,
    "CV": cv,
    "NS": ns,
    "NS_BIN": ns_binary,
    "LMXB": lmxb,
    "HMXB": hmxb,
}
