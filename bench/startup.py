"""How fast the command line answers: ``latentlapse --help`` and ``python main.py --help``.

Each command runs in a fresh process, the commands alternated, ``--repeats`` times; the median
wall time is reported next to a bare ``python -c pass`` (the interpreter's own start-up) measured
the same way. Then each command runs once more under ``python -X importtime`` to list any heavy
library it loaded: torch, numpy, scipy, matplotlib, PIL, scikit-learn, openTSNE, umap and numba
must wait until a command needs them (also for every subcommand's ``--help`` and for an argument
error, which must answer before anything is imported or written). Target: <= 0.5 s.

Last, the library's own import for a user's script: ``import latentlapse`` and ``from latentlapse
import Timelapse`` (not yet used), each ``--repeats`` times under ``python -X importtime``: the
median milliseconds of all imports and of latentlapse's own modules, and the heavy libraries
loaded (torch, matplotlib and scikit-learn must wait until used).

Run: ``python bench/startup.py [--repeats 15]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_range, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5
HEAVY = ("torch", "numpy", "scipy", "matplotlib", "PIL", "sklearn", "openTSNE", "umap", "numba", "astropy")


def latentlapse_command() -> list[str]:
    script = Path(sys.executable).parent / "latentlapse"
    return [str(script)] if script.exists() else [sys.executable, "-m", "latentlapse"]


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_imports(arguments: list[str]) -> list[str]:
    """Top-level packages from HEAVY that ``python -X importtime <arguments>`` loaded."""
    done = subprocess.run([sys.executable, "-X", "importtime", *arguments], cwd=ROOT, capture_output=True, text=True)
    names = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", done.stderr, re.M)}
    return sorted(names & set(HEAVY))


def import_profile(code: str) -> tuple[float, float, list[str]]:
    """``python -X importtime -c code``: milliseconds of all imports, of latentlapse's own
    modules (self times summed), and the HEAVY packages it loaded."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    rows = [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", done.stderr, re.M)]
    own = sum(us for us, name in rows if name.split(".")[0] == "latentlapse")
    heavy = sorted({name.split(".")[0] for _, name in rows} & set(HEAVY))
    return sum(us for us, _ in rows) / 1000, own / 1000, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    commands = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "latentlapse --help": latentlapse_command() + ["--help"],
        "python main.py --help": [sys.executable, "main.py", "--help"],
    }
    for command in commands.values():  # warm the file cache once
        seconds(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(seconds(command))
    print(table(["command", f"wall s, median (min-max) of {args.repeats}"],
                [[name, median_range(t)] for name, t in times.items()]))

    cli = ["-m", "latentlapse"]
    checks = {
        "latentlapse --help": cli + ["--help"],
        "python main.py --help": ["main.py", "--help"],
        "python main.py --epochs 0 (usage error)": ["main.py", "--epochs", "0"],
    }
    for sub in ("train", "simulate", "animate", "compare", "visualize", "predict"):
        checks[f"latentlapse {sub} --help"] = cli + [sub, "--help"]
    print()
    print(table(["command", "heavy libraries imported"],
                [[name, ", ".join(heavy_imports(arguments)) or "none"] for name, arguments in checks.items()]))
    worst = max(statistics.median(times[name]) for name in ("latentlapse --help", "python main.py --help"))
    print(f"target: <= {TARGET_S} s: {'met' if worst <= TARGET_S else 'MISSED'} (slowest median {worst:.3f} s)")

    rows = []
    for code in ("import latentlapse", "from latentlapse import Timelapse"):
        runs = [import_profile(code) for _ in range(args.repeats)]
        rows.append([code, median_range([r[0] for r in runs], "{:.1f}"), median_range([r[1] for r in runs], "{:.1f}"),
                     ", ".join(runs[0][2]) or "none"])
    print()
    print(table(["python -X importtime -c", "all imports, ms", "latentlapse's own, ms", "heavy libraries imported"], rows))


if __name__ == "__main__":
    main()
