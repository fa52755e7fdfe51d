"""Helpers the benchmark scripts share: a matmul yardstick, FLOP counts, medians, small tables.

The machine is shared and noisy, so every script measures the things it compares side by side
in one process, alternating, and reports medians with their range.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch


def quiet_logs() -> None:
    """Keep the library's per-epoch log lines out of a benchmark's table."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("latentlapse").setLevel(logging.WARNING)


def matmul_gflops(n: int = 1024, repeats: int = 7) -> float:
    """Median GFLOP/s of an ``n x n`` float32 matmul: this machine's yardstick right now."""
    import torch  # here, so that scripts which never train do not load torch (1 s, 200 MB)

    a = torch.rand(n, n, generator=torch.Generator().manual_seed(0))
    b = torch.rand(n, n, generator=torch.Generator().manual_seed(1))
    a @ b  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        rates.append(2.0 * n**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def flops_per_sample(model: torch.nn.Module, x: torch.Tensor, *, backward: bool = False) -> float:
    """FLOPs per row of one forward pass (plus its backward when ``backward``), counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on the batch ``x`` (convolutions and matmuls;
    batch norm, pooling and activations are memory-bound and not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train(backward)
    with FlopCounterMode(display=False) as counter:
        if backward:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.get_total_flops() / x.shape[0]


def median_range(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """``median (min-max)`` of ``values``."""
    values = list(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width text table (right-aligned cells)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class CollectingWorker:
    """Stands in for the frame worker: keeps the spec and the snapshots it would be sent."""

    def __init__(self, spec=None):
        self.spec, self.snapshots, self.pid, self.pending, self.has_spec = spec, [], None, 0, spec is not None

    def send_spec(self, spec) -> None:
        self.spec, self.has_spec = spec, True

    def submit(self, snapshot) -> None:
        self.snapshots.append(snapshot)

    def poll(self) -> list:
        return []

    def check(self) -> None:
        pass

    def keep_up(self) -> None:
        pass

    def finish(self, status, on_message, should_abort) -> bool:
        return True

    def terminate(self) -> None:
        pass


def collecting_visualizer(run_dir, config, prepared, method: str):
    """The trainer's time-lapse adapter with a :class:`CollectingWorker` in place of the process
    (after ``on_train_start`` its ``worker`` holds the spec; the sample's inputs are written)."""
    from latentlapse.core.timelapse import worker
    from latentlapse.xray.training_visualizer import TrainingVisualizer

    worker.FrameWorker = CollectingWorker
    return TrainingVisualizer(run_dir, config, prepared, method)
