"""Training under torchrun: 2 CPU processes with gloo against one process on the same tiny data.

The torchrun jobs run as subprocesses (``python -m torch.distributed.run``), as a user starts them.
"""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
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


# ------------------------------------------------------------------------------ predict under torchrun
def _torchrun_predict(checkpoint, data, out) -> subprocess.CompletedProcess:
    command = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "latentlapse",
               "predict", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out)]
    return subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)


def _fits_copy(tiny_spectra, folder):
    Table = pytest.importorskip("astropy.table").Table

    from latentlapse.xray.data.readers import load_dataset
    from latentlapse.xray.data.writers import write_dataset

    write_dataset(folder / "spectra.csv", load_dataset(tiny_spectra))
    Table.read(folder / "spectra.csv", format="ascii.csv").write(folder / "spectra.fits")
    return folder / "spectra.fits"


@pytest.mark.parametrize("source, suffix", [("text", ".csv"), ("fits", ".fits")])
def test_predict_under_torchrun_merges_the_ranks_slices_into_the_single_process_file(
        single_and_ddp, tiny_spectra, tmp_path, monkeypatch, source, suffix):
    """Each rank classifies a contiguous half of the 300 sources; rank 0 writes the one file, row
    for row the file one process writes, and no part is left behind."""
    from latentlapse.xray.predict import predict_file

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    checkpoint = single_and_ddp[0] / "best.pt"
    data = tiny_spectra if source == "text" else _fits_copy(tiny_spectra, tmp_path)
    (tmp_path / "out").mkdir()
    one, two = tmp_path / f"one{suffix}", tmp_path / "out" / f"two{suffix}"
    predict_file(str(checkpoint), str(data), str(one))
    done = _torchrun_predict(checkpoint, data, two)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("300 sources classified") == 1  # rank 0 alone reports
    assert [p.name for p in (tmp_path / "out").iterdir()] == [two.name]  # the parts are gone
    if suffix == ".csv":
        ours, theirs = (list(csv.DictReader(open(path))) for path in (two, one))
        assert [r["id"] for r in ours] == [r["id"] for r in theirs]  # input order, each source once
        assert [r["predicted_class"] for r in ours] == [r["predicted_class"] for r in theirs]
        assert [r["true_class"] for r in ours] == [r["true_class"] for r in theirs]
        for mine, other in zip(ours, theirs):
            assert [float(mine[k]) for k in mine if k.startswith("p_")] == pytest.approx(
                [float(other[k]) for k in other if k.startswith("p_")], abs=2e-6)
    else:
        from astropy.table import Table

        ours, theirs = Table.read(two), Table.read(one)
        assert ours.colnames == theirs.colnames and len(ours) == len(theirs) == 300
        for name in ours.colnames:
            if name.startswith("p_"):
                np.testing.assert_allclose(ours[name], theirs[name], atol=2e-6)
            else:
                assert list(ours[name]) == list(theirs[name])


def test_a_bad_row_in_one_ranks_slice_stops_both_and_writes_nothing(single_and_ddp, tiny_spectra, tmp_path):
    lines = tiny_spectra.read_text().splitlines(keepends=True)
    data_lines = [i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    bad = data_lines[-10]  # in rank 1's half
    fields = lines[bad].split()
    fields[3] = "oops"
    lines[bad] = " ".join(fields) + "\n"
    data = tmp_path / "bad.txt"
    data.write_text("".join(lines))
    (tmp_path / "out").mkdir()
    done = _torchrun_predict(single_and_ddp[0] / "best.pt", data, tmp_path / "out" / "p.csv")
    assert done.returncode != 0
    assert f"line {bad + 1}, column 4: 'oops' is not a number" in done.stderr
    assert "rank 1 of 2 stopped" in done.stderr  # rank 0 ends with it, naming it
    assert list((tmp_path / "out").iterdir()) == []  # no output, no part
