"""Run folders: ``<runs_dir>/run_NNN/``, allocated race-free and never reused, plus their metadata.

A folder is claimed with a plain ``mkdir`` that fails if the name exists, so several processes
starting at once each get their own number; existing folders (and files or junk named like a
run) are never touched. ``run_metadata.json`` records the status: ``running`` at the start, then
``completed``, ``interrupted`` or ``failed``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from latentlapse.core import atomic
from latentlapse.core.errors import InputError

RUN_PATTERN = re.compile(r"^run_(\d{3,})$")
METADATA = "run_metadata.json"
HISTORY = "history.csv"  # one row per epoch, written by the training loop
STATUSES = ("running", "completed", "interrupted", "failed")


def run_number(name: str) -> int | None:
    """The number of a run folder name (``run_007`` -> 7), or None for any other name."""
    match = RUN_PATTERN.match(name)
    return int(match.group(1)) if match else None


def allocate_run_dir(root: str | os.PathLike) -> Path:
    """Create and return the next free ``run_NNN`` under ``root`` (one past the highest used).

    Gaps are never refilled, so a number once used (even by a deleted run) does not come back
    while a higher one exists. Concurrent callers race on ``mkdir``; the loser moves on.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    used = [run_number(entry.name) for entry in root.iterdir()]
    first = max([n for n in used if n is not None], default=0) + 1
    return create_first_free(root, (f"run_{number:03d}" for number in itertools.count(first)))


def create_first_free(root: Path, names: Iterable[str]) -> Path:
    """Create the first of ``names`` that does not exist under ``root`` and return it.

    ``mkdir`` either creates the folder or fails, so callers racing for the same name never
    share a folder and an existing one is never reused. ``names`` must not run out (e.g. a
    numbered sequence).
    """
    Path(root).mkdir(parents=True, exist_ok=True)
    for name in names:
        candidate = Path(root) / name
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ValueError(f"{root}: every proposed folder name is taken")


def now_iso() -> str:
    """Local time, seconds precision, as the guide's metadata shows it."""
    return datetime.now().isoformat(timespec="seconds")


def read_metadata(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's metadata as a dict (empty when the file does not exist yet)."""
    return read_json(Path(run_dir) / METADATA)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of a run folder as a dict ({} when absent); InputError when damaged."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); the file is damaged") from None
    return value if isinstance(value, dict) else {}


def update_metadata(run_dir: str | os.PathLike, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run_metadata.json`` and rewrite it atomically; return the result."""
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"unknown run status {fields['status']!r}; known: {', '.join(STATUSES)}")
    metadata = read_metadata(run_dir)
    metadata.update(fields)
    atomic.write_json(Path(run_dir) / METADATA, metadata)
    return metadata


def record_resume(run_dir: str | os.PathLike, from_epoch: int, **fields: Any) -> dict[str, Any]:
    """Mark a resume in ``run_metadata.json``: ``resumes`` lists every one (from which epoch,
    when), ``resumed_from_epoch`` / ``resumed_at`` repeat the last; ``fields`` are merged too."""
    at = now_iso()
    earlier = read_metadata(run_dir).get("resumes") or []
    return update_metadata(run_dir, resumes=[*earlier, {"from_epoch": from_epoch, "at": at}],
                           resumed_from_epoch=from_epoch, resumed_at=at, **fields)
