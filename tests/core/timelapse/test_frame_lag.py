"""Frames on time: the lag column (epoch end -> PNG on disk) and the worker's priority while late."""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import time
from dataclasses import replace

import numpy as np
import pytest

from latentlapse.core.timelapse import progress
from latentlapse.core.timelapse.latent_metrics import FRAME_LAG, metric_columns
from latentlapse.core.timelapse.worker import LAG_LIMIT_SECONDS, FrameWorker, _FrameState, urgent

CEILING = 300  # seconds: generous, for a busy machine; the checks wait on events, not on time


@pytest.mark.parametrize("wait, now_urgent, expected", [
    (None, False, False),        # nothing waiting: idle
    (None, True, False),         # caught up: back to idle
    (5.0, False, False),         # a frame on its way
    (LAG_LIMIT_SECONDS + 1, False, True),  # late: normal priority
    (1.0, True, True),           # still catching up (the late frame done, the next one waiting)
])
def test_urgent_from_the_oldest_frames_wait(wait, now_urgent, expected):
    assert urgent(wait, LAG_LIMIT_SECONDS, now_urgent) is expected


@pytest.fixture
def one_frame(feature_sequence, make_snapshot, make_spec, tmp_path):
    """``one_frame(epoch_end)``: a small PCA spec in tmp_path and its epoch-1 snapshot ending then."""

    def make(epoch_end: float):
        frames, train_y, val_y = feature_sequence(n_frames=1, n_train=80, n_val=40, dim=8)
        snapshot = replace(make_snapshot(1, frames[0][0], frames[0][1], val_y), epoch_end=epoch_end)
        return make_spec(tmp_path, train_y, val_y, total_epochs=3, method="pca"), snapshot

    return make


def test_lag_column_is_epoch_end_to_png_on_disk(one_frame, tmp_path):
    epoch_end = time.time() - 7.0
    spec, snapshot = one_frame(epoch_end)
    state = _FrameState()
    state.start(spec)
    kind, _, path, metrics, timing = state.draw(snapshot)
    assert kind == "frame"
    png_on_disk = os.stat(path).st_mtime
    assert 7.0 <= metrics[FRAME_LAG] == timing["lag"] < 7.0 + CEILING
    assert png_on_disk - epoch_end <= metrics[FRAME_LAG] + 0.05  # measured once the PNG was written
    rows = list(csv.DictReader((tmp_path / progress.METRICS_FILE).open()))
    assert list(rows[0])[-1] == FRAME_LAG and float(rows[0][FRAME_LAG]) == pytest.approx(metrics[FRAME_LAG], rel=1e-5)


def test_a_snapshot_without_epoch_end_leaves_the_lag_empty(one_frame, tmp_path):
    spec, snapshot = one_frame(float("nan"))
    state = _FrameState()
    state.start(spec)
    state.draw(snapshot)
    assert next(csv.DictReader((tmp_path / progress.METRICS_FILE).open()))[FRAME_LAG] == ""


def test_metrics_of_a_run_started_before_the_lag_column_keep_their_header(tmp_path):
    old = metric_columns(["A", "B"])
    progress.append_metrics(tmp_path, {c: 1.0 for c in old}, old)
    progress.append_metrics(tmp_path, {c: 2.0 for c in old} | {FRAME_LAG: 3.0}, old + [FRAME_LAG])
    lines = (tmp_path / progress.METRICS_FILE).read_text().splitlines()
    assert lines[0] == ",".join(old) and [len(line.split(",")) for line in lines] == [len(old)] * 3


def _policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def _may_leave_idle() -> bool:
    """Whether this user may move a process out of the idle policy (CAP_SYS_NICE or RLIMIT_NICE),
    probed on a throwaway ``sleep``."""
    probe = subprocess.Popen(["sleep", "30"])
    try:
        os.sched_setscheduler(probe.pid, os.SCHED_IDLE, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, probe.pid, 19)
        os.sched_setscheduler(probe.pid, os.SCHED_OTHER, os.sched_param(0))
        return True
    except PermissionError:
        return False
    finally:
        probe.kill()
        probe.wait()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not os.path.exists("/proc/self/task"),
                    reason="Linux scheduling policies")
def test_a_late_frame_raises_the_real_worker_until_it_caught_up(one_frame, caplog):
    caplog.set_level(logging.INFO, logger="latentlapse")
    spec, snapshot = one_frame(time.time() - LAG_LIMIT_SECONDS - 5)  # already late
    worker = FrameWorker(spec)
    try:
        assert _policies(worker.pid) == {os.SCHED_IDLE}
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 19
        worker.submit(snapshot)
        worker.keep_up()
        behind = [r.getMessage() for r in caplog.records if "frames are falling behind" in r.getMessage()]
        assert len(behind) == 1 and "a frame has waited" in behind[0] and "cores busy, this run included" in behind[0]
        if _may_leave_idle():
            assert worker.urgent and _policies(worker.pid) == {os.SCHED_OTHER}
            assert os.getpriority(os.PRIO_PROCESS, worker.pid) == os.getpriority(os.PRIO_PROCESS, 0)
        else:
            assert "may not raise the frame worker's priority" in behind[0]
        worker.keep_up()  # still late: said once per episode
        assert sum("falling behind" in r.getMessage() for r in caplog.records) == 1
        deadline = time.monotonic() + CEILING
        messages = []
        while not any(m[0] == "frame" for m in messages) and time.monotonic() < deadline:
            messages += worker.poll()
            worker.check()
            time.sleep(0.05)
        assert [m[0] for m in messages] == ["frame"] and messages[0][4]["lag"] > LAG_LIMIT_SECONDS
        worker.keep_up()
        assert not worker.urgent and _policies(worker.pid) == {os.SCHED_IDLE}
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 19
    finally:
        worker.terminate()
    assert np.isfinite(messages[0][3][FRAME_LAG])


def test_a_worker_that_finished_just_before_the_parent_looked_counts_as_finished(one_frame):
    """On a busy machine the worker can send ``finished`` and exit between two of the parent's
    checks; the parent must read the message, not call the worker dead."""
    spec, _ = one_frame(time.time())
    worker = FrameWorker(spec)
    try:
        worker._inbox.put(("finish", {"status": "interrupted"}))  # the worker finishes and exits at once
        worker.keep_up(finishing=True)  # as finish() does: an idle-priority worker may starve on a busy machine
        worker._process.join(timeout=CEILING)
        assert worker.exitcode == 0
        seen = []
        assert worker.finish("interrupted", seen.append, lambda: False) is True
        assert ("finished",) in seen
    finally:
        worker.terminate()
