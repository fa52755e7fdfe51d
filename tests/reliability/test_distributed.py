"""Training under torchrun: 2 CPU processes with gloo against one process on the same tiny data.

The torchrun jobs run as subprocesses (``python -m torch.distributed.run``), as a user starts them.
"""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from latentlapse.xray import distributed, pipeline
from latentlapse.core.errors import UsageError

from .support import INJECT, MAIN, PYTHON, VIZ_FLAGS, assert_folder_consistent, cli_args, metadata, subprocess_env

EPOCHS = 4


def _torchrun(args: list[str], **env: str) -> subprocess.CompletedProcess:
    command = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(MAIN), *args]
    return subprocess.run(command, env=subprocess_env(**env), capture_output=True, text=True, timeout=300)


def _history(run_dir) -> list[dict[str, float]]:
    with open(run_dir / "history.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def single_and_ddp(tiny_spectra, tmp_path_factory):
    """The same run with one process and with two (torchrun, gloo)."""
    root = tmp_path_factory.mktemp("ddp")
    single = subprocess.run([PYTHON, str(MAIN), *cli_args(tiny_spectra, root / "single", EPOCHS), "--quiet"],
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = _torchrun([*cli_args(tiny_spectra, root / "ddp", EPOCHS), *VIZ_FLAGS])  # frames leave weights alone
    assert ddp.returncode == 0, ddp.stderr
    return root / "single" / "run_001", root / "ddp", ddp


def test_two_gloo_processes_write_one_run_folder(single_and_ddp):
    _, ddp_root, ddp = single_and_ddp
    assert [p.name for p in ddp_root.iterdir()] == ["run_001"]  # rank 1 made no folder of its own
    run = ddp_root / "run_001"
    assert_folder_consistent(run)
    meta = metadata(run)
    assert meta["status"] == "completed" and meta["world_size"] == 2 and meta["epochs_run"] == EPOCHS
    assert {"best.pt", "last.pt", "history.csv", "final_metrics.json"} <= {p.name for p in run.iterdir()}
    assert len(list(run.glob("epoch_*.png"))) == EPOCHS  # rank 0's frame worker, one frame an epoch
    assert ddp.stdout.count("run completed:") == 1  # rank 0 alone announces
    assert ddp.stderr.count(f"epoch {EPOCHS}/{EPOCHS}") == 1


def test_ddp_scores_every_validation_source_once_and_matches_one_process(single_and_ddp):
    single, ddp_root, _ = single_and_ddp
    run = ddp_root / "run_001"
    final, reference = (json.loads((r / "final_metrics.json").read_text()) for r in (run, single))
    support = [final["per_class"][c]["support"] for c in final["class_names"]]
    assert support == [reference["per_class"][c]["support"] for c in reference["class_names"]]
    ours, theirs = _history(run), _history(single)
    assert len(ours) == len(theirs) == EPOCHS
    # the first evaluation is of the same initial weights after one epoch of the same global batches
    assert ours[0]["val_loss"] == pytest.approx(theirs[0]["val_loss"], abs=0.02)
    for mine, other in zip(ours, theirs):
        assert mine["train_loss"] == pytest.approx(other["train_loss"], rel=0.15)
        assert mine["val_loss"] == pytest.approx(other["val_loss"], rel=0.15)
    assert abs(ours[-1]["val_balanced_acc"] - theirs[-1]["val_balanced_acc"]) < 0.2


def test_a_failing_rank_ends_both_and_the_run_resumes_with_two(tiny_spectra, tmp_path):
    """Rank 0 hits a full disk writing last.pt of epoch 2: both ranks end, the run is failed, and
    torchrun with two processes resumes it to completion."""
    runs_dir = tmp_path / "runs"
    broken = _torchrun([*cli_args(tiny_spectra, runs_dir, EPOCHS), *VIZ_FLAGS], PYTHONPATH=str(INJECT),
                       LATENTLAPSE_TEST_ENOSPC=".last.pt.*.tmp", LATENTLAPSE_TEST_ENOSPC_SKIP="1")
    assert broken.returncode != 0
    run = runs_dir / "run_001"
    meta = metadata(run)
    assert meta["status"] == "failed" and meta["epochs_run"] == 1, broken.stderr[-3000:]
    assert_folder_consistent(run)
    resumed = _torchrun(["--resume", str(run)])
    assert resumed.returncode == 0, resumed.stderr
    meta = metadata(run)
    assert meta["status"] == "completed" and meta["resumed_from_epoch"] == 1
    assert [row["epoch"] for row in _history(run)] == [1, 2, 3, 4]
    assert sorted(p.name[:9] for p in run.glob("epoch_*.png")) == [f"epoch_{e:03d}" for e in range(1, EPOCHS + 1)]


def test_resume_with_another_number_of_processes_is_refused(tiny_spectra, tmp_path, monkeypatch):
    run = tmp_path / "run_001"
    run.mkdir()
    (run / "run_metadata.json").write_text(json.dumps({
        "status": "interrupted", "world_size": 2, "data": {"sha256": "x"},
        "config": {"data": str(tiny_spectra), "device": "cpu", "epochs": 2},
    }))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.requested_world_size() == 1
    with pytest.raises(UsageError, match="trained with 2 process.*has 1.*torchrun --nproc_per_node 2"):
        pipeline.resume(run)
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it: refused before joining
    with pytest.raises(UsageError, match="has 3"):
        pipeline.resume(run)
