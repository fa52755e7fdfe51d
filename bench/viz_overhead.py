"""What the latent-space time-lapse costs a training run: the guide's command with and without
``--visualize_training``, alternated, for t-SNE and UMAP.

Every run is the real command line in its own process group — ``python main.py --classes 4
--epochs 150 --oversample_target 1.0 [--visualize_training --viz_every 10 --viz_method M]`` into
a temporary ``--runs_dir``. This 2-core machine is shared and its speed drifts by 10-15 % from
one minute to the next (the median epoch of two plain runs a few minutes apart: 0.40 s and
0.47 s), more than the effect measured. So by default the runs of a round — without, t-SNE,
UMAP — are alternated in time slices: all three start, and one at a time runs for ``--slice``
seconds while the other two are stopped (SIGSTOP to the process group: training process and
frame worker together), round-robin, until all have exited. A run's wall clock is the sum of
its slices: what it would take alone on the machine, with the drift shared equally by all
three. ``--sequential`` alternates whole runs instead (``off, tsne, off, umap, off``; each
visualised run against the mean of its neighbours).

Printed, per run: the wall clock; the training loop's own seconds and the part spent in
callbacks (``loop_seconds`` and ``viz_seconds_in_loop`` of ``run_metadata.json``, measured in
the process with ``time.perf_counter``; in sliced mode the time the run was stopped inside the
loop is taken out); and the seconds after the last epoch (from ``history.csv``'s last write to
the exit: best-checkpoint scoring, results, and for a visualised run the last frame, GIF, curves
and report; sequential mode only). Then per method: (a) callbacks' share of the loop (target
<= 1 %) and (b) wall clock with / without (target <= 1.03), per round and the median.

``--threads`` adds a short comparison of torch's thread count with the worker running (1 thread
against the default 2 on this 2-core machine; 40 epochs, sliced), the basis for leaving torch's
default alone.

Run: ``python bench/viz_overhead.py [--epochs 150] [--viz_every 10] [--rounds 2] [--threads]``
(a sliced round at 150 epochs: 3 runs, about 3.5 minutes; ``--threads`` adds about 1.5 minutes).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

MAIN = Path(__file__).resolve().parents[1] / "main.py"
TARGET_SHARE = 0.01
TARGET_RATIO = 1.03


@dataclass
class Run:
    """One run of the guide's command: how to start it and, once it has exited, what it took."""

    label: str
    command: list[str]
    runs_dir: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log: object = None
    slices: list[tuple[float, float]] = field(default_factory=list)  # (start, end), time.time()
    ended: float = 0.0

    def start(self) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # a pipe could fill while the run is stopped
        self.process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log,
                                        start_new_session=True)

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def result(self) -> dict:
        if self.process.returncode != 0:
            self.log.seek(0)
            raise SystemExit(f"{' '.join(self.command)} failed ({self.process.returncode}):\n{self.log.read()[-2000:]}")
        run_dir = self.runs_dir / "run_001"
        meta = json.loads((run_dir / "run_metadata.json").read_text())
        history = run_dir / "history.csv"
        with history.open() as handle:
            seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
        loop_end = history.stat().st_mtime
        # time stopped inside [loop_end - loop_seconds, loop_end]: the other runs' slices
        loop_start = loop_end - meta["loop_seconds"]
        running = sum(max(0.0, min(b, loop_end) - max(a, loop_start)) for a, b in self.slices)
        gaps = meta["loop_seconds"] - running if len(self.slices) > 1 else 0.0
        return {
            "wall": sum(b - a for a, b in self.slices),
            "loop": meta["loop_seconds"] - gaps,
            "in_callbacks": meta["viz_seconds_in_loop"],
            "median_epoch": statistics.median(seconds) if len(self.slices) == 1 else float("nan"),  # stops inflate it
            "after_last_epoch": self.ended - loop_end if len(self.slices) == 1 else float("nan"),
            "frames": len(list(run_dir.glob("epoch_*.png"))),
        }


def make_run(label: str, runs_dir: Path, epochs: int, every: int, method: str | None, threads: int | None) -> Run:
    command = [sys.executable, str(MAIN), "--classes", "4", "--epochs", str(epochs), "--oversample_target", "1.0",
               "--runs_dir", str(runs_dir)]
    if method is not None:
        command += ["--visualize_training", "--viz_every", str(every), "--viz_method", method]
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return Run(label, command, runs_dir, env)


def run_sliced(runs: list[Run], slice_s: float) -> None:
    """Round-robin: each run in turn goes on for ``slice_s`` seconds while the others are stopped."""
    waiting = list(runs)
    try:
        while waiting:
            for run in list(waiting):
                start = time.time()
                if run.process is None:
                    run.start()
                else:
                    run.signal(signal.SIGCONT)
                while time.time() - start < slice_s and run.process.poll() is None:
                    time.sleep(0.005)
                if run.process.poll() is None:
                    run.signal(signal.SIGSTOP)
                    run.slices.append((start, time.time()))
                else:
                    run.ended = time.time()
                    run.slices.append((start, run.ended))
                    waiting.remove(run)
    finally:
        for run in waiting:
            if run.process is not None:
                run.signal(signal.SIGKILL)
                run.signal(signal.SIGCONT)


