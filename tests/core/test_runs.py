import json
import multiprocessing
from pathlib import Path

import pytest

from latentlapse.core import runs


def test_first_run_is_run_001(tmp_path):
    assert runs.allocate_run_dir(tmp_path / "root") == tmp_path / "root" / "run_001"


def test_numbering_continues_after_the_highest_and_never_fills_gaps(tmp_path):
    (tmp_path / "run_001").mkdir()
    (tmp_path / "run_004").mkdir()
    assert runs.allocate_run_dir(tmp_path).name == "run_005"


def test_run_999_is_followed_by_run_1000(tmp_path):
    (tmp_path / "run_999").mkdir()
    assert runs.allocate_run_dir(tmp_path).name == "run_1000"
    assert runs.allocate_run_dir(tmp_path).name == "run_1001"  # numeric order: run_1000 is the highest


def test_junk_names_are_skipped_and_never_touched(tmp_path):
    (tmp_path / "run_abc").mkdir()
    (tmp_path / "run_01").mkdir()
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / "run_002").write_text("a file named like a run")
    new = runs.allocate_run_dir(tmp_path)
    assert new.name == "run_003"
    assert (tmp_path / "run_002").read_text() == "a file named like a run"
    assert (tmp_path / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run_002", "run_003", "run_01", "run_abc"]


def test_existing_run_is_never_modified(tmp_path):
    first = runs.allocate_run_dir(tmp_path)
    (first / "epoch_001_acc0.5000.png").write_bytes(b"frame")
    second = runs.allocate_run_dir(tmp_path)
    assert second != first
    assert sorted(p.name for p in first.iterdir()) == ["epoch_001_acc0.5000.png"]


def _allocate(root: str) -> str:
    return str(runs.allocate_run_dir(root))


def test_sixteen_processes_at_once_get_sixteen_folders(tmp_path):
    root = str(tmp_path / "shared_root")
    with multiprocessing.get_context("spawn").Pool(16) as pool:
        folders = pool.map(_allocate, [root] * 16)
    assert len(set(folders)) == 16
    assert sorted(Path(f).name for f in folders) == [f"run_{i:03d}" for i in range(1, 17)]


def test_metadata_update_merges_and_validates_status(tmp_path):
    runs.update_metadata(tmp_path, status="running", num_classes=4)
    runs.update_metadata(tmp_path, status="completed")
    stored = json.loads((tmp_path / runs.METADATA).read_text())
    assert stored == {"status": "completed", "num_classes": 4}
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        runs.update_metadata(tmp_path, status="done")
