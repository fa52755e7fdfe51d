"""``latentlapse compare RUN_A RUN_B``: the same epoch of two runs side by side, in one orientation.

t-SNE and UMAP maps have no meaningful orientation: two runs of the same data can come out
rotated or mirrored against each other. When the runs share sources (same data and seed give
the same samples), run B's map is rotated/reflected onto run A's by orthogonal Procrustes on
the shared sources, so that a class sits in the same place in both pictures. The comparison
adds the two runs' validation curves, a table of final metrics with differences, the config
values that differ, and each run's diagnosis; a run that did not complete is marked with how it
ended (interrupted or failed, after which epoch) wherever it is named. Files go next to the
runs, never into them: ``compare_<A>_vs_<B>.png`` and ``compare_<A>_vs_<B>.html``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import compare_view, dynamics
from latentlapse.core.timelapse.layouts import FrameLayout, layout_files, load_layout
from latentlapse.core.timelapse.projection import procrustes_rotation
from latentlapse.core.timelapse.runfiles import RunFiles, check_run_dir, flat_config, load_run

log = logging.getLogger(__name__)

# Procrustes in 2-D fits one angle (and a reflection); with fewer than 10 shared points a few
# outliers decide it, so below that the maps are drawn as they are, with a note.
MIN_SHARED = 10
# Config keys that differ between any two runs without changing what is learned.
_IGNORED_KEYS = ("runs_dir", "out_dir", "save_preds")


@dataclass(frozen=True, eq=False)
class Alignment:
    """Run B's map moved onto run A's: the new coordinates and how well they agree.

    ``residual`` is the RMS distance between the shared sources' positions in the two maps
    after alignment, divided by the RMS radius of run A's shared positions: 0 for maps that
    differ only by a rotation or reflection, about 1.4 for unrelated maps.
    """

    train_xy: np.ndarray
    val_xy: np.ndarray
    shared: int
    aligned: bool
    rotation: np.ndarray
    residual: float


def align(reference: FrameLayout, moving: FrameLayout, min_shared: int = MIN_SHARED) -> Alignment:
    """Rotate/reflect ``moving``'s map onto ``reference``'s using the sources both hold.

    Sources are matched by id whatever their split; ids that occur twice in one layout are
    left out of the fit. Below ``min_shared`` shared sources the map is returned unchanged.
    """
    ref_xy, ref_ids = _all_points(reference)
    mov_xy, mov_ids = _all_points(moving)
    ref_index, mov_index = _unique_index(ref_ids), _unique_index(mov_ids)
    shared = [i for i in ref_index if i in mov_index]
    identity = np.eye(2)
    if len(shared) < min_shared:
        return Alignment(moving.train_xy, moving.val_xy, len(shared), False, identity, float("nan"))
    p = ref_xy[[ref_index[i] for i in shared]]
    q = mov_xy[[mov_index[i] for i in shared]]
    p_centre, q_centre = p.mean(axis=0), q.mean(axis=0)
    rotation = procrustes_rotation(q - q_centre, p - p_centre)

    def moved(xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) - q_centre) @ rotation + p_centre

    fitted = moved(q)
    scale = np.sqrt(np.mean(np.sum((p - p_centre) ** 2, axis=1)))
    residual = float(np.sqrt(np.mean(np.sum((fitted - p) ** 2, axis=1))) / scale) if scale > 0 else float("nan")
    return Alignment(moved(moving.train_xy), moved(moving.val_xy), len(shared), True, rotation, residual)


def unaligned(layout: FrameLayout) -> Alignment:
    """A map left as it is (runs on different data share no sources to align by)."""
    return Alignment(layout.train_xy, layout.val_xy, 0, False, np.eye(2), float("nan"))


def _all_points(layout: FrameLayout) -> tuple[np.ndarray, np.ndarray]:
    xy = np.vstack([layout.train_xy, layout.val_xy]).astype(np.float64)
    ids = np.concatenate([layout.train_ids, layout.val_ids]).astype(str)
    return xy, ids


def _unique_index(ids: np.ndarray) -> dict[str, int]:
    """Position of each id that occurs exactly once."""
    values, counts = np.unique(ids, return_counts=True)
    once = set(values[counts == 1].tolist())
    return {str(i): k for k, i in enumerate(ids) if i in once}


def compare_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, epoch: int | None = None,
                 force: bool = False) -> list[Path]:
    """Write ``compare_<A>_vs_<B>.png`` and ``.html`` next to the runs; return both paths.

    Parameters
    ----------
    run_a, run_b : two run folders made with ``--visualize_training``.
    epoch : the epoch to show (default: the last epoch both runs drew).
    force : compare runs trained on different data (their data checksums differ): the curves
        and scores are set side by side, labelled as different data, and the maps are left
        unaligned — the same id in two data files need not be the same source.

    Raises
    ------
    InputError
        A folder is missing or not a run, has no frames, both are the same run, the runs were
        trained on different data (without ``force``), or ``epoch`` was not drawn by a run
        (the message lists the epochs it drew).
    """
    folders = [Path(run_a), Path(run_b)]
    for folder in folders:
        check_run_dir(folder)
    if folders[0].resolve() == folders[1].resolve():
        raise InputError(f"{folders[0]} and {folders[1]} are the same run; give two different run folders")
    runs = [load_run(folder) for folder in folders]
    same_data = data_checksums(runs)[0] == data_checksums(runs)[1]
    if not same_data and not force:
        raise InputError(different_data_line(runs))
    files = [layout_files(folder) for folder in folders]
    for folder, found in zip(folders, files):
        if not found:
            raise InputError(f"{folder}: no frames to compare (no layouts/epoch_*.npz); compare needs runs trained "
                             f"with --visualize_training (older runs kept only the pictures; re-run to compare them)")
    chosen = choose_epoch(folders, files, epoch)
    layout_a, layout_b = (load_layout(found[chosen]) for found in files)
    alignment = align(layout_a, layout_b) if same_data else unaligned(layout_b)
    out_dir = output_folder(folders[0], folders[1])
    stem = f"compare_{_label(folders[0], folders[1])}_vs_{_label(folders[1], folders[0])}"
    differences = config_differences(runs[0], runs[1])
    note = alignment_note(runs, alignment) if same_data else different_data_note(runs)
    splits = different_splits_note(runs) if same_data else None
    if splits:
        note = f"{note}; {splits}"
    png = out_dir / f"{stem}.png"
    png_bytes = compare_view.figure_png(runs, (layout_a, layout_b), alignment, chosen, differences, note,
                                        different_data=not same_data)
    atomic.write_bytes(png, png_bytes)
    page = out_dir / f"{stem}.html"
    atomic.write_text(page, compare_view.page_html(runs, chosen, differences, note, png_bytes,
                                                   same_validation=same_data and not splits))
    log.info("compared %s and %s at epoch %d: %s", runs[0].name, runs[1].name, chosen, note)
    for run in runs:
        if run.unfinished():
            log.warning("%s did not complete: %s; the comparison shows what it recorded", run.name, run.unfinished())
    return [png, page]


def choose_epoch(folders: list[Path], files: list[dict[int, Path]], epoch: int | None) -> int:
    """The requested epoch if both runs drew it, else the last epoch both drew (InputError if none)."""
    if epoch is not None:
        for folder, found in zip(folders, files):
            if epoch not in found:
                raise InputError(f"{folder}: no frame at epoch {epoch}; its frames are at epochs "
                                 f"{', '.join(map(str, found))}; pass one of them to --epoch")
        return epoch
    common = sorted(set(files[0]) & set(files[1]))
    if not common:
        raise InputError(f"{folders[0]} and {folders[1]} drew no epoch in common (epochs {', '.join(map(str, files[0]))} "
                         f"and {', '.join(map(str, files[1]))}); re-run one with matching --epochs/--viz_every")
    return common[-1]


def output_folder(a: Path, b: Path) -> Path:
    """The runs' common parent, or A's parent when the parents differ — never inside either run."""
    out = a.resolve().parent
    for run in (a.resolve(), b.resolve()):
        if out == run or run in out.parents:
            raise InputError(f"{a} and {b}: one run lies inside the other, so there is no folder outside both for "
                             f"the comparison; move one of them")
    return out


def _label(folder: Path, other: Path) -> str:
    """The run's folder name, prefixed with its parent's when both runs have the same name."""
    if folder.name == other.name:
        return f"{folder.resolve().parent.name}_{folder.name}"
    return folder.name


def config_differences(a: RunFiles, b: RunFiles) -> list[tuple[str, object, object]]:
    """(key, value in A, value in B) for every config value that differs, plus the data checksum."""
    flat_a, flat_b = flat_config(a.config), flat_config(b.config)
    keys = list(flat_a) + [k for k in flat_b if k not in flat_a]
    out = [(k, flat_a.get(k), flat_b.get(k)) for k in keys
           if flat_a.get(k) != flat_b.get(k) and k not in _IGNORED_KEYS]
    sha_a, sha_b = ((r.metadata.get("data") or {}).get("sha256") for r in (a, b))
    if sha_a != sha_b:
        out.append(("data sha256", (sha_a or "")[:12], (sha_b or "")[:12]))
    return out


def data_checksums(runs: list[RunFiles]) -> tuple[str, str]:
    """The SHA-256 of each run's data, as recorded in its run_metadata.json ("" when absent)."""
    a, b = ((r.metadata.get("data") or {}).get("sha256") or "" for r in runs)
    return a, b


