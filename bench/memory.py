"""Peak memory of the guide's visualised 4-class run: the training process and its frame worker.

The command is ``python main.py --classes 4 --epochs 150 --oversample_target 1.0
--visualize_training [--viz_method M]``, run under GNU ``/usr/bin/time -v`` (``apt-get install
time`` if it is missing). GNU time's "Maximum resident set size" is the largest peak of one
process — the training process or a child it waited for, such as the worker — not their sum.
So the process tree is also sampled every 0.05 s from ``/proc``: each process's own peak
(``VmHWM``, kept by the kernel, so exact) and the largest sum of the processes' current RSS
seen at one moment, of exactly the training process and its worker (the pair's peak; sampled, so a
lower bound; at most the two peaks added) and, for information, of the whole tree (with GNU time
and multiprocessing's resource tracker). The worker's memory map is
checked for ``libtorch``: the worker must never import torch. Target: <= 700 MB.

Run: ``python bench/memory.py [--epochs 150] [--methods tsne umap] [--plain]`` (about 75 s per
run; ``--plain`` adds the same run without the time-lapse, for comparison).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

MAIN = Path(__file__).resolve().parents[1] / "main.py"
TARGET_MB = 700.0
MB = 1024.0  # /proc and GNU time report kB


def _status(pid: int) -> dict[str, int]:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return values


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, PermissionError):
            pass
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants until it is stopped.

    Besides the whole tree (GNU time, the training process, its frame worker and multiprocessing's
    resource tracker), it adds up exactly two roles at each sample: the training process (the one
    running ``main.py``) and its frame worker (a ``spawn_main`` child of it)."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.root, self.interval = pid, interval
        self.peak_sum = 0  # the whole tree
        self.peak_pair = 0  # the training process + its worker
        self.own_peak: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.torch_in: set[int] = set()
        self._stop_event = threading.Event()

    def _role(self, pid: int, parent: int | None) -> str:
        command = _cmdline(pid)  # read again each time: a spawned child shows its parent's until it execs
        if str(MAIN) in command and parent in (None, self.root) and Path(command.split()[0]).name != "time":
            return "training"  # (a child of it that has not exec'd yet shows the same command line)
        if "spawn_main" in command and parent is not None and self.roles.get(parent) == "training":
            return "worker"
        if "resource_tracker" in command:
            return "resource tracker"
        return "other" if pid != self.root else "GNU time"

    def run(self) -> None:
        while not self._stop_event.is_set():
            parents: dict[int, int | None] = {self.root: None}
            pids, total, pair = [self.root], 0, 0
            for pid in pids:
                for child in _children(pid):
                    parents[child] = pid
                    pids.append(child)
            for pid in pids:
                status = _status(pid)
                if not status:
                    continue
                role = self.roles[pid] = self._role(pid, parents[pid])
                total += status.get("VmRSS", 0)
                if role in ("training", "worker"):
                    pair += status.get("VmRSS", 0)
                self.own_peak[pid] = max(self.own_peak.get(pid, 0), status.get("VmHWM", 0))
                if role == "worker" and pid not in self.torch_in:
                    try:
                        if "libtorch" in Path(f"/proc/{pid}/maps").read_text():
                            self.torch_in.add(pid)
                    except OSError:
                        pass
            self.peak_sum = max(self.peak_sum, total)
            self.peak_pair = max(self.peak_pair, pair)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, role: str) -> float:
        """The largest own peak (VmHWM, MB) among the processes of ``role``."""
        return max((peak for pid, peak in self.own_peak.items() if self.roles.get(pid) == role), default=0) / MB


def measure(epochs: int, method: str | None) -> list[str]:
    gnu_time = shutil.which("time") or "/usr/bin/time"
    with tempfile.TemporaryDirectory(prefix="memory-") as runs_dir:
        command = [sys.executable, str(MAIN), "--classes", "4", "--epochs", str(epochs), "--oversample_target", "1.0",
                   "--runs_dir", runs_dir]
        if method is not None:
            command += ["--visualize_training", "--viz_method", method]
        timed = [gnu_time, "-v", *command] if Path(gnu_time).exists() else command
        start = time.perf_counter()
        process = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, stderr = process.communicate()
        sampler.stop()
        wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(timed)} failed ({process.returncode}):\n{stderr[-2000:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    gnu_peak = int(match.group(1)) / MB if match else float("nan")
    workers = [pid for pid, role in sampler.roles.items() if role == "worker"]
    torch_in_worker = any(pid in sampler.torch_in for pid in workers)
    return [method or "off", f"{wall:.0f}", f"{gnu_peak:.0f}", f"{sampler.peak('training'):.0f}",
            f"{sampler.peak('worker'):.0f}" if workers else "-", f"{sampler.peak_pair / MB:.0f}",
            f"{sampler.peak_sum / MB:.0f}", ("yes" if torch_in_worker else "no") if workers else "-"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--methods", nargs="+", default=["tsne", "umap"], choices=["tsne", "umap", "pca"])
    parser.add_argument("--plain", action="store_true", help="also the run without --visualize_training")
    args = parser.parse_args()
    if not Path(shutil.which("time") or "/usr/bin/time").exists():
        print("GNU time not found (apt-get install time); reporting the /proc samples only")
    rows = []
    for method in ([None] if args.plain else []) + list(args.methods):
        rows.append(measure(args.epochs, method))
        print("  " + "  ".join(rows[-1]), flush=True)
    print()
    print(table(["time-lapse", "wall s", "GNU time max RSS MB", "training process peak MB", "worker peak MB",
                 "training + worker at one moment, peak MB", "whole tree at one moment, peak MB",
                 "torch in worker"], rows))
    print("whole tree: the training process, its worker, GNU time and multiprocessing's resource tracker")
    worst = max(float(r[2]) for r in rows)
    worst_pair = max(float(r[5]) for r in rows)
    print(f"target: <= {TARGET_MB:.0f} MB (GNU time): {'met' if worst <= TARGET_MB else 'MISSED'} (largest {worst:.0f} MB); "
          f"training process + worker at one moment: {'within' if worst_pair <= TARGET_MB else 'OVER'} it too "
          f"(largest {worst_pair:.0f} MB)")


if __name__ == "__main__":
    main()
