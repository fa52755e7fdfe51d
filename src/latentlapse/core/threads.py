"""How many threads torch trains with, and how its OpenMP threads wait: chosen for the model and
the machine, once per run, logged and stored in ``run_metadata.json``.

Our networks are small (about 2 MFLOP per spectrum), so a batch is many short parallel regions.
On a 2-core machine with other work on the cores, torch's threads spinning while they wait for
each other made a 0.35 s epoch take 11-14 s; one thread took 2.3-3.1 s and a passive wait policy
2.8-3.5 s in the same minute. On an idle machine two threads are faster (bench/contention.py).
So: all free cores and OpenMP's default wait when the machine is idle (a passive policy cost an
idle epoch ~1.2x); one thread for a small model and a passive wait policy (set before torch
loads, unless the user set one) when other work fills the cores.

This module imports no heavy library at the top: the CLI calls :func:`prepare_environment`
before torch is first imported.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

WAIT_POLICY = "PASSIVE"
# Below this many FLOPs per optimisation step (forward + backward of one batch) a model is
# "small": its parallel regions are too short for a shared core. The 4-class CNN at batch 64
# needs 0.4 GFLOP per step, the catalogue MLP far less.
SMALL_STEP_FLOPS = 5e9
SLOW_FACTOR = 3.0  # an epoch this many times the median of the previous ones is "far slower"
SLOW_MIN_PREVIOUS = 3
SLOW_MIN_SECONDS = 1.0  # shorter epochs are too noisy to warn about
BUSY_WINDOW_SECONDS = 0.25  # how long the machine is watched before the choice

_wait_policy_source = "environment"


@dataclass(frozen=True)
class Machine:
    """What the choice looks at: cores this process may use, and the work already on them."""

    cores: int
    # cores kept busy by all processes over a short window, this one included (before training
    # starts, that is other work), or the 1-minute load average where /proc/stat cannot be read
    load: float

    @property
    def free_cores(self) -> int:
        """Cores left by other work, rounded (at least 1)."""
        return max(1, min(self.cores, math.floor(self.cores - self.load + 0.5)))


@dataclass(frozen=True)
class ThreadChoice:
    """torch's intra-op thread count, the OpenMP wait policy in effect, and why."""

    intra_op: int
    omp_wait_policy: str | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_environment(environ: dict | None = None, machine: Machine | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when other work already fills the cores, unless the user set
    a policy or torch is already loaded (its OpenMP runtime reads the variable once, when it
    loads); returns the policy in effect.

    On an idle machine OpenMP's default (spin a little, then sleep) is kept: a passive policy
    wakes the threads of every short parallel region through the kernel, which made an idle
    2-thread epoch about 1.2x slower here (bench/contention.py, threads); a machine that gets
    busy later is told about by :class:`SlowEpochWatch`.
    """
    global _wait_policy_source
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" not in environ and "torch" not in sys.modules:
        machine = machine_now() if machine is None else machine
        if machine.free_cores < machine.cores:
            environ["OMP_WAIT_POLICY"] = WAIT_POLICY
            _wait_policy_source = "latentlapse"
    return environ.get("OMP_WAIT_POLICY")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_now(window: float = BUSY_WINDOW_SECONDS) -> Machine:
    """This process's usable cores and the work on them now: the cores other processes kept busy
    over a short ``window`` (``/proc/stat``), else the 1-minute load average.

    The load average lags by a minute, so right after another job ends it still reads as
    "busy"; the CPU time actually spent during the window does not.
    """
    cores = usable_cores()
    busy = _busy_cores(window)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    return Machine(cores=cores, load=busy)


def _busy_cores(window: float) -> float | None:
    """Cores' worth of CPU time all processes used over ``window`` seconds (None off Linux)."""
    def sample() -> tuple[float, float] | None:
        try:
            with open("/proc/stat") as handle:
                fields = [float(v) for v in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields), idle

    first = sample()
    if first is None:
        return None
    time.sleep(window)
    second = sample()
    total, idle = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return None
    return (os.cpu_count() or 1) * (total - idle) / total


def choose_threads(requested: int | None, machine: Machine, step_flops: float, default: int,
                   env_threads: str | None = None) -> tuple[int, str]:
    """Intra-op threads and a one-line reason: ``--threads``, else ``OMP_NUM_THREADS``, else one
    thread for a small model on a machine whose cores other work fills, else the free cores
    (at most torch's default)."""
    if requested is not None:
        return requested, f"--threads {requested}"
    if env_threads and env_threads.strip().isdigit() and int(env_threads) >= 1:
        return int(env_threads), f"OMP_NUM_THREADS={int(env_threads)} in the environment"
    state = f"load {machine.load:.1f} on {machine.cores} core{'s' if machine.cores != 1 else ''}"
    small = step_flops < SMALL_STEP_FLOPS
    if small and machine.free_cores < min(default, machine.cores):
        return 1, (f"small model ({step_flops / 1e9:.2g} GFLOP per step) on a busy machine ({state}): "
                   f"threads waiting on a shared core would cost more than they share")
    threads = max(1, min(default, machine.free_cores))
    return threads, f"{'small' if small else 'large'} model ({step_flops / 1e9:.2g} GFLOP per step), {state}"


def step_flops(model, n_features: int, batch_size: int) -> float:
    """FLOPs of one optimisation step (forward and backward of a batch), counted by torch on one
    row (convolutions and matmuls; about 3x the forward pass)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(2, n_features, device=next(model.parameters()).device))
        forward = counter.get_total_flops() / 2
    except Exception:  # a model that cannot take a row of zeros: count its weights (dense layers)
        log.debug("could not count the model's FLOPs; estimating from its parameters", exc_info=True)
        forward = 2.0 * sum(p.numel() for p in model.parameters())
    finally:
        model.train(was_training)
    return 3.0 * forward * batch_size


def choose_for_run(requested: int | None, model, n_features: int, batch_size: int,
                   recorded: dict | None = None) -> ThreadChoice:
    """The run's choice; a resumed run keeps the count it started with (the same arithmetic)."""
    import torch

    if requested is None and recorded and recorded.get("intra_op"):
        intra_op, reason = int(recorded["intra_op"]), str(recorded.get("reason", ""))
        if not reason.startswith("as when the run started"):
            reason = f"as when the run started: {reason}"
    else:
        env_threads = os.environ.get("OMP_NUM_THREADS")
        decided = requested is not None or bool(env_threads and env_threads.strip().isdigit())
        machine = Machine(cores=1, load=0.0) if decided else machine_now()  # no need to watch the machine
        flops = step_flops(model, n_features, batch_size)
        intra_op, reason = choose_threads(requested, machine, flops, torch.get_num_threads(), env_threads)
    return ThreadChoice(intra_op=intra_op, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), reason=reason)


