"""The per-frame text logs of a run: the guide's ``training_progress.txt`` table and
``latent_metrics.csv``. Each append rewrites the (small) file atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from latentlapse.core import atomic

PROGRESS_FILE = "training_progress.txt"
METRICS_FILE = "latent_metrics.csv"
PROGRESS_HEADER = "Epoch | Train Acc | Val Acc | Train Loss | Val Loss"
PROGRESS_RULE = "-" * 60


def progress_row(epoch: int, scores: Mapping[str, float]) -> str:
    """One row of the guide's table, its columns aligned under the header."""
    return (
        f"{epoch:>5d} | {scores['train_acc']:>9.4f} | {scores['val_acc']:>7.4f} | "
        f"{scores['train_loss']:>10.4f} | {scores['val_loss']:>8.4f}"
    )


def append_progress(run_dir: str | Path, epoch: int, scores: Mapping[str, float]) -> None:
    """Add an epoch's row to ``training_progress.txt`` (creating the header on first use)."""
    path = Path(run_dir) / PROGRESS_FILE
    head = "" if path.exists() else f"{PROGRESS_HEADER}\n{PROGRESS_RULE}\n"
    atomic.append_text(path, head + progress_row(epoch, scores) + "\n")


def _csv_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def append_metrics(run_dir: str | Path, row: Mapping[str, float], columns: Sequence[str]) -> None:
    """Add a frame's row to ``latent_metrics.csv`` in the fixed column order (NaN left empty).

    An existing file keeps its own header (a run resumed by a newer version whose columns differ)."""
    path = Path(run_dir) / METRICS_FILE
    head = ""
    if path.exists():
        with path.open() as handle:
            columns = handle.readline().rstrip("\n").split(",") or columns
    else:
        head = ",".join(columns) + "\n"
    atomic.append_text(path, head + ",".join(_csv_value(row.get(c, float("nan"))) for c in columns) + "\n")


def drop_frames_after(run_dir: str | Path, epoch: int) -> list[int]:
    """Make a resumed run's time-lapse end at ``epoch``: the later frames, their layouts and their
    rows in ``training_progress.txt`` and ``latent_metrics.csv`` go (the resumed loop draws those
    epochs again). Returns the epochs whose frames were dropped."""
    from latentlapse.core.timelapse.animate import frame_files
    from latentlapse.core.timelapse.layouts import layout_files

    run_dir = Path(run_dir)
    later = [(n, path) for n, path in [*frame_files(run_dir), *layout_files(run_dir).items()] if n > epoch]
    for _, path in later:
        path.unlink(missing_ok=True)
    _keep_rows(run_dir / METRICS_FILE, 1, lambda line: int(line.split(",", 1)[0]) <= epoch)
    _keep_rows(run_dir / PROGRESS_FILE, 2, lambda line: int(line.split("|", 1)[0]) <= epoch)
    return sorted({n for n, _ in later})


def _keep_rows(path: Path, header_lines: int, keep) -> None:
    """Rewrite ``path`` (atomically, only if it changes) with its header and the rows ``keep`` accepts."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:header_lines] + [line for line in lines[header_lines:] if line.strip() and keep(line)]
    if len(kept) != len(lines):
        atomic.write_text(path, "".join(kept))
