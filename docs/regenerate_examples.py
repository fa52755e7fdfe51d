"""Rewrite the example numbers of README.md and docs/GUIDE.md from a real run of the documented command.

    python docs/regenerate_examples.py              # run the README's main command here (minutes), then rewrite
    python docs/regenerate_examples.py --run DIR    # use a finished run of exactly that command

Every example in the two files is quoted from the run, never typed: frame names
(``epoch_150_acc0.8352.png``: the epoch's validation accuracy), rows of the progress table, the
numbers quoted for the phases of a run (``epoch 25: 101 validation errors, silhouette 0.17``) and the
diagnosis verdict. They are also recorded, with the machine they came from, in
``docs/examples.json``; ``tests/test_docs.py`` checks that the docs quote exactly those values and
that a short run writes the files and first lines the docs show. Float results depend on the CPU
and the number of threads (``--threads``), so a run on another machine, or with another thread
count, gives other numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "README.md", REPO / "docs" / "GUIDE.md")
EXAMPLES = REPO / "docs" / "examples.json"
COMMAND = ["--classes", "4", "--epochs", "150", "--oversample_target", "1.0", "--visualize_training"]

FRAME = re.compile(r"epoch_(\d{3})_acc\d\.\d{4}\.png")
PROGRESS_ROW = re.compile(r"^( *)(\d+) \| +\d\.\d{4} \| +\d\.\d{4} \| +\d+\.\d{4} \| +\d+\.\d{4}$", re.MULTILINE)
PHASE = re.compile(r"epoch (\d+): (\d+) validation errors,(\s+)silhouette (\d\.\d\d)")  # a line may wrap
PHASE_START = re.compile(r"epoch \d+: \d+ validation errors")  # every phase quote, to catch one PHASE misses
VERDICT = re.compile(r"^Verdict: .*$", re.MULTILINE)
# the settings that may differ from the documented command's without changing what it computes
_FREE = ("runs_dir", "out_dir")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", metavar="RUN_DIR", help="a finished run of the documented command")
    parser.add_argument("--threads", default=None,
                        help="torch threads the given run used, for runs whose run_metadata.json does not record them")
    args = parser.parse_args(argv)
    run_dir = Path(args.run) if args.run else run_documented_command()
    examples = collect(run_dir, args.threads or os.environ.get("OMP_NUM_THREADS", f"default ({os.cpu_count()} cores)"))
    EXAMPLES.write_text(json.dumps(examples, indent=1) + "\n", encoding="utf-8")
    for path in DOCS:
        path.write_text(rewrite(path.read_text(encoding="utf-8"), examples), encoding="utf-8")
        print(f"rewrote {path.relative_to(REPO)}")
    print(f"examples from {run_dir} recorded in {EXAMPLES.relative_to(REPO)}")
    return 0


def run_documented_command() -> Path:
    """Run ``python main.py <COMMAND>`` in a scratch folder of the repo; return its run folder."""
    work = REPO / "bench" / "out" / "doc_examples"
    work.mkdir(parents=True, exist_ok=True)
    print(f"running: python main.py {' '.join(COMMAND)} (in {work})", flush=True)
    done = subprocess.run([sys.executable, str(REPO / "main.py"), *COMMAND], cwd=work, stdout=subprocess.PIPE,
                          text=True, check=True)
    return work / done.stdout.splitlines()[0]


def collect(run_dir: Path, threads: str) -> dict:
    """The example values of a finished run of the documented command (SystemExit if it is not one)."""
    meta = json.loads((run_dir / "run_metadata.json").read_text(encoding="utf-8"))
    check_command(meta)
    frames = {int(FRAME.fullmatch(p.name).group(1)): p.name for p in sorted(run_dir.glob("epoch_*.png"))
              if FRAME.fullmatch(p.name)}
    progress = (run_dir / "training_progress.txt").read_text(encoding="utf-8").splitlines()
    rows = {int(line.split("|")[0]): line for line in progress[2:] if line.strip()}
    with (run_dir / "latent_metrics.csv").open(newline="", encoding="utf-8") as handle:
        latent = {int(r["epoch"]): {"errors": int(float(r["val_errors"])), "silhouette": float(r["silhouette"])}
                  for r in csv.DictReader(handle)}
    verdict = next(line for line in (run_dir / "diagnosis.txt").read_text(encoding="utf-8").splitlines()
                   if line.startswith("Verdict: "))
    final = json.loads((run_dir / "final_metrics.json").read_text(encoding="utf-8"))
    return {
        "command": "python main.py " + " ".join(COMMAND),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": meta.get("threads") or threads,
                    "versions": meta.get("versions")},
        "run_start": meta.get("start_time"),
        "frames": {str(e): name for e, name in frames.items()},
        "progress_header": progress[:2],
        "progress": {str(e): line for e, line in rows.items()},
        "latent": {str(e): v for e, v in latent.items()},
        "verdict": verdict,
        "best_epoch": final.get("best_epoch"),
        "final": {k: final.get(k) for k in ("acc", "balanced_acc", "macro_f1")},
    }


def check_command(meta: dict) -> None:
    """SystemExit unless the run is a completed run of the documented command (any folder)."""
    sys.path.insert(0, str(REPO / "src"))
    from latentlapse.xray import cli

    parsed = cli.config_from_args(cli.command_parser("train", "main.py").parse_args(COMMAND)).to_dict()
    expected = json.loads(json.dumps(parsed))  # as run_metadata.json stores it (tuples become lists)
    config = meta.get("config") or {}
    differ = [k for k in expected if k not in _FREE and config.get(k) != expected[k]]
    if meta.get("status") != "completed" or differ:
        raise SystemExit(f"not a completed run of `python main.py {' '.join(COMMAND)}` "
                         f"(status {meta.get('status')}; settings that differ: {', '.join(differ) or 'none'})")


def rewrite(text: str, examples: dict) -> str:
    """``text`` with every quoted example replaced by the run's value (SystemExit for a quote the run lacks)."""
    def frame(match: re.Match) -> str:
        return _lookup(examples["frames"], match.group(1), "frame", match.group(0))

    def row(match: re.Match) -> str:  # the doc's indentation, the run's numbers
        line = _lookup(examples["progress"], match.group(2), "progress row", match.group(0))
        return f"{match.group(1)}{match.group(2)} |{line.split('|', 1)[1]}"

    def phase(match: re.Match) -> str:
        values = _lookup(examples["latent"], match.group(1), "frame", match.group(0))
        return (f"epoch {int(match.group(1))}: {values['errors']} validation errors,{match.group(3)}"
                f"silhouette {values['silhouette']:.2f}")

    text = FRAME.sub(frame, text)
    text = PROGRESS_ROW.sub(row, text)
    text = PHASE.sub(phase, text)
    return VERDICT.sub(lambda _: examples["verdict"], text)


def quoted(text: str) -> dict[str, list[str]]:
    """What a doc quotes from a run: frame names, progress rows, phase numbers, verdict lines."""
    return {
        "frames": [m.group(0) for m in FRAME.finditer(text)],
        "progress": [m.group(0) for m in PROGRESS_ROW.finditer(text)],
        "phases": [m.group(0) for m in PHASE.finditer(text)],
        "phase_starts": [m.group(0) for m in PHASE_START.finditer(text)],
        "verdicts": [m.group(0) for m in VERDICT.finditer(text)],
    }


def _lookup(table: dict, key: str, what: str, quote: str):
    value = table.get(str(int(key)))
    if value is None:
        raise SystemExit(f"the docs quote {quote!r}, but the run has no {what} of epoch {int(key)}")
    return value


if __name__ == "__main__":
    sys.exit(main())
