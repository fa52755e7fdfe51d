"""A busy machine: how training and its frames fare beside other work (issue 15's bars).

Every run is the real command line in its own process: the default visualised run shortened to
``python main.py --classes 4 --epochs 40 --visualize_training --viz_every 5`` into a temporary
``--runs_dir``. Scenarios, one after another, each with the 1-minute load average printed
before it:

1. **alone**, then **beside two busy loops** (``python -c 'while True: pass'``), then **beside a
   second identical training** started at the same moment. Printed: the median epoch seconds
   (``history.csv``), the ratio busy / alone (a fair share of 2 cores is about 2; target <= 3),
   the largest lag from an epoch's end to its frame on disk (``latent_metrics.csv``'s
   ``frame_lag_s``; target <= 60 s busy), and each run's thread choice (``run_metadata.json``).
2. **overhead**: the same command with and without ``--visualize_training``, alternated
   (``--rounds`` pairs): wall clock with / without (target <= 1.01) and the share of the loop
   spent in the time-lapse callback (``viz_seconds_in_loop / loop_seconds``).
3. **threads**: 40 epochs without frames, alternated: the new choice (automatic), the new
   choice's idle-machine setting forced (``--threads`` = torch's default, passive wait), and the
   old default (torch imported first, so no wait policy is set; torch's default threads).
   Ratio new / old of the median epoch (target <= 1.03 on an idle machine).

The bars are about an idle machine and a known load; on a shared machine the "alone" runs are
not alone: read the load printed with each figure. Run: ``python bench/contention.py
[--epochs 40] [--rounds 2] [--only busy,overhead,threads]`` (about 10-15 minutes on an idle
2-core machine; much longer on a busy one).
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

REPO = Path(__file__).resolve().parents[1]
MAIN = REPO / "main.py"
OLD_DEFAULT = ("import sys, torch\n"  # torch first: no wait policy; its default thread count
               "from latentlapse.xray import cli\n"
               "sys.exit(cli.train_main(sys.argv[1:] + ['--threads', str(torch.get_num_threads())]))\n")


@dataclass
class Run:
    """One run of the command: its folder and what it took, once it has exited."""

    label: str
    command: list[str]
    env: dict = field(default_factory=dict)
    wall: float = 0.0
    run_dir: Path | None = None
    process: subprocess.Popen | None = None
    started: float = 0.0

    def start(self, runs_dir: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        env.update(self.env)
        self.started = time.perf_counter()
        self.process = subprocess.Popen([*self.command, "--runs_dir", str(runs_dir), "--quiet"], cwd=REPO, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self) -> "Run":
        out, err = self.process.communicate()
        self.wall = time.perf_counter() - self.started
        if self.process.returncode != 0:
            raise SystemExit(f"{self.label} failed ({self.process.returncode}):\n{err[-2000:]}")
        self.run_dir = Path(out.splitlines()[0])
        return self

    def epoch_seconds(self) -> list[float]:
        with (self.run_dir / "history.csv").open() as handle:
            return [float(row["seconds"]) for row in csv.DictReader(handle)]

    def max_lag(self) -> float:
        path = self.run_dir / "latent_metrics.csv"
        if not path.exists():
            return float("nan")
        with path.open() as handle:
            lags = [float(row["frame_lag_s"]) for row in csv.DictReader(handle) if row.get("frame_lag_s")]
        return max(lags) if lags else float("nan")

    def metadata(self) -> dict:
        return json.loads((self.run_dir / "run_metadata.json").read_text())


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def busy_loops(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()


def command(epochs: int, every: int | None) -> list[str]:
    viz = ["--visualize_training", "--viz_every", str(every)] if every else []
    return [sys.executable, str(MAIN), "--classes", "4", "--epochs", str(epochs), *viz]


def median_epoch(run: Run) -> float:
    return statistics.median(run.epoch_seconds()[1:])  # the first epoch carries start-up work


def busy(args, root: Path) -> None:
    rows = []
    alone = Run("alone", command(args.epochs, args.viz_every))
    print(f"alone: {load()}", flush=True)
    alone.start(root / "alone")
    alone.wait()
    base = median_epoch(alone)
    rows.append(_busy_row(alone, base))
    print(f"beside two busy loops: {load()}", flush=True)
    loops = busy_loops(2)
    try:
        time.sleep(2)  # the loops are running (and counted by /proc/loadavg) before training starts
        beside = Run("2 busy loops", command(args.epochs, args.viz_every))
        beside.start(root / "loops")
        beside.wait()
    finally:
        stop(loops)
    rows.append(_busy_row(beside, base))
    print(f"beside a second training: {load()}", flush=True)
    pair = [Run(f"pair {i}", command(args.epochs, args.viz_every)) for i in (1, 2)]
    for run in pair:
        run.start(root / run.label.replace(" ", ""))
    for run in pair:
        rows.append(_busy_row(run.wait(), base))
    print(table(["run", "wall s", "median epoch s", "ratio to alone", "largest lag s", "threads", "reason"], rows))


def _busy_row(run: Run, base: float) -> list:
    threads = run.metadata().get("threads", {})
    epoch = median_epoch(run)
    return [run.label, f"{run.wall:.1f}", f"{epoch:.3f}", f"{epoch / base:.2f}", f"{run.max_lag():.1f}",
            threads.get("intra_op"), threads.get("reason", "")[:60]]


def overhead(args, root: Path) -> None:
    rows, ratios = [], []
    for r in range(args.rounds):
        print(f"overhead round {r + 1}: {load()}", flush=True)
        off = Run("without frames", command(args.epochs, None))
        off.start(root / f"off{r}")
        off.wait()
        on = Run("with frames", command(args.epochs, args.viz_every))
        on.start(root / f"on{r}")
        on.wait()
        meta = on.metadata()
        share = meta["viz_seconds_in_loop"] / meta["loop_seconds"]
        ratios.append(on.wall / off.wall)
        rows.append([r + 1, f"{off.wall:.1f}", f"{on.wall:.1f}", f"{on.wall / off.wall:.3f}",
                     f"{median_epoch(on) / median_epoch(off):.3f}", f"{100 * share:.3f} %", f"{on.max_lag():.1f}"])
    print(table(["round", "wall without", "wall with", "with / without", "epoch with / without",
                 "callback share of loop", "largest lag s"], rows))
    print(f"median wall with / without: {statistics.median(ratios):.3f} (target <= 1.01)")


def threads(args, root: Path) -> None:
    kinds = {
        "new (automatic)": ([*command(args.epochs, None)], {}),
        "new, idle setting forced": ([*command(args.epochs, None), "--threads", str(_torch_default())], {}),
        "old default": ([sys.executable, "-c", OLD_DEFAULT, "--classes", "4", "--epochs", str(args.epochs)],
                        {}),
    }
    epochs: dict[str, list[float]] = {name: [] for name in kinds}
    chosen: dict[str, str] = {}
    for r in range(args.rounds):
        print(f"threads round {r + 1}: {load()}", flush=True)
        for name, (cmd, env) in kinds.items():
            run = Run(name, cmd, env)
            run.start(root / f"threads{r}")
            run.wait()
            epochs[name].append(median_epoch(run))
            meta = run.metadata().get("threads", {})
            chosen[name] = f"{meta.get('intra_op')} / {meta.get('omp_wait_policy')}"
    old = statistics.median(epochs["old default"])
    rows = [[name, chosen[name], " ".join(f"{v:.3f}" for v in values), f"{statistics.median(values):.3f}",
             f"{statistics.median(values) / old:.3f}"] for name, values in epochs.items()]
    print(table(["setting", "threads / wait policy", "median epoch s per round", "median", "ratio to old"], rows))


def _torch_default() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--viz_every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="busy,overhead,threads")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {load()}; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory(prefix="contention_") as tmp:
        root = Path(tmp)
        for name in args.only.split(","):
            {"busy": busy, "overhead": overhead, "threads": threads}[name](args, root)
            print(flush=True)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
