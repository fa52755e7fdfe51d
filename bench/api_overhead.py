"""What the public API's time-lapse adds to a plain training loop, side by side.

The digits example's loop (examples/digits_pytorch.py: the same data, model, optimiser and
evaluation with the feature hook), without and with a ``Timelapse`` (t-SNE frames at epoch 1,
5, 10, ...). Two figures, bar <= 1 % for both:

1. the time ``log_epoch`` spent in the loop (it keeps the epoch's arrays; at frame epochs it
   hands the sample's copies to the worker, which scores and draws them in another process at
   idle priority; history rows and per-source records are written in batches by a background
   thread) as a share of the loop's wall time;
2. the loop's wall time with the Timelapse against without, measured two ways:
   a. whole runs alternated (the order swapped every round), median of the per-round ratios:
      what the brief asks, but on a shared machine one run's wall time swings by 10-30 %, so
      its median resolves a few per cent at best;
   b. the same two trainings interleaved epoch by epoch in one process (plain epoch, filmed
      epoch, plain, ...), so the other users' load hits both alike: the ratio of the summed
      epoch times, median over rounds. The frame worker runs during both halves, so its own
      share is reported apart as the CPU time it used during the loop (it runs at idle
      priority: it takes only a core nobody else wants);
   c. the same epochs' CPU time on the loop's thread (``time.thread_time``), which the other
      users' processes cannot inflate (waits for a core or the GIL are not in it).

Opening the run (before the loop) and its end (last frames, GIF, report, after the loop) are
reported apart; to fit many rounds, only the first ``--full_rounds`` filmed runs make the end
of the run, the others stop as interrupted, skipping queued frames.

Run: ``python bench/api_overhead.py [--epochs 20] [--rounds 15] [--full_rounds 2]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import quiet_logs  # noqa: E402


def _example():
    spec = importlib.util.spec_from_file_location("digits_pytorch", HERE.parent / "examples" / "digits_pytorch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup(example, seed: int):
    import torch
    from torch.utils.data import DataLoader

    train_set, val_set = example.digits(seed)
    shuffled = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    train_eval, val_eval = DataLoader(train_set, batch_size=512), DataLoader(val_set, batch_size=512)
    model = example.make_model(seed)
    return dict(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), loss_fn=torch.nn.CrossEntropyLoss(),
                shuffled=shuffled, train_eval=train_eval, val_eval=val_eval)


def _epoch(t: dict, epoch: int, tl) -> None:
    """One epoch of the example's loop (train, evaluate through the hook, log)."""
    from latentlapse import features

    model, optimizer = t["model"], t["optimizer"]
    model.train()
    for X, y in t["shuffled"]:
        optimizer.zero_grad()
        t["loss_fn"](model(X), y).backward()
        optimizer.step()
    train, val = features(model, "encoder", t["train_eval"]), features(model, "encoder", t["val_eval"])
    if tl is not None:
        tl.log_epoch(epoch, train=train, val=val, metrics={"lr": optimizer.param_groups[0]["lr"]})


def _timelapse(runs_dir: str, epochs: int, every: int, seed: int):
    from latentlapse import Timelapse

    return Timelapse(runs_dir, class_names=[str(d) for d in range(10)], epochs=epochs, every=every, seed=seed)


def _close(tl, full: bool) -> float:
    started = time.perf_counter()
    if full:
        tl.close("completed")
    else:
        tl.request_abort()
        tl.close("interrupted")
    return time.perf_counter() - started


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def run(example, epochs: int, every: int, film: bool, runs_dir: str, full: bool = True, seed: int = 0) -> dict[str, float]:
    """One training run; the loop's wall time, log_epoch's time (first call apart), open and end."""
    t = _setup(example, seed)
    opening = time.perf_counter()
    tl = _timelapse(runs_dir, epochs, every, seed) if film else None
    if tl is not None:
        tl.open()
    opened = time.perf_counter() - opening
    first = 0.0
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        _epoch(t, epoch, tl)
        first = first or (tl.seconds if tl else 0.0)
    loop = time.perf_counter() - started
    end = _close(tl, full) if tl is not None else 0.0
    return {"loop": loop, "in_loop": tl.seconds if tl else 0.0, "first": first, "open": opened, "end": end}


