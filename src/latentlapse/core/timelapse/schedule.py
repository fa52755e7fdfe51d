"""Which epochs get a frame: the first, the guide's milestones, every N-th, and the last."""

from __future__ import annotations

import os
import re
from pathlib import Path

MILESTONES = (5, 10, 25, 50, 75, 100)


def should_visualize(epoch: int, total_epochs: int, visualize_every: int = 10) -> bool:
    """True when ``epoch`` (1-based) of a ``total_epochs`` run gets a frame.

    Epoch 1 shows the untrained-looking start, the milestones 5, 10, 25, 50, 75 and 100 give
    early detail where learning is fastest, every ``visualize_every``-th epoch keeps the pace,
    and the last epoch shows the result.
    """
    if epoch < 1 or epoch > total_epochs:
        return False
    return (
        epoch == 1
        or epoch == total_epochs
        or epoch in MILESTONES
        or epoch % visualize_every == 0
    )


def visualized_epochs(total_epochs: int, visualize_every: int = 10) -> list[int]:
    """All epochs of a run that get a frame, in order."""
    return [e for e in range(1, total_epochs + 1) if should_visualize(e, total_epochs, visualize_every)]


def epoch_width(total_epochs: int) -> int:
    """Digits for zero-padding epoch numbers: 3, or more when the run is longer than 999."""
    return max(3, len(str(total_epochs)))


def frame_name(epoch: int, total_epochs: int, val_acc: float) -> str:
    """The guide's file name ``epoch_XXX_accY.YYYY.png``, padded so that ``epoch_*.png`` sorts."""
    return f"epoch_{epoch:0{epoch_width(total_epochs)}d}_acc{val_acc:.4f}.png"


def epoch_files(folder: str | os.PathLike, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the files in ``folder`` whose names match ``pattern`` (group 1 is the
    epoch), in epoch order whatever the zero-padding (``epoch_1000`` after ``epoch_999``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path.name, path))
    return [(epoch, path) for epoch, _, path in sorted(found)]
