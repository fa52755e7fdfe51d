"""What the frame worker reports, said in the log of the training process."""

from __future__ import annotations

import logging
import math
from pathlib import Path

log = logging.getLogger("latentlapse.core.timelapse")


def log_message(message: tuple) -> None:
    """One worker message as a log line (frames, skips, the animation, end-of-run outputs)."""
    kind = message[0]
    if kind == "frame":
        _, epoch, path, metrics, timing = message
        displacement = metrics.get("displacement", math.nan)
        moved = "" if math.isnan(displacement) else f", points moved {displacement:.3f} of the map's spread"
        log.info("frame: %s (silhouette %.3f, 5-NN acc %.3f%s; %.2fs, on disk %.1f s after its epoch ended)",
                 Path(path).name, metrics.get("silhouette", math.nan), metrics.get("knn_acc", math.nan), moved,
                 timing["total"], timing.get("lag", math.nan))
    elif kind == "skipped":
        log.warning(message[2])
    elif kind == "animation":
        log.info("animation: %s", message[1])
    elif kind in ("curves", "report", "dynamics"):
        what = {"curves": "learning curves", "report": "report", "dynamics": "training dynamics"}[kind]
        log.info("%s: %s", what, message[1])
    elif kind == "diagnosis":
        log.info("\n%s", message[1].rstrip())
    elif kind == "warning":
        log.warning(message[1])


def epochs_text(total: int, every: int) -> str:
    """The epochs that get a frame, shortened for the log when there are many."""
    from latentlapse.core.timelapse.schedule import visualized_epochs

    epochs = visualized_epochs(total, every)
    return ", ".join(map(str, epochs)) if len(epochs) <= 12 else ", ".join(map(str, epochs[:10])) + f", ... {epochs[-1]}"
