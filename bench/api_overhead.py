"""What the public API's time-lapse adds to a plain training loop, side by side.

The digits example's loop (examples/digits_pytorch.py: the same data, model, optimiser and
evaluation with the feature hook), run alternately without and with a ``Timelapse`` (t-SNE
frames at epoch 1, 5, 10, ...). For each filmed run it reports the time ``log_epoch`` spent in
the loop (history row, dynamics record, frame snapshot: the worker draws in another process at
idle priority) as a share of the loop's wall time, and the loop's wall time against the plain
runs'. The end of the run (GIF, report), after the loop, is reported apart. Bar: <= 1 %.

Run: ``python bench/api_overhead.py [--epochs 10] [--rounds 3]``.
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
    """One training run; the loop's wall time, log_epoch's share, and the end of the run."""
    import torch
    from torch.utils.data import DataLoader

    from latentlapse import Timelapse, features

    train_set, val_set = example.digits(seed)
    shuffled = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    train_eval, val_eval = DataLoader(train_set, batch_size=512), DataLoader(val_set, batch_size=512)
    model = example.make_model(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    tl = Timelapse(runs_dir, class_names=[str(d) for d in range(10)], epochs=epochs, every=every, seed=seed) if film else None
    if tl is not None:
        tl.open()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for X, y in shuffled:
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()
            optimizer.step()
        train, val = features(model, "encoder", train_eval), features(model, "encoder", val_eval)
        if tl is not None:
            tl.log_epoch(epoch, train=train, val=val)
    loop = time.perf_counter() - started
    closing = time.perf_counter()
    if tl is not None:
        tl.close("completed")
    return {"loop": loop, "in_loop": tl.seconds if tl else 0.0, "frames": tl.frame_seconds if tl else 0.0,
            "end": time.perf_counter() - closing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    import torch

    torch.set_num_threads(1)
    example = _example()
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores at the start")
    plain, filmed = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            plain.append(run(example, args.epochs, args.every, False, folder))
            filmed.append(run(example, args.epochs, args.every, True, folder))
    share = [f["in_loop"] / f["loop"] for f in filmed]
    p_loop, f_loop = statistics.median(r["loop"] for r in plain), statistics.median(r["loop"] for r in filmed)
    print(f"digits MLP, {args.epochs} epochs, t-SNE frames every {args.every}, {args.rounds} rounds, torch threads 1")
    print(f"loop wall time: plain median {p_loop:.2f} s, with Timelapse median {f_loop:.2f} s "
          f"({f_loop / p_loop - 1:+.1%}; noisy on a busy machine)")
    frames = [f["frames"] / f["loop"] for f in filmed]
    print(f"log_epoch in the loop: median {statistics.median(share):.3%} of the loop (max {max(share):.3%})  bar <= 1 %")
    print(f"  of which the frames (sample copies handed to the worker): median {statistics.median(frames):.3%}; "
          f"the rest is the history row and the per-source record")
    print(f"after the loop (last frames, GIF, curves, diagnosis, report): median "
          f"{statistics.median(r['end'] for r in filmed):.1f} s")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) at the end")


if __name__ == "__main__":
    main()
