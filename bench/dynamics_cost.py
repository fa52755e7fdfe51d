"""What recording every source's training dynamics costs the training loop, side by side.

The default 4-class run on the built-in data (2730 sources: 2184 training + 546 validation),
``--epochs`` epochs with the trainer's time-lapse adapter recording dynamics only (no frames). For each
epoch it measures, in the same process and the same epoch, the loop's own time (training and
evaluation, from ``history.csv``'s ``seconds``) and the time the recorder's ``on_epoch_end``
took inside the loop (keeping the epoch's arrays for the writer thread); the record and its
write (with its fsync) happen on the writer thread, the write reported separately. Bar: ≤ 1 %.

Run: ``python bench/dynamics_cost.py [--epochs 10] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs  # noqa: E402

from latentlapse.xray.config import TrainConfig  # noqa: E402
from latentlapse.xray.experiment import build_trainer  # noqa: E402
from latentlapse.xray.prepare import prepare  # noqa: E402
from latentlapse.xray.training import history_path  # noqa: E402
from latentlapse.core import atomic, runs  # noqa: E402
from latentlapse.core.timelapse import dynamics  # noqa: E402
from latentlapse.xray.training_visualizer import TrainingVisualizer  # noqa: E402


class TimedRecorder(TrainingVisualizer):
    """The recorder, with each epoch's time in the loop and each write's time kept."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_loop: list[float] = []
        self.writes: list[float] = []

    def on_epoch_end(self, trainer, result) -> None:
        before = self.seconds
        super().on_epoch_end(trainer, result)
        self.in_loop.append(self.seconds - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    quiet_logs()
    import torch

    torch.set_num_threads(args.threads)
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the start")
    config = TrainConfig(classes=4, epochs=args.epochs, device="cpu")
    prepared = prepare(config)
    write = dynamics.write_epoch
    with tempfile.TemporaryDirectory() as folder:
        recorder = TimedRecorder(Path(folder), config, prepared, None)

        def timed_write(*a, **k):
            started = time.perf_counter()
            path = write(*a, **k)
            recorder.writes.append(time.perf_counter() - started)
            return path

        dynamics.write_epoch = timed_write
        run = Path(folder)
        # what the session writes for the end-of-run curves (metrics.png): class names, history.csv
        runs.update_metadata(run, class_names=list(prepared.scheme.names), config={"epochs": args.epochs})
        trainer = build_trainer(prepared, "cpu", callbacks=[recorder],
                                write_history=lambda h: atomic.write_text(history_path(run), h.to_csv()))
        trainer.fit()
        recorder.on_train_end(trainer, "completed")
        files = list((run / dynamics.DYNAMICS_DIR).iterdir())
        per_epoch = [f.stat().st_size for f in files if f.name.startswith("epoch_")]
        one_off = {f.name: f.stat().st_size for f in files if not f.name.startswith("epoch_")}
    epochs = [row["seconds"] for row in trainer.history.rows]
    ratios = [r / e for r, e in zip(recorder.in_loop, epochs)]
    print(f"{len(prepared.split.train) + len(prepared.split.val)} sources, {args.epochs} epochs, torch threads {args.threads}")
    print(f"epoch (training + evaluation): median {statistics.median(epochs):.3f} s")
    print(f"recorder in the loop: median {statistics.median(recorder.in_loop) * 1e3:.3f} ms "
          f"(max {max(recorder.in_loop) * 1e3:.3f} ms) = {statistics.median(ratios):.4%} of an epoch "
          f"(max {max(ratios):.4%})")
    print(f"write on the writer thread (off the loop): median {statistics.median(recorder.writes) * 1e3:.1f} ms")
    each = statistics.mean(per_epoch)
    once = sum(one_off.values())
    print(f"stored in dynamics/: {len(per_epoch)} epoch files of {each / 1e3:.1f} kB each (min {min(per_epoch)}, "
          f"max {max(per_epoch)} bytes) + once per run "
          + ", ".join(f"{name} {size / 1e3:.1f} kB" for name, size in sorted(one_off.items())))
    print(f"  -> for the default 150 epochs: 150 x {each / 1e3:.1f} kB + {once / 1e3:.1f} kB = "
          f"{(150 * each + once) / 1e6:.2f} MB (bar <= 5 MB)")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the end")


if __name__ == "__main__":
    main()
