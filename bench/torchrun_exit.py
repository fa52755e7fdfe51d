"""How often a torchrun job's rank dies at exit (SIGABRT), with and without shutdown's grace.

Each job is ``python -m torch.distributed.run --standalone --nproc_per_node 2`` of a small
script that joins the group as the tool does (``distributed.init_from_env``), trains a few
DistributedDataParallel steps, gathers one object, and leaves with ``distributed.shutdown``.
Rank 0 then stays busy for a moment, as it does writing the run folder, while rank 1 exits.
The jobs alternate between ``shutdown`` as shipped and a bare ``destroy_process_group`` (the
code before the fix), so that load changes hit both alike. Printed: failed jobs of each, and how
many printed "terminate called without an active exception". Target: 0 failures with the grace.

Run: ``python bench/torchrun_exit.py [--jobs 40]`` (about 3 s a job).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

JOB = """
import sys, time
import torch
from latentlapse.xray import distributed

world = distributed.init_from_env("cpu")
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(world.rank)
model = world.wrap(torch.nn.Sequential(torch.nn.Linear(20, 50), torch.nn.BatchNorm1d(50), torch.nn.Linear(50, 4)))
optimiser = torch.optim.Adam(model.parameters())
for _ in range(100):
    loss = model(torch.randn(16, 20, generator=generator)).pow(2).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
world.gather_objects(world.rank)
if world.is_main:
    time.sleep(1.0)
if sys.argv[1] == "shipped":
    distributed.shutdown(world)
else:  # the code before the fix; even time.sleep(0) would hand over the GIL
    torch.distributed.destroy_process_group()
"""


def job(script: Path, setting: str) -> tuple[bool, bool]:
    """(failed, printed the C++ terminate message) for one two-rank job."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), setting]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode != 0, "terminate called" in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs of each setting (default 40)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from latentlapse.xray.distributed import EXIT_GRACE_SECONDS

    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    settings = {f"shutdown, grace {EXIT_GRACE_SECONDS:g} s": "shipped", "destroy only (before)": "before"}
    failed = {name: 0 for name in settings}
    aborted = {name: 0 for name in settings}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "job.py"
        script.write_text(JOB)
        for i in range(args.jobs):
            for name, setting in settings.items():
                fail, abort = job(script, setting)
                failed[name] += fail
                aborted[name] += abort
            if (i + 1) % 10 == 0:
                print(f"{i + 1}/{args.jobs} jobs of each", file=sys.stderr, flush=True)
    for name in settings:
        print(f"{name:24s} failed {failed[name]:3d} of {args.jobs}  (terminate message: {aborted[name]})")
    print(f"{time.perf_counter() - start:.0f} s; load now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
