"""Reading a finished (or running) run folder: its metadata, histories, final metrics and frames.

The diagnosis, the curves, the report and the comparison all read the same few files; this
module reads them once, checks them at the boundary (a bad cell names its file, row and
column) and hands the rest of the code plain numbers. No pandas: two small CSVs do not need it.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from latentlapse.core.errors import InputError
from latentlapse.core.results import FINAL_METRICS
from latentlapse.core.runs import HISTORY, METADATA, read_json, read_metadata
from latentlapse.core.timelapse.progress import METRICS_FILE as LATENT_METRICS
from latentlapse.core.timelapse.schedule import visualized_epochs

Row = dict[str, float]


@dataclass(frozen=True)
class ClassStyle:
    """Names, colours and markers of a run's classes (what ``render.draw_map`` needs)."""

    class_names: tuple[str, ...]
    colors: tuple[str, ...]
    markers: tuple[str, ...]


@dataclass
class RunFiles:
    """The parsed files of one run folder; absent files give empty values."""

    run_dir: Path
    metadata: dict = field(default_factory=dict)
    history: list[Row] = field(default_factory=list)
    metrics: list[Row] = field(default_factory=list)
    final: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata.get("class_names") or self.final.get("class_names") or [])

    @property
    def style(self) -> ClassStyle:
        """The colours and markers of the run's classes, as recorded."""
        return class_style(self.class_names, self.metadata)

    @property
    def config(self) -> dict:
        return dict(self.metadata.get("config") or {})

    @property
    def total_epochs(self) -> int:
        """The epochs the run was configured for (what 'half the run' refers to)."""
        configured = self.config.get("epochs")
        return int(configured) if configured else len(self.history)

    @property
    def frame_epochs(self) -> list[int]:
        return [int(row["epoch"]) for row in self.metrics]

    @property
    def missing_frames(self) -> list[int]:
        """Epochs up to the last one trained that the schedule gave a frame the run does not have
        (a second Ctrl-C skips the frames not yet drawn; a frame that failed is skipped too)."""
        viz = self.config.get("viz") or {}
        if not viz.get("enabled") or not self.history:
            return []
        last, drawn = int(self.history[-1]["epoch"]), set(self.frame_epochs)
        return [e for e in visualized_epochs(self.total_epochs, int(viz.get("every", 10))) if e <= last and e not in drawn]

    @property
    def from_library(self) -> bool:
        """Whether a ``Timelapse`` in the user's own loop wrote the run (``made_by``), not ``latentlapse train``."""
        return str(self.metadata.get("made_by", "")).endswith(" Timelapse")

    def unfinished(self, reason: bool = True) -> str | None:
        """How a run that did not complete stands, from its metadata and history ("interrupted
        after epoch 12 of 30"; ``reason`` adds a failed run's error), so that no reader sets it
        beside a finished run unmarked; None for a completed run."""
        status = self.metadata.get("status") or "not recorded"
        if status == "completed":
            return None
        reached = int(self.history[-1]["epoch"]) if self.history else int(self.metadata.get("epochs_run") or 0)
        where = f"after epoch {reached} of {self.total_epochs}" if reached else "before its first epoch"
        if status == "interrupted":
            return f"interrupted {where}"
        if status == "failed":
            error = self.metadata.get("error")
            return f"failed {where}" + (f" ({error})" if reason and error else "")
        if status == "running":
            return f"still running, or killed, {where}"
        return f"status {status}, {where}"


def read_table(path: str | os.PathLike) -> list[Row]:
    """Rows of a numeric CSV as dicts of floats (empty cells are NaN); [] when the file is absent.

    Raises InputError naming the file, row and column of a cell that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, raw in enumerate(csv.DictReader(handle), start=2):
            row = {}
            for column, text in raw.items():
                if column is None or text is None:
                    raise InputError(f"{path}, row {number}: the row has a different number of cells than the header; "
                                     f"the file is damaged (re-run or delete the row)")
                try:
                    row[column] = float(text) if text.strip() else math.nan
                except ValueError:
                    raise InputError(f"{path}, row {number}, column {column}: {text!r} is not a number; "
                                     f"the file is damaged (re-run or fix the cell)") from None
            rows.append(row)
    return rows


def load_run(run_dir: str | os.PathLike) -> RunFiles:
    """Parse a run folder; a missing folder or metadata is an InputError."""
    folder = Path(run_dir)
    check_run_dir(folder)
    return RunFiles(
        run_dir=folder,
        metadata=read_metadata(folder),
        history=read_table(folder / HISTORY),
        metrics=read_table(folder / LATENT_METRICS),
        final=read_json(folder / FINAL_METRICS),
    )


def check_run_dir(folder: Path) -> None:
    """One-line InputError unless ``folder`` is a latentlapse run folder."""
    if not folder.exists():
        raise InputError(f"{folder}: no such run folder; give a folder such as training_feature_visualizations/run_001")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give a run folder such as training_feature_visualizations/run_001")
    if not (folder / METADATA).is_file():
        raise InputError(f"{folder}: not a latentlapse run (no {METADATA}); give a folder made by `latentlapse train`")


def column(rows: Sequence[Row], name: str) -> np.ndarray:
    """One column as a float array (NaN where a row lacks it)."""
    return np.array([row.get(name, math.nan) for row in rows], dtype=np.float64)


def class_style(class_names: Sequence[str], metadata: dict | None = None) -> ClassStyle:
    """The colours and markers a run recorded for its classes (``class_colors``, ``class_markers``
    in its metadata), else the generic palette in turn (red stays for misclassified points)."""
    from latentlapse.core.timelapse.styles import default_style

    names = tuple(class_names)
    metadata = metadata or {}
    colors, markers = metadata.get("class_colors"), metadata.get("class_markers")
    if colors and markers and len(colors) == len(names) == len(markers):
        return ClassStyle(names, tuple(colors), tuple(markers))
    colors, markers = default_style(max(len(names), 1))
    return ClassStyle(names, colors[:len(names)], markers[:len(names)])


def flat_config(config: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as ``{"viz.every": 10, ...}`` (for tables and differences)."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
