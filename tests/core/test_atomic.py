import errno
import os
import stat

import pytest

from latentlapse.core import atomic
from latentlapse.core.errors import RunFailed


def test_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    atomic.write_text(target, "first")
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_exception_mid_write_keeps_previous_content(tmp_path):
    target = tmp_path / "model.pt"
    atomic.write_bytes(target, b"good checkpoint")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_writer(target, "wb") as handle:
            handle.write(b"half a check")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"good checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_full_disk_is_reported_as_run_failure_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "frame.png"
    atomic.write_bytes(target, b"old frame")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(RunFailed, match=r"frame\.png: no space left on device"):
        atomic.write_bytes(target, b"new frame")
    assert target.read_bytes() == b"old frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]


def test_permissions_follow_umask_and_scripts_are_executable(tmp_path):
    plain = tmp_path / "a.txt"
    script = tmp_path / "run.sh"
    atomic.write_text(plain, "x")
    atomic.write_text(script, "#!/bin/sh\n", executable=True)
    assert stat.S_IMODE(plain.stat().st_mode) & 0o444 == 0o444 & ~_umask()
    assert os.access(script, os.X_OK)
    assert not os.access(plain, os.X_OK)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_append_and_json_helpers(tmp_path):
    atomic.append_text(tmp_path / "log.txt", "a\n")
    atomic.append_text(tmp_path / "log.txt", "b\n")
    assert (tmp_path / "log.txt").read_text() == "a\nb\n"
    atomic.write_json(tmp_path / "m.json", {"x": float("nan"), "y": (1, 2)})
    assert (tmp_path / "m.json").read_text() == '{\n  "x": null,\n  "y": [\n    1,\n    2\n  ]\n}\n'


def test_stale_temps_are_removed(tmp_path):
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "last.pt").write_bytes(b"complete")
    removed = atomic.remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [".last.pt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