def interleaved(example, epochs: int, every: int, runs_dir: str, seed: int = 0) -> dict[str, float]:
    """The plain and the filmed training in one process, taking turns epoch by epoch."""
    plain, filmed = _setup(example, seed), _setup(example, seed)
    tl = _timelapse(runs_dir, epochs, every, seed)
    tl.open()
    worker_pid = tl.worker.pid if tl.worker else None
    cpu_before = _cpu_seconds(worker_pid)
    times = {"plain": 0.0, "filmed": 0.0, "plain_cpu": 0.0, "filmed_cpu": 0.0}
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for name, t, log_to in (("plain", plain, None), ("filmed", filmed, tl))[:: 1 if epoch % 2 else -1]:
            epoch_started, cpu_started = time.perf_counter(), time.thread_time()
            _epoch(t, epoch, log_to)
            times[name] += time.perf_counter() - epoch_started
            times[name + "_cpu"] += time.thread_time() - cpu_started
    wall = time.perf_counter() - started
    worker_cpu = _cpu_seconds(worker_pid) - cpu_before
    _close(tl, False)
    return {**times, "worker_cpu": worker_cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--full_rounds", type=int, default=2, help="filmed runs that make the whole end of the run")
    args = parser.parse_args()
    quiet_logs()
    logging.getLogger("latentlapse").setLevel(logging.ERROR)  # the interrupted rounds' notes
    import torch

    torch.set_num_threads(1)
    example = _example()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores at the start")
    plain, filmed, mixed = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        run(example, 2, args.every, False, folder)  # warm-up: imports, allocator, file cache
        for round_ in range(args.rounds):
            for film in ((False, True) if round_ % 2 == 0 else (True, False)):
                result = run(example, args.epochs, args.every, film, folder, full=round_ < args.full_rounds)
                (filmed if film else plain).append(result)
            mixed.append(interleaved(example, args.epochs, args.every, folder))
    median = statistics.median
    share = [f["in_loop"] / f["loop"] for f in filmed]
    ratio = sorted(f["loop"] / p["loop"] - 1 for p, f in zip(plain, filmed))
    quartiles = statistics.quantiles(ratio, n=4) if len(ratio) > 1 else ratio * 3
    turns = [m["filmed"] / m["plain"] - 1 for m in mixed]
    cpu = [m["filmed_cpu"] / m["plain_cpu"] - 1 for m in mixed]
    print(f"digits MLP, {args.epochs} epochs, t-SNE frames every {args.every}, {args.rounds} rounds, torch threads 1")
    print(f"1. log_epoch: median {median(share):.2%} of the loop's wall time (max {max(share):.2%}); "
          f"{1000 * median(f['in_loop'] for f in filmed) / args.epochs:.2f} ms an epoch, the first call "
          f"{1000 * median(f['first'] for f in filmed):.1f} ms   bar <= 1 %")
    print(f"2a. whole runs alternated: loop wall time with Timelapse {median(ratio):+.2%} against without "
          f"(median of {len(ratio)} rounds; quartiles {quartiles[0]:+.1%} .. {quartiles[2]:+.1%}); plain "
          f"{median(p['loop'] for p in plain):.3f} s, filmed {median(f['loop'] for f in filmed):.3f} s")
    pooled = sum(m["filmed"] for m in mixed) / sum(m["plain"] for m in mixed) - 1
    print(f"2b. interleaved epochs: filmed epochs took {median(turns):+.2%} against plain ones (median of "
          f"{len(turns)} rounds; range {min(turns):+.1%} .. {max(turns):+.1%}; all rounds pooled {pooled:+.2%})   "
          f"bar <= 1 %; the frame worker "
          f"used {median(m['worker_cpu'] for m in mixed):.2f} s CPU during a {median(m['wall'] for m in mixed):.2f} s "
          f"interleaved loop (idle priority)")
    print(f"2c. the same, CPU time of the loop's thread (what other users' load cannot inflate): filmed epochs "
          f"{median(cpu):+.2%} against plain ones (median of {len(cpu)} rounds; range {min(cpu):+.1%} .. {max(cpu):+.1%})")
    full = filmed[: args.full_rounds] or filmed
    print(f"before the loop (run folder, worker start): median {1000 * median(f['open'] for f in filmed):.0f} ms; "
          f"after it (last frames, GIF, curves, diagnosis, report): median {median(f['end'] for f in full):.1f} s "
          f"({len(full)} runs)")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the end")


if __name__ == "__main__":
    main()
