"""The built-in data set: simulated XMM-Newton EPIC-pn spectra of nine classes of X-ray source.

Per source: a photon spectrum drawn from its class's physical model
(:mod:`latentlapse.xray.data.spectral_models`) × absorption × pn effective area, redistributed by
the pn resolution (:mod:`latentlapse.xray.data.instrument`), scaled to a net count number drawn
from N(>C) ∝ C⁻¹, observed with Poisson noise on top of a particle background, background
subtracted with its area scaling, and divided by its net counts — what real pipeline
products look like after the user's rebinning to 380 bins of 25 eV.

All randomness comes from one generator, ``rng.generator(seed, "simulate")``, so a seed gives
bit-identical spectra and no other stream or global state is touched.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlapse.core import atomic
from latentlapse.core import rng as rng_streams
from latentlapse.xray.config import check_seed
from latentlapse.xray.data import grid, instrument, spectral_models
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.taxonomy import FINE_LABELS, UNLABELLED
from latentlapse.core.errors import UsageError

log = logging.getLogger(__name__)

# The class sizes of the real labelled set the tool was built for (DOMAIN.md).
DEFAULT_COUNTS: dict[str, int] = {
    "AGN": 1340,
    "LM-STAR": 600,
    "HM-STAR": 345,
    "YSO": 246,
    "CV": 99,
    "NS": 40,
    "LMXB": 25,
    "HMXB": 20,
    "NS_BIN": 15,
}
NET_COUNTS_RANGE = (300.0, 3.0e4)  # N(>C) ∝ C⁻¹ between these
BACKGROUND_COUNTS_PER_KS = 250.0 / 20.0  # particle background in the source region, 0.5–10 keV
EXPOSURE_KS = (10.0, 40.0)  # log-uniform
AREA_RATIO = (0.1, 0.3)  # source / background extraction area (BACKSCAL ratio)
MIN_PER_CLASS = 2  # every class keeps this many sources when n allows it
OUT_SUFFIXES = (".txt", ".dat", ".csv")  # the text format, or CSV

# Parameters every simulated source reports (NaN where its model has no such parameter).
PARAM_NAMES = (
    "nh", "nh_intrinsic", "nh_pc", "cover_fraction", "gamma", "e_cut", "kT1", "kT2", "kT3",
    "kT_bb", "kT_in", "kT_max", "abundance", "redshift", "fe_ew", "net_counts",
    "expected_counts", "exposure_ks", "area_ratio",
)


def class_counts(n: int | None = None, counts: dict[str, int] | None = None) -> dict[str, int]:
    """Sources per fine label: ``counts`` as given, else DEFAULT_COUNTS scaled to sum to ``n``.

    Scaling uses largest-remainder rounding (ties go to the larger class), then moves sources
    from the largest classes so that each keeps at least two when ``n`` ≥ 18.
    """
    if counts is not None:
        _check_counts(counts, n)
        return {label: int(c) for label, c in counts.items()}
    if n is None:
        return dict(DEFAULT_COUNTS)
    if n < 1:
        raise UsageError(f"the number of labelled sources must be at least 1, got {n}")
    labels = list(DEFAULT_COUNTS)
    quota = np.array([DEFAULT_COUNTS[label] for label in labels], dtype=np.float64)
    quota *= n / quota.sum()
    alloc = np.floor(quota).astype(int)
    order = np.argsort(-(quota - alloc), kind="stable")
    alloc[order[: n - alloc.sum()]] += 1
    proportional = alloc.copy()
    if n >= MIN_PER_CLASS * len(labels):
        while alloc.min() < MIN_PER_CLASS:
            alloc[np.argmax(alloc)] -= 1
            alloc[np.argmin(alloc)] += 1
    if np.any(alloc != proportional):
        moved = ", ".join(f"{labels[i]} {proportional[i]} -> {alloc[i]}" for i in np.flatnonzero(alloc != proportional))
        log.info("n=%d: every class keeps at least %d sources, so the proportions differ from the real set's (%s)",
                 n, MIN_PER_CLASS, moved)
    return dict(zip(labels, alloc.tolist()))


def _check_counts(counts: dict[str, int], n: int | None) -> None:
    """Reject unknown labels, negative sizes and an ``n`` that contradicts ``counts``."""
    unknown = sorted(set(counts) - set(FINE_LABELS))
    if unknown:
        raise UsageError(f"unknown class(es) {', '.join(unknown)} in counts; known: {', '.join(FINE_LABELS)}")
    negative = {label: c for label, c in counts.items() if c < 0}
    if negative:
        raise UsageError(f"class sizes must be ≥ 0, got {negative}")
    if sum(counts.values()) < 1:
        raise UsageError("counts must ask for at least one source")
    if n is not None and n != sum(counts.values()):
        raise UsageError(f"n={n} contradicts counts, which sum to {sum(counts.values())}; give one of them")


def simulate_dataset(
    n: int | None = None,
    unlabelled: int = 0,
    seed: int = 42,
    counts: dict[str, int] | None = None,
) -> Dataset:
    """Simulate labelled (and optionally unlabelled) EPIC-pn spectra.

    Parameters
    ----------
    n : labelled sources in the real set's class proportions; None gives DEFAULT_COUNTS (2730).
    unlabelled : extra sources drawn from the same class mixture, labelled ``""`` and placed
        after the labelled rows; their true class is in ``params["true_label"]``.
    seed : the run's seed; the simulator uses its own ``"simulate"`` stream of it.
    counts : exact sources per fine label, overriding the default proportions.

    Returns
    -------
    Dataset of ``kind="spectra"``: float32 rows summing to 1 on the 380-bin grid, net counts,
    ids ``SIM000001``…, and each source's true physical parameters in ``params``.
    """
    check_seed(seed)
    if unlabelled < 0:
        raise UsageError(f"the number of unlabelled sources must be ≥ 0, got {unlabelled}")
    labelled = class_counts(n, counts)
    rng = rng_streams.generator(seed, "simulate")
    sizes = np.array(list(labelled.values()))
    extra = rng.multinomial(unlabelled, sizes / sizes.sum())

    spectra, params, true_label, is_labelled = [], [], [], []
    for label, size, more in zip(labelled, sizes, extra):
        if size + more:
            block_spectra, block_params = _simulate_class(rng, label, size + more)
            spectra.append(block_spectra)
            params.append(block_params)
            true_label.append(np.full(size + more, label))
            is_labelled.append(np.arange(size + more) < size)
    net = np.concatenate(spectra)
    true_label, is_labelled = np.concatenate(true_label), np.concatenate(is_labelled)
    # Labelled rows first, then unlabelled ones, each block shuffled so classes interleave.
    order = np.concatenate([rng.permutation(np.flatnonzero(is_labelled)),
                            rng.permutation(np.flatnonzero(~is_labelled))])
    net_counts = net.sum(axis=1)
    merged = _merge_params(params)
    merged.update(net_counts=net_counts, true_label=true_label)
    description = f"simulated EPIC-pn (seed {seed}, n={sizes.sum()}"
    description += f", unlabelled={unlabelled})" if unlabelled else ")"
    return Dataset(
        X=(net / net_counts[:, None]).astype(np.float32)[order],
        labels=np.where(is_labelled, true_label, UNLABELLED)[order],
        ids=np.array([f"SIM{i + 1:06d}" for i in range(len(order))]),
        counts=net_counts[order],
        kind="spectra",
        energy=grid.centres(),
        feature_names=tuple(f"E{e:.4f}" for e in grid.centres()),
        params={key: value[order] for key, value in merged.items()},
        source=description,
    )


def _simulate_class(rng: np.random.Generator, label: str, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Observed net spectra (counts, not yet normalised) and true parameters of one class."""
    energy = instrument.model_energies()
    flux, params = spectral_models.CLASS_MODELS[label](rng, size, energy)
    shape = instrument.fold(flux)
    shape /= shape.sum(axis=1, keepdims=True)
    expected = draw_net_counts(rng, size)
    net, exposure, ratio = observe(rng, expected[:, None] * shape)
    params.update(expected_counts=expected, exposure_ks=exposure, area_ratio=ratio)
    return net, params


