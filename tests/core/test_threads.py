"""The thread choice (a pure function of the machine and the model) and the slow-epoch warning."""

import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from latentlapse.core import threads
from latentlapse.core.threads import Machine, ThreadChoice, choose_threads, is_slow

SMALL = 0.4e9  # the 4-class CNN at batch 64
LARGE = 50e9


@pytest.mark.parametrize("machine, flops, expected", [
    (Machine(cores=2, load=0.1), SMALL, 2),   # idle: both cores
    (Machine(cores=2, load=0.4), SMALL, 2),
    (Machine(cores=2, load=0.8), SMALL, 1),   # most of a core taken by others
    (Machine(cores=2, load=7.0), SMALL, 1),   # oversubscribed
    (Machine(cores=16, load=4.0), SMALL, 8),  # enough free cores for torch's default
    (Machine(cores=16, load=12.0), SMALL, 1),  # fewer free cores than threads: one
    (Machine(cores=16, load=12.0), LARGE, 4),  # a large one takes the free cores
    (Machine(cores=16, load=0.0), LARGE, 8),
    (Machine(cores=2, load=7.0), LARGE, 1),
])
def test_threads_follow_the_free_cores_and_the_model_size(machine, flops, expected):
    count, reason = choose_threads(None, machine, flops, default=min(machine.cores, 8))
    assert count == expected
    assert f"on {machine.cores} cores" in reason


def test_busy_reason_names_the_load():
    _, reason = choose_threads(None, Machine(cores=2, load=7.0), SMALL, default=2)
    assert reason.startswith("small model (0.4 GFLOP per step) on a busy machine (load 7.0 on 2 cores)")


def test_the_flag_and_then_omp_num_threads_win():
    busy = Machine(cores=2, load=9.0)
    assert choose_threads(3, busy, SMALL, default=2, env_threads="1") == (3, "--threads 3")
    assert choose_threads(None, busy, SMALL, default=2, env_threads="4") == (4, "OMP_NUM_THREADS=4 in the environment")
    assert choose_threads(None, busy, SMALL, default=2, env_threads="junk")[0] == 1


def test_wait_policy_is_passive_only_on_a_busy_machine_when_absent_and_before_torch(monkeypatch):
    busy, idle = threads.Machine(cores=2, load=3.0), threads.Machine(cores=2, load=0.1)
    env = {}
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert threads.prepare_environment(env, busy) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    quiet = {}
    assert threads.prepare_environment(quiet, idle) is None and quiet == {}  # OpenMP's default spin
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert threads.prepare_environment(mine, busy) == "ACTIVE" and mine == {"OMP_WAIT_POLICY": "ACTIVE"}
    monkeypatch.setitem(sys.modules, "torch", object())  # too late: the runtime has read its settings
    late = {}
    assert threads.prepare_environment(late, busy) is None and late == {}


def test_prepare_environment_runs_before_torch_is_imported():
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c",
                          "import os, sys\nfrom latentlapse.xray import cli\nfrom latentlapse.core import threads\n"
                          "threads.prepare_environment(machine=threads.Machine(cores=2, load=4.0))\n"
                          "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["PASSIVE", "False"]




@pytest.mark.parametrize("seconds, slow", [
    ([1.0, 1.1, 0.9, 3.5], True),
    ([1.0, 1.1, 0.9, 2.9], False),   # under 3x the median
    ([1.0, 1.1, 3.5], False),        # too few epochs before it
    ([0.1, 0.1, 0.1, 0.5], False),   # too short to tell from noise
    ([5.0, 1.0, 1.0, 1.0, 3.2], True),  # the median, not the mean, of the epochs before
])
def test_slow_epoch_rule(seconds, slow):
    assert is_slow(seconds) is slow


def test_slow_epoch_warning_is_said_once_with_cause_and_flag(caplog):
    watch = threads.SlowEpochWatch(ThreadChoice(intra_op=2, omp_wait_policy="PASSIVE", reason="test"))
    caplog.set_level(logging.WARNING, logger="latentlapse")
    for epoch, seconds in enumerate([1.0, 1.0, 1.0, 5.0, 6.0, 7.0], start=1):
        watch.on_epoch_end(None, SimpleNamespace(epoch=epoch, scores={"seconds": seconds}))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("epoch 4 took 5.0 s, 5x the median 1.00 s of the epochs before: other processes")
    assert "cores busy, this run included" in lines[0] and lines[0].endswith("try --threads 1")


def test_step_flops_counts_a_batch_and_estimates_a_model_it_cannot_run():
    import torch

    dense = torch.nn.Linear(10, 5)
    assert threads.step_flops(dense, 10, 64) == 3 * (2 * 10 * 5) * 64  # forward + backward, per batch
    conv = torch.nn.Conv1d(1, 2, 3)  # wants (batch, channels, length): a row of zeros does not fit
    assert threads.step_flops(conv, 10, 64) == 3 * 2 * sum(p.numel() for p in conv.parameters()) * 64


def test_cores_are_counted_where_there_is_no_cpu_affinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: the thread choice and predict's network
    threads fall back to os.cpu_count instead of failing."""
    import os

    from latentlapse.xray.predict import network_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert threads.usable_cores() == 6
    assert network_threads(current=1) == 5
    assert threads.machine_now(window=0.01).cores == 6
