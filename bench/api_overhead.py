"""What the public API's time-lapse adds to a plain training loop, side by side.

The digits example's loop (examples/digits_pytorch.py: the same data, model, optimiser and
evaluation with the feature hook), run alternately without and with a ``Timelapse`` (t-SNE
frames at epoch 1, 5, 10, ...), many short rounds, the order swapped every round. Two figures:

1. the time ``log_epoch`` spent in the loop (keeping the epoch's arrays; at frame epochs the
   sample's copies and the scores handed to the worker, which draws in another process at idle
   priority; history rows and per-source records are written in batches by a background
   thread) as a share of the loop's wall time;
2. the loop's wall time with the Timelapse against the plain loop of the same round (median of
   the per-round ratios), which also counts what the worker and the writer thread take from it.

Bar for both: <= 1 %. Opening the run (before the loop) and its end (last frames, GIF, report,
after the loop) are reported apart.

Run: ``python bench/api_overhead.py [--epochs 20] [--rounds 9]``.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def run(example, epochs: int, every: int, film: bool, runs_dir: str, seed: int = 0) -> dict[str, float]:
    """One training run; the loop's wall time, log_epoch's time (first call apart), open and end."""
    import torch
    from torch.utils.data import DataLoader

    from latentlapse import Timelapse, features

    train_set, val_set = example.digits(seed)
    shuffled = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    train_eval, val_eval = DataLoader(train_set, batch_size=512), DataLoader(val_set, batch_size=512)
    model = example.make_model(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    opening = time.perf_counter()
    tl = Timelapse(runs_dir, class_names=[str(d) for d in range(10)], epochs=epochs, every=every, seed=seed) if film else None
    if tl is not None:
        tl.open()
    opened = time.perf_counter() - opening
    first = 0.0
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for X, y in shuffled:
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()
            optimizer.step()
        train, val = features(model, "encoder", train_eval), features(model, "encoder", val_eval)
        if tl is not None:
            tl.log_epoch(epoch, train=train, val=val, metrics={"lr": optimizer.param_groups[0]["lr"]})
            first = first or tl.seconds
    loop = time.perf_counter() - started
    closing = time.perf_counter()
    if tl is not None:
        tl.close("completed")
    return {"loop": loop, "in_loop": tl.seconds if tl else 0.0, "first": first, "open": opened,
            "end": time.perf_counter() - closing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    quiet_logs()
    import torch

    torch.set_num_threads(1)
    example = _example()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores at the start")
    plain, filmed = [], []
    with tempfile.TemporaryDirectory() as folder:
        run(example, 2, args.every, False, folder)  # warm-up: imports, allocator, file cache
        for round_ in range(args.rounds):
            for film in ((False, True) if round_ % 2 == 0 else (True, False)):
                (filmed if film else plain).append(run(example, args.epochs, args.every, film, folder))
    share = [f["in_loop"] / f["loop"] for f in filmed]
    ratio = [f["loop"] / p["loop"] - 1 for p, f in zip(plain, filmed)]
    median = statistics.median
    print(f"digits MLP, {args.epochs} epochs, t-SNE frames every {args.every}, {args.rounds} rounds "
          f"(order swapped each round), torch threads 1")
    print(f"1. log_epoch in the loop: median {median(share):.3%} of the loop's wall time "
          f"(rounds: {', '.join(f'{x:.2%}' for x in share)}); {1000 * median(f['in_loop'] for f in filmed) / args.epochs:.2f} ms "
          f"an epoch, first call median {1000 * median(f['first'] for f in filmed):.1f} ms   bar <= 1 %")
    print(f"2. loop wall time with Timelapse against without: median {median(ratio):+.2%} "
          f"(rounds: {', '.join(f'{x:+.1%}' for x in ratio)}); plain median {median(p['loop'] for p in plain):.3f} s, "
          f"with Timelapse {median(f['loop'] for f in filmed):.3f} s   bar <= 1 %")
    print(f"before the loop (run folder, worker start): median {1000 * median(f['open'] for f in filmed):.0f} ms; "
          f"after it (last frames, GIF, curves, diagnosis, report): median {median(f['end'] for f in filmed):.1f} s")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the end")


if __name__ == "__main__":
    main()