def draw_net_counts(rng: np.random.Generator, size: int) -> np.ndarray:
    """Expected net counts from N(>C) ∝ C⁻¹ in NET_COUNTS_RANGE, by inverting the CDF."""
    low, high = NET_COUNTS_RANGE
    u = rng.random(size)
    return 1.0 / (1.0 / low - u * (1.0 / low - 1.0 / high))


def observe(rng: np.random.Generator, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted spectra of sources with ``expected`` counts per bin, ``(n, 380)``.

    Source region: Poisson(source + background); background region, 1/ratio times larger:
    Poisson(background / ratio); net = source region − ratio × background region, so bins can
    go slightly negative where the source is faint, as in real net spectra.

    Returns
    -------
    net spectra, exposures (ks), area ratios — one row / value per source.
    """
    size = len(expected)
    exposure = spectral_models.log_uniform(rng, *EXPOSURE_KS, size)
    ratio = spectral_models.uniform(rng, *AREA_RATIO, size)
    background = (BACKGROUND_COUNTS_PER_KS * exposure)[:, None] * instrument.background_shape()
    on = rng.poisson(expected + background)
    off = rng.poisson(background / ratio[:, None])
    return on - ratio[:, None] * off, exposure, ratio


def _merge_params(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One array per parameter across classes, NaN where a class's model lacks it."""
    merged = {
        name: np.concatenate([np.asarray(block.get(name, np.full(len(block["model"]), np.nan)), dtype=np.float64)
                              for block in blocks])
        for name in PARAM_NAMES if name != "net_counts"
    }
    merged["model"] = np.concatenate([np.asarray(block["model"], dtype=str) for block in blocks])
    return merged


def run_command(out: str | Path, n: int | None, unlabelled: int, seed: int, plot: str | Path | None,
                label_noise: float | None = None) -> int:
    """``latentlapse simulate``: write simulated spectra in the text format (CSV for ``.csv``).

    Parameters
    ----------
    out : output file.
    n, unlabelled, seed : as for :func:`simulate_dataset`.
    plot : optional PNG of the class-mean spectra.
    label_noise : fraction of the labels to flip to another class of the 4-class scheme
        (:mod:`latentlapse.xray.data.label_noise`); the flips go to ``<out stem>.label_noise.csv``.

    Returns
    -------
    The exit code, 0.
    """
    # Imported here: the writer and matplotlib are only needed by this command.
    from latentlapse.xray.data import label_noise as noise
    from latentlapse.xray.data.writers import write_dataset

    check_outputs(out, plot)
    if label_noise is not None:
        noise.check_fraction(label_noise)
    dataset = simulate_dataset(n=n, unlabelled=unlabelled, seed=seed)
    if label_noise is not None:
        dataset = _with_label_noise(dataset, out, label_noise, seed)
    write_dataset(out, dataset)
    sizes = ", ".join(f"{label} {count}" for label, count in dataset.label_counts().items() if label)
    log.info("wrote %d simulated spectra to %s (%s; %d unlabelled)", len(dataset), out, sizes,
             int((~dataset.is_labelled).sum()))
    if plot is not None:
        from latentlapse.xray.data.plot import plot_class_means

        plot_class_means(dataset, plot)
        log.info("drew the class-mean spectra in %s", plot)
    return 0


def check_outputs(out: str | Path, plot: str | Path | None) -> None:
    """UsageError (exit 2) before anything is simulated unless ``out`` names a format simulate
    writes and every output's folder exists."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUT_SUFFIXES:
        problem = f"simulate does not write '{suffix}' files" if suffix else "the file name has no suffix"
        raise UsageError(f"--out {out}: {problem}; end the name in .txt or .dat (the text format) or .csv")
    atomic.check_destination(out)
    if plot is not None:
        atomic.check_destination(plot, "--plot")


def _with_label_noise(dataset: Dataset, out: str | Path, fraction: float, seed: int) -> Dataset:
    """The data set with ``fraction`` of its labels flipped; the flips written to the sidecar CSV."""
    from dataclasses import replace

    from latentlapse.xray.data import label_noise as noise

    generator = rng_streams.generator(seed, "label_noise")
    noisy, flipped = noise.flip_fine_labels(dataset.labels, fraction, 4, generator)
    path = noise.sidecar_path(out)
    atomic.write_text(path, noise.sidecar_csv(dataset.ids, dataset.labels, noisy, flipped))
    log.info("flipped %d of %d labels to another class of the 4-class scheme; listed in %s",
             len(flipped), int(dataset.is_labelled.sum()), path)
    return replace(dataset, labels=noisy)
