"""TensorBoard export: the history as scalars and each frame's features as a projector embedding.

Written into ``RUN/tensorboard/`` in TensorBoard's formats (its event protos and record framing
for the scalars, the projector's TSV files and ``projector_config.pbtxt`` for the embeddings), so
people who already live in TensorBoard find the run there. Like every file of the run, each is
written whole and atomically (:mod:`latentlapse.core.atomic`): the event file is rebuilt from the
history at each batch of epochs (each epoch's records are encoded once and kept), never appended
to, so a crash leaves the previous complete file and a resumed run simply rewrites it from its
truncated history. Needs the ``tensorboard`` extra, imported only when asked for (no torch).
"""

from __future__ import annotations

import io
import math
import shutil
import socket
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.errors import MissingExtraError, require_extra
from latentlapse.core.runs import HISTORY

BOARD_DIR = "tensorboard"
TAG = "validation_sample"
CONFIG_FILE = "projector_config.pbtxt"


def require_tensorboard() -> None:
    """Raise :class:`MissingExtraError` (an ImportError) unless the tensorboard package is installed."""
    require_extra("tensorboard", "tensorboard", "TensorBoard export")


class Board:
    """One run's TensorBoard event file and projector embeddings."""

    def __init__(self, run_dir: str | Path, class_names: Sequence[str], resume_after: int | None = None):
        require_tensorboard()
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.record_writer import RecordWriter
        except ImportError as exc:
            raise MissingExtraError("tensorboard", "tensorboard", f"TensorBoard export ({exc})") from None
        self._event, self._summary, self._framing = event_pb2.Event, summary_pb2.Summary, RecordWriter
        self.folder = Path(run_dir) / BOARD_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.class_names = tuple(class_names)
        existing = sorted(self.folder.glob("events.out.tfevents.*"))
        self.events_path = existing[0] if existing else self.folder / (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.latentlapse")
        self._header = self._record(self._event(wall_time=time.time(), file_version="brain.Event:2"))
        self._encoded: dict[int, bytes] = {}  # epoch -> its scalar records, encoded once
        self._steps: set[int] = {int(p.parent.parent.name) for p in self.folder.glob(f"*/{TAG}/tensors.tsv")
                                 if p.parent.parent.name.isdigit()}
        if resume_after is not None:
            self._resume(resume_after)

    def scalars(self, rows: list[tuple[int, float, Mapping[str, float]]]) -> None:
        """Add ``(epoch, wall_time, history row)`` rows (a row replaces its epoch's) and rewrite
        the event file: each finite number as a scalar ``loss/*``, ``recall/*`` or ``scores/*``."""
        for epoch, wall_time, scores in rows:
            values = [self._summary.Value(tag=_tag(name), simple_value=float(value)) for name, value in scores.items()
                      if name != "epoch" and isinstance(value, (int, float)) and math.isfinite(value)]
            event = self._event(wall_time=wall_time, step=int(epoch), summary=self._summary(value=values))
            self._encoded[int(epoch)] = self._record(event)
        atomic.write_bytes(self.events_path, self._header + b"".join(self._encoded[e] for e in sorted(self._encoded)))

    def embedding(self, epoch: int, features: np.ndarray, labels: np.ndarray, pred: np.ndarray,
                  ids: np.ndarray) -> None:
        """The frame sample's features at ``epoch`` with their id, class and prediction; the
        projector's config is rewritten to list every frame's embedding."""
        folder = self.folder / f"{epoch:05d}" / TAG
        folder.mkdir(parents=True, exist_ok=True)
        names = self.class_names
        rows = ["id\tclass\tprediction"] + [f"{_cell(i)}\t{names[int(y)]}\t{names[int(p)]}"
                                            for i, y, p in zip(ids, labels, pred)]
        atomic.write_text(folder / "metadata.tsv", "\n".join(rows) + "\n")
        values = np.asarray(features, dtype=np.float32)
        atomic.write_text(folder / "tensors.tsv", "".join("\t".join(f"{v:.7g}" for v in row) + "\n" for row in values))
        self._steps.add(int(epoch))
        self._write_config()

    def _write_config(self) -> None:
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

        config = ProjectorConfig()
        for step in sorted(self._steps):
            info = config.embeddings.add()
            info.tensor_name = f"{TAG}:{step:05d}"
            info.tensor_path = f"{step:05d}/{TAG}/tensors.tsv"
            info.metadata_path = f"{step:05d}/{TAG}/metadata.tsv"
        atomic.write_text(self.folder / CONFIG_FILE, text_format.MessageToString(config))

    def _resume(self, after_epoch: int) -> None:
        """Go on from the history up to ``after_epoch``: its rows as scalars, later embeddings removed."""
        from latentlapse.core.timelapse.runfiles import read_table

        history = self.folder.parent / HISTORY
        rows = [r for r in read_table(history) if int(r["epoch"]) <= after_epoch] if history.exists() else []
        for step in [s for s in self._steps if s > after_epoch]:
            shutil.rmtree(self.folder / f"{step:05d}", ignore_errors=True)
            self._steps.discard(step)
        self._write_config()
        self.scalars([(int(r["epoch"]), time.time(), r) for r in rows])

    def _record(self, event) -> bytes:
        """One event in TensorBoard's record framing (length, masked CRCs), by its own writer."""
        buffer = io.BytesIO()
        self._framing(buffer).write(event.SerializeToString())
        return buffer.getvalue()


def _tag(name: str) -> str:
    group = "loss" if name.endswith("loss") else "recall" if "recall" in name else "scores"
    return f"{group}/{name}"


def _cell(value) -> str:
    """An id as one TSV cell (tabs and line breaks would split it)."""
    return " ".join(str(value).split()) if any(c in str(value) for c in "\t\r\n") else str(value)