def different_data_line(runs: list[RunFiles]) -> str:
    """The one-line refusal to align the maps of runs trained on different data."""
    a, b = runs
    sha_a, sha_b = data_checksums(runs)
    return (f"{a.run_dir} and {b.run_dir} were trained on different data (data sha256 {sha_a[:12] or 'unknown'} vs "
            f"{sha_b[:12] or 'unknown'}), so their maps cannot be aligned by source id; compare runs on the same "
            f"data, or add --force to set their curves and scores side by side without aligning the maps")


def different_data_note(runs: list[RunFiles]) -> str:
    """What a forced comparison of runs on different data shows, and what it does not."""
    sha_a, sha_b = data_checksums(runs)
    return (f"different data (sha256 {sha_a[:12] or 'unknown'} vs {sha_b[:12] or 'unknown'}): the maps are not aligned "
            f"— the same id in two data files need not be the same source — and each keeps its own orientation; "
            f"curves and scores are of different validation sources")


def validation_ids(run: RunFiles) -> frozenset[str] | None:
    """The ids of a run's validation split, from ``dynamics/sources.csv`` (None where the run
    recorded none)."""
    try:
        rows = dynamics.read_sources(run.run_dir)
    except FileNotFoundError:
        return None
    return frozenset(row["id"] for row in rows if row["split"] == "val")


def different_splits_note(runs: list[RunFiles]) -> str | None:
    """A sentence when runs on the same data scored different validation sources (another
    ``--seed`` or class scheme draws another split); None when the splits agree or are unknown."""
    ids = [validation_ids(run) for run in runs]
    if None in ids or ids[0] == ids[1]:
        return None
    a, b = runs
    return (f"different validation splits ({len(ids[0] & ids[1])} sources in both, of {len(ids[0])} and "
            f"{len(ids[1])}: another seed or class scheme draws another split): curves and scores are of different "
            f"validation sources")


def alignment_note(runs: list[RunFiles], alignment: Alignment) -> str:
    """One sentence on how the two maps were put in the same orientation."""
    a, b = runs[0].name, runs[1].name
    if not alignment.aligned:
        return (f"only {alignment.shared} sources are in both runs' samples (need {MIN_SHARED}), so {b}'s map is drawn "
                f"unaligned: its orientation may differ from {a}'s")
    return (f"{b}'s map was rotated/reflected onto {a}'s using the {alignment.shared} sources both runs show; "
            f"after alignment they sit {alignment.residual:.2f} of the map's radius apart on average "
            f"(0 = the same map, about 1.4 = unrelated maps)")
