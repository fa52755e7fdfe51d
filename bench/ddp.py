"""One process against two (torchrun, gloo) on the CPU: the same data, epochs and seed.

Each run is the command a user types, as a child process: ``python main.py --classes 4
--epochs E --device cpu`` on the built-in data, and ``python -m torch.distributed.run
--standalone --nproc_per_node 2 main.py ...`` with the same flags. One process uses torch's
default threads (one per core); torchrun gives each of its processes one thread
(OMP_NUM_THREADS=1, its default), so both use every core. Printed per run: wall seconds of the
command, the training loop's seconds (``loop_seconds`` in run_metadata.json: no start-up), the
validation balanced accuracy of the best checkpoint (final_metrics.json) and of the last epoch.
The pairs alternate (1, 2, 1, 2, ...) so that load changes hit both alike; medians are quoted.
Target: validation balanced accuracy within 0.01 of the single process (best checkpoint); the
wall-time ratio is reported as measured (on two shared cores two processes may not win).

With ``--baseline DIR`` (a checkout of the code before torchrun support, e.g. ``git archive
<commit> | tar -x -C DIR``) it instead times the single-process path: that checkout's
``main.py`` and ours, alternating, the same flags; per-epoch seconds from history.csv, the
ratio of the runs' median epoch times. Target: ours / before <= 1.02.

Run: ``python bench/ddp.py [--epochs 20] [--repeats 1] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_ACC = 0.01


def run(processes: int, epochs: int, runs_dir: Path, repo: Path = REPO) -> dict[str, float]:
    flags = ["--classes", "4", "--epochs", str(epochs), "--device", "cpu", "--runs_dir", str(runs_dir), "--quiet"]
    main = str(repo / "main.py")
    if processes == 1:
        command = [sys.executable, main, *flags]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), main, *flags]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(repo / "src")
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{done.stderr[-2000:]}")
    run_dir = sorted(runs_dir.iterdir())[-1]
    meta = json.loads((run_dir / "run_metadata.json").read_text())
    final = json.loads((run_dir / "final_metrics.json").read_text())
    epoch_seconds = [float(line.rsplit(",", 1)[1]) for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    return {"wall": wall, "loop": meta["loop_seconds"], "best": final["balanced_acc"],
            "epoch": statistics.median(epoch_seconds),
            "last": final["last_epoch_scores"]["val_balanced_acc"], "world": meta.get("world_size", 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="time the single-process path against this checkout")
    args = parser.parse_args()
    if args.baseline:
        single_process_overhead(args.baseline, args.epochs, args.repeats)
        return
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    lines = []
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as root:
        for repeat in range(args.repeats):
            for processes in (1, 2):
                r = run(processes, args.epochs, Path(root) / f"p{processes}")
                results[processes].append(r)
                lines.append([repeat + 1, processes, int(r["world"]), f"{r['wall']:.1f}", f"{r['loop']:.1f}",
                              f"{r['best']:.4f}", f"{r['last']:.4f}"])
                print(table(["repeat", "processes", "world_size", "wall s", "loop s", "val bal.acc (best)",
                             "val bal.acc (last epoch)"], lines[-1:]), flush=True)
    print()
    print(table(["repeat", "processes", "world_size", "wall s", "loop s", "val bal.acc (best)",
                 "val bal.acc (last epoch)"], lines))

    def median(p: int, key: str) -> float:
        return statistics.median(r[key] for r in results[p])

    gap = abs(median(2, "best") - median(1, "best"))
    print(f"built-in data, {args.epochs} epochs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"wall ratio 2/1 processes: {median(2, 'wall') / median(1, 'wall'):.2f} (command), "
          f"{median(2, 'loop') / median(1, 'loop'):.2f} (training loop)")
    print(f"target: |val balanced accuracy (2) - (1)| = {gap:.4f} ({'met' if gap <= TARGET_ACC else 'MISSED'} "
          f"<= {TARGET_ACC})")


def single_process_overhead(baseline: Path, epochs: int, repeats: int) -> None:
    """Median seconds per epoch of the checkout before torchrun support and of ours, alternating."""
    lines, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="ddp-baseline-") as root:
        for repeat in range(repeats):
            before = run(1, epochs, Path(root) / f"before{repeat}", repo=baseline)
            ours = run(1, epochs, Path(root) / f"ours{repeat}")
            ratios.append(ours["epoch"] / before["epoch"])
            lines.append([repeat + 1, f"{before['epoch']:.3f}", f"{ours['epoch']:.3f}", f"{ratios[-1]:.3f}",
                          f"{before['best']:.4f}", f"{ours['best']:.4f}"])
            print(table(["repeat", "before s/epoch", "ours s/epoch", "ratio", "bal.acc before", "bal.acc ours"],
                        lines[-1:]), flush=True)
    print()
    print(table(["repeat", "before s/epoch", "ours s/epoch", "ratio", "bal.acc before", "bal.acc ours"], lines))
    ratio = statistics.median(ratios)
    print(f"single process, built-in data, {epochs} epochs, load average {os.getloadavg()[0]:.1f}: "
          f"median epoch-time ratio ours/before {ratio:.3f} ({'met' if ratio <= 1.02 else 'MISSED'} <= 1.02)")


if __name__ == "__main__":
    main()
