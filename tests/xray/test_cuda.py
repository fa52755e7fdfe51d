"""``--device cuda``: training (one process and, with two GPUs, torchrun with NCCL) on a GPU.

Skipped where PyTorch sees no CUDA device; the CPU paths are covered everywhere else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentlapse.xray import pipeline
from latentlapse.xray.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: PyTorch sees no GPU here")


@pytest.fixture(scope="module")
def spectra(tmp_path_factory) -> Path:
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    path = tmp_path_factory.mktemp("cuda") / "spectra.txt"
    write_dataset(path, simulate_dataset(n=300, seed=1))
    return path


@needs_cuda
def test_a_cuda_run_completes_and_records_its_device(spectra, tmp_path):
    result = pipeline.train(TrainConfig(data=str(spectra), epochs=2, device="cuda", runs_dir=str(tmp_path)))
    meta = json.loads((result.run_dir / "run_metadata.json").read_text())
    assert result.status == "completed" and meta["device"] == "cuda" and meta["world_size"] == 1
    history = (result.run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="torchrun with NCCL needs two CUDA devices")
def test_torchrun_with_nccl_on_two_gpus(spectra, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "main.py"), "--data", str(spectra), "--epochs", "2", "--device", "cuda",
               "--runs_dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "run_001" / "run_metadata.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2 and meta["device"] == "cuda:0"
