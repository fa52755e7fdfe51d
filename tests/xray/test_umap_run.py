"""A UMAP time-lapse ends without Python's "resource_tracker: ... leaked semaphore" warning: the
frame worker exits fast (os._exit), so nothing it opens may stay registered with the tracker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_a_short_umap_run_leaks_no_semaphore(tmp_path):
    pytest.importorskip("umap")
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    data = tmp_path / "spectra.txt"
    write_dataset(data, simulate_dataset(n=300, seed=1))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--data", str(data), "--epochs", "2", "--device", "cpu",
         "--visualize_training", "--viz_every", "1", "--viz_method", "umap", "--viz_train_samples", "60",
         "--viz_val_samples", "40", "--runs_dir", str(tmp_path / "runs"), "--quiet"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "run_001").glob("epoch_*.png"))[-1].startswith("epoch_002_")
    assert "leaked semaphore" not in done.stderr, done.stderr
    assert "resource_tracker" not in done.stderr, done.stderr
