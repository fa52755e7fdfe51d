"""Helpers for the public API's tests: load an example by path, check a run folder is complete."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_example(name: str):
    """The module ``examples/<name>.py`` (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_complete_run(run: Path, frames: list[int], n_classes: int) -> None:
    """What a CLI run with the time-lapse leaves: frames, GIF, layouts, metrics, dynamics,
    diagnosis, report with its explorer, metadata marked completed, no temp file."""
    meta = json.loads((run / "run_metadata.json").read_text())
    assert meta["status"] == "completed", meta
    assert sorted(int(p.name[6:9]) for p in run.glob("epoch_*.png")) == frames
    assert sorted(int(p.name[6:9]) for p in (run / "layouts").glob("epoch_*.npz")) == frames
    assert (run / "training_animation.gif").stat().st_size > 0
    assert len((run / "latent_metrics.csv").read_text().splitlines()) == len(frames) + 1
    assert (run / "dynamics.csv").is_file() and (run / "dynamics.png").is_file()
    assert (run / "diagnosis.txt").read_text().strip() and json.loads((run / "diagnosis.json").read_text())
    assert json.loads((run / "final_metrics.json").read_text())["class_names"] == meta["class_names"]
    assert len(meta["class_names"]) == n_classes
    page = (run / "report.html").read_text()
    assert 'id="explorer-data"' in page and '"dynamics":{"epochs":[' in page
    assert not list(run.rglob("*.tmp"))
