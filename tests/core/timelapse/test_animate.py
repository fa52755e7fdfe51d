"""Animations: frame order, the GIF and MP4 in Python, and create_animation.sh with fake tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlapse.core.errors import InputError, MissingExtraError, UsageError
from latentlapse.core.timelapse import animate
from latentlapse.core.timelapse.schedule import frame_name

# One solid colour per frame, so the order of frames in an animation can be read back.
COLOURS = [(230, 40, 40), (40, 160, 40), (40, 40, 230), (240, 200, 0), (120, 0, 160)]
EPOCHS = [1, 5, 10, 50, 100]


def _write_frames(folder: Path, epochs=EPOCHS, total=150, size=(64, 48)) -> list[Path]:
    paths = []
    for epoch, colour in zip(epochs, COLOURS):
        path = folder / frame_name(epoch, total, 0.5 + epoch / 1000)
        Image.new("RGB", size, colour).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def run_dir(tmp_path) -> Path:
    folder = tmp_path / "run_001"
    folder.mkdir()
    _write_frames(folder)
    return folder


def test_frames_sort_by_epoch_number_not_by_name(tmp_path):
    # A resumed run that grew past 999 epochs pads wider: 'epoch_1000' sorts before 'epoch_999'.
    for name in ["epoch_1000_acc0.9000.png", "epoch_999_acc0.8900.png", "epoch_005_acc0.5000.png",
                 "epoch_0010_acc0.6000.png", "epoch_abc.png", ".epoch_001_acc0.1.png.x.tmp", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in animate.frame_paths(tmp_path)] == [
        "epoch_005_acc0.5000.png", "epoch_0010_acc0.6000.png", "epoch_999_acc0.8900.png",
        "epoch_1000_acc0.9000.png",
    ]


def _gif_frames(path: Path) -> tuple[list[tuple[int, int, int]], list[int]]:
    colours, durations = [], []
    with Image.open(path) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            colours.append(gif.convert("RGB").getpixel((10, 10)))
            durations.append(gif.info["duration"])
    return colours, durations


def test_gif_has_every_frame_in_order_and_holds_the_last(run_dir):
    path = animate.write_gif(run_dir, fps=4.0)
    assert path == run_dir / "training_animation.gif"
    colours, durations = _gif_frames(path)
    assert colours == COLOURS
    assert durations == [250, 250, 250, 250, 750]
    assert not list(run_dir.glob(".*.tmp"))


def test_mp4_holds_every_frame_at_an_even_size(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    _write_frames(tmp_path, size=(65, 47))
    path = animate.write_mp4(tmp_path, fps=2.0)
    assert path.name == "training_evolution.mp4"
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(48, 66, 3) for f in reader]
    assert meta["size"] == (66, 48)
    assert len(frames) == len(EPOCHS) + 2  # the last frame held three times as long
    first, last = frames[0][20, 20].astype(int), frames[-1][20, 20].astype(int)
    assert np.abs(first - COLOURS[0]).max() < 30 and np.abs(last - COLOURS[-1]).max() < 30


def test_mp4_without_the_video_extra_names_it(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'latentlapse\[video\]'"):
        animate.write_mp4(run_dir)


def test_animate_run_writes_the_gif_and_optionally_the_mp4(run_dir):
    assert animate.animate_run(run_dir) == [run_dir / "training_animation.gif"]
    pytest.importorskip("imageio_ffmpeg")
    written = animate.animate_run(run_dir, fps=1.0, mp4=True)
    assert [p.name for p in written] == ["training_animation.gif", "training_evolution.mp4"]


def test_animate_run_rejects_a_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no such run folder"):
        animate.animate_run(tmp_path / "run_404")


def test_animate_run_rejects_a_folder_without_frames(tmp_path):
    with pytest.raises(InputError, match=r"no epoch_\*\.png frames to animate"):
        animate.animate_run(tmp_path)


@pytest.mark.parametrize("fps", [0, float("inf")])
def test_animate_run_rejects_a_frame_rate_that_is_not_finite_and_positive(run_dir, fps):
    with pytest.raises(UsageError, match="--fps must be a finite positive number"):
        animate.animate_run(run_dir, fps=fps)


# --------------------------------------------------------------------------- create_animation.sh
FAKE_TOOL = """#!{bash}
{{ pwd; for arg in "$@"; do echo "$arg"; done; }} > "{log}"
"""


@pytest.fixture
def tools(tmp_path) -> Path:
    """A PATH folder with only what the script needs besides ImageMagick/FFmpeg.

    This machine has other 'convert' programs on its PATH; the script must see only ours.
    """
    folder = tmp_path / "tools"
    folder.mkdir()
    for name in ("bash", "dirname", "sort"):
        (folder / name).symlink_to(shutil.which(name))
    return folder


def _fake(tools: Path, name: str, log: Path) -> None:
    path = tools / name
    path.write_text(FAKE_TOOL.format(bash=shutil.which("bash"), log=log))
    path.chmod(0o755)


def _run_script(script: Path | str, tools: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(tools), "HOME": str(cwd), "LC_ALL": "C"}
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)  # a ceiling for a busy machine


def test_script_is_executable_and_calls_magick_with_frames_in_order(run_dir, tools, tmp_path):
    script = animate.write_animation_script(run_dir)
    assert script.name == "create_animation.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    log = tmp_path / "magick.log"
    _fake(tools, "magick", log)
    _fake(tools, "convert", tmp_path / "convert.log")
    result = _run_script("./create_animation.sh", tools, run_dir)  # from inside the folder
    assert result.returncode == 0, result.stderr
    frames = [p.name for p in animate.frame_paths(run_dir)]
    assert log.read_text().splitlines() == [
        str(run_dir), "-delay", "50", "-loop", "0", *frames[:-1], "-delay", "150", frames[-1],
        "training_animation.gif",
    ]
    assert not (tmp_path / "convert.log").exists()


def test_script_falls_back_to_convert_and_works_from_another_folder(run_dir, tools, tmp_path):
    script = animate.write_animation_script(run_dir)
    log = tmp_path / "convert.log"
    _fake(tools, "convert", log)
    result = _run_script(script, tools, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == str(run_dir)
    assert lines[-1] == "training_animation.gif"


def test_script_says_how_to_install_imagemagick_when_it_is_missing(run_dir, tools):
    script = animate.write_animation_script(run_dir)
    result = _run_script(script, tools, run_dir)
    assert result.returncode == 1
    assert "sudo apt-get install imagemagick" in result.stderr
    assert "latentlapse animate ." in result.stderr


def test_script_mp4_runs_the_guides_ffmpeg_command(run_dir, tools, tmp_path):
    script = animate.write_animation_script(run_dir)
    log = tmp_path / "ffmpeg.log"
    _fake(tools, "ffmpeg", log)
    result = _run_script(script, tools, tmp_path, "mp4")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        str(run_dir), "-y", "-framerate", "2", "-pattern_type", "glob", "-i", "epoch_*.png",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "training_evolution.mp4",
    ]


def test_script_mp4_without_ffmpeg_says_how_to_install_it(run_dir, tools):
    script = animate.write_animation_script(run_dir)
    result = _run_script(script, tools, run_dir, "mp4")
    assert result.returncode == 1
    assert "sudo apt-get install ffmpeg" in result.stderr


def test_script_in_a_folder_without_frames_fails_clearly(tmp_path, tools):
    script = animate.write_animation_script(tmp_path)
    _fake(tools, "magick", tmp_path / "magick.log")
    result = _run_script(script, tools, tmp_path)
    assert result.returncode == 1
    assert "no epoch_*.png frames" in result.stderr
    assert not (tmp_path / "magick.log").exists()


def test_script_rejects_an_unknown_mode(run_dir, tools):
    script = animate.write_animation_script(run_dir)
    result = _run_script(script, tools, run_dir, "avi")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_script_written_into_a_folder_keeps_umask_permissions(run_dir):
    script = animate.write_animation_script(run_dir)
    mode = stat.S_IMODE(os.stat(script).st_mode)
    assert mode & 0o111 == 0o111 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