def run_alone(run: Run) -> None:
    start = time.time()
    run.start()
    run.process.wait()
    run.ended = time.time()
    run.slices.append((start, run.ended))


def show(label: str, r: dict) -> list[str]:
    def number(value: float, digits: int) -> str:
        return "-" if value != value else f"{value:.{digits}f}"

    return [label, f"{r['wall']:.2f}", f"{r['loop']:.2f}", f"{r['in_callbacks']:.3f}", number(r["median_epoch"], 3),
            number(r["after_last_epoch"], 2), str(r["frames"])]


HEADER = ["run", "wall s", "loop s", "in callbacks s", "median epoch s", "after last epoch s", "frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150, help="epochs per run (default 150, the guide's)")
    parser.add_argument("--viz_every", type=int, default=10, help="frame every N epochs (default 10, the guide's)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (off, tsne, umap) (default 2)")
    parser.add_argument("--slice", type=float, default=1.0, help="seconds per time slice (default 1)")
    parser.add_argument("--sequential", action="store_true", help="alternate whole runs instead of time slices")
    parser.add_argument("--methods", nargs="+", default=["tsne", "umap"], choices=["tsne", "umap", "pca"])
    parser.add_argument("--threads", action="store_true",
                        help="also compare torch with 1 thread and with the default 2, the worker running (40 epochs)")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; {args.epochs} epochs, a frame every {args.viz_every} (plus epoch 1, the "
          f"milestones and the last); {'whole runs alternated' if args.sequential else f'{args.slice:g} s slices'}",
          flush=True)
    rows, results = [], {m: [] for m in args.methods}  # method -> [(without, with)] per comparison
    with tempfile.TemporaryDirectory(prefix="viz_overhead-") as tmp:
        def new(label: str, method: str | None, epochs: int = args.epochs, threads: int | None = None) -> Run:
            folder = Path(tmp) / f"{len(os.listdir(tmp)):02d}-{label}"
            folder.mkdir()
            return make_run(label, folder, epochs, args.viz_every, method, threads)

        for round_ in range(1, args.rounds + 1):
            if args.sequential:
                before = new("off", None)
                run_alone(before)
                rows.append(show(f"{round_}: off", before_r := before.result()))
                print("  " + "  ".join(rows[-1]), flush=True)
                for method in args.methods:
                    with_viz, after = new(method, method), new("off", None)
                    run_alone(with_viz)
                    run_alone(after)
                    with_r, after_r = with_viz.result(), after.result()
                    rows += [show(f"{round_}: {method}", with_r), show(f"{round_}: off", after_r)]
                    print("  " + "  ".join(rows[-2]) + "\n  " + "  ".join(rows[-1]), flush=True)
                    mean = {k: (before_r[k] + after_r[k]) / 2 for k in before_r}
                    results[method].append((mean, with_r))
                    before_r = after_r
            else:
                runs = [new("off", None)] + [new(m, m) for m in args.methods]
                run_sliced(runs, args.slice)
                done = {run.label: run.result() for run in runs}
                for run in runs:
                    rows.append(show(f"{round_}: {run.label}", done[run.label]))
                    print("  " + "  ".join(rows[-1]), flush=True)
                for method in args.methods:
                    results[method].append((done["off"], done[method]))

        if rows:
            print(f"\n{table(HEADER, rows)}\n")
        summary, verdicts = [], []
        for method, pairs in ((m, p) for m, p in results.items() if p):  # --rounds 0: only --threads
            share = [w["in_callbacks"] / w["loop"] for _, w in pairs]
            ratio = [w["wall"] / o["wall"] for o, w in pairs]
            loop_ratio = [w["loop"] / o["loop"] for o, w in pairs]
            extra = [w["wall"] - o["wall"] for o, w in pairs]
            summary.append([method, f"{100 * max(share):.3f} %", ", ".join(f"{r:.4f}" for r in ratio),
                            f"{statistics.median(ratio):.4f}", f"{statistics.median(loop_ratio):.4f}",
                            f"{statistics.median(extra):+.2f}"])
            verdicts.append(f"{method}: (a) {'met' if max(share) <= TARGET_SHARE else 'MISSED'}, "
                            f"(b) {'met' if statistics.median(ratio) <= TARGET_RATIO else 'MISSED'}")
        if summary:
            print(table(["method", "(a) callbacks / loop, max", "(b) wall with / without, per round", "(b) median",
                         "loop with / without", "extra wall s"], summary))
            print(f"targets: (a) <= {100 * TARGET_SHARE:.0f} %, (b) <= {TARGET_RATIO}; " + "; ".join(verdicts),
                  flush=True)

        if args.threads:
            print("\ntorch threads with the t-SNE frame worker running (40 epochs, frames every 10, sliced):", flush=True)
            runs = [new("2 threads (default)", "tsne", 40, None), new("1 thread", "tsne", 40, 1)]
            run_sliced(runs, args.slice)
            print(table(HEADER, [show(run.label, run.result()) for run in runs]))


if __name__ == "__main__":
    main()