def describe(choice: ThreadChoice) -> str:
    """The log line of a choice."""
    policy = choice.omp_wait_policy
    source = "set by latentlapse" if _wait_policy_source == "latentlapse" else "from the environment"
    waits = f"OMP_WAIT_POLICY={policy} ({source})" if policy else "OpenMP's default wait policy"
    return (f"training with {choice.intra_op} thread{'s' if choice.intra_op != 1 else ''} ({choice.reason}); "
            f"{waits}; --threads N overrides")


def is_slow(seconds: list[float], factor: float = SLOW_FACTOR, min_previous: int = SLOW_MIN_PREVIOUS,
            min_seconds: float = SLOW_MIN_SECONDS) -> bool:
    """Whether the last of ``seconds`` took more than ``factor`` x the median of those before it."""
    if len(seconds) <= min_previous:
        return False
    typical = statistics.median(seconds[:-1])
    return seconds[-1] >= min_seconds and seconds[-1] > factor * typical


class SlowEpochWatch:
    """A training callback that says once when an epoch runs far slower than the ones before,
    with the likely cause (other work on the cores) and the flag to try."""

    def __init__(self, choice: ThreadChoice):
        self.choice = choice
        self.seconds: list[float] = []
        self.warned = False

    def on_train_start(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, result) -> None:
        self.seconds.append(float(result.scores.get("seconds", math.nan)))
        if self.warned or not is_slow(self.seconds):
            return
        self.warned = True
        machine = machine_now()
        hint = "--threads 1" if self.choice.intra_op > 1 else "fewer other jobs at once"
        log.warning("epoch %d took %.1f s, %.0fx the median %.2f s of the epochs before: other processes are "
                    "probably busy on the cores (%.1f of %d cores busy, this run included; this run uses %d thread%s); "
                    "try %s", result.epoch, self.seconds[-1], self.seconds[-1] / statistics.median(self.seconds[:-1]),
                    statistics.median(self.seconds[:-1]), machine.load, machine.cores, self.choice.intra_op,
                    "s" if self.choice.intra_op != 1 else "", hint)

    def on_train_end(self, trainer, status: str) -> None:
        pass
