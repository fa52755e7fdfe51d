"""The time-lapse as one file: ``training_animation.gif`` in pure Python, ``training_evolution.mp4``
through the ``video`` extra, and the guide's ``create_animation.sh`` for ImageMagick / FFmpeg.

Frames are the run's ``epoch_*.png`` files in order of their epoch number. The last frame is held
three times as long, so a looping animation pauses on the result before starting again.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.errors import InputError, MissingExtraError, UsageError

logger = logging.getLogger(__name__)

ANIMATION_GIF = "training_animation.gif"
ANIMATION_MP4 = "training_evolution.mp4"
SCRIPT = "create_animation.sh"

LAST_FRAME_HOLD = 3
GIF_COLORS = 128
_PALETTE_REDUCTION = 4
_MIN_GIF_FRAME_MS = 20  # browsers show shorter GIF frame delays as 100 ms
_FRAME_PATTERN = re.compile(r"^epoch_(\d+)(?:_.*)?\.png$")


def frame_paths(run_dir: str | os.PathLike) -> list[Path]:
    """The run's ``epoch_*.png`` frames, ordered by epoch number (``epoch_1000`` after
    ``epoch_999``, whatever the zero-padding)."""
    return [path for _, path in frame_files(run_dir)]


def frame_files(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the run's frames, in epoch order."""
    from latentlapse.core.timelapse.schedule import epoch_files

    return epoch_files(run_dir, _FRAME_PATTERN)


def write_gif(run_dir: str | os.PathLike, fps: float = 2.0, thumbnails: Mapping[str, Any] | None = None) -> Path:
    """Write ``training_animation.gif`` from the run's frames (Pillow, no ImageMagick needed).

    All frames share one adaptive palette of ``GIF_COLORS`` colours, fitted to reduced copies
    of every frame, so a class colour does not flicker from frame to frame; no dithering keeps
    flat areas and the red error markers clean. Written atomically.

    ``thumbnails`` maps frame file names to their :func:`palette_thumbnail`, made when the
    frames were drawn; frames without one are read from disk. With them each frame is decoded
    once instead of twice (the decoding was 0.56 of 0.68 s for 19 frames of 1600 × 700).
    """
    from PIL import Image

    frames = _require_frames(run_dir)
    frame_ms = _frame_ms(fps)
    size = _frame_size(frames[0])
    palette = _shared_palette(frames, size, thumbnails or {})
    images = [
        _load_rgb(path, size).quantize(palette=palette, dither=Image.Dither.NONE) for path in frames
    ]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * LAST_FRAME_HOLD]
    target = Path(run_dir) / ANIMATION_GIF
    with atomic.atomic_writer(target, "wb") as handle:
        images[0].save(
            handle, format="GIF", save_all=True, append_images=images[1:], duration=durations,
            loop=0, optimize=False,
        )
    logger.info("wrote %s (%d frames)", target, len(images))
    return target


def write_mp4(run_dir: str | os.PathLike, fps: float = 2.0) -> Path:
    """Write ``training_evolution.mp4`` (H.264, yuv420p) from the run's frames via imageio-ffmpeg.

    Frames are padded with white to even width and height, as yuv420p requires; the last frame
    is repeated to hold it like the GIF does. ffmpeg writes to a temporary folder and the result
    is copied into place atomically.

    Raises
    ------
    MissingExtraError
        imageio-ffmpeg (the ``video`` extra) is not installed or has no ffmpeg binary.
    """
    frames = _require_frames(run_dir)
    _check_fps(fps)
    imageio_ffmpeg = _imageio_ffmpeg()
    size = _frame_size(frames[0])
    even = (size[0] + size[0] % 2, size[1] + size[1] % 2)
    target = Path(run_dir) / ANIMATION_MP4
    with tempfile.TemporaryDirectory(prefix="latentlapse-mp4-") as scratch:
        scratch_file = Path(scratch) / ANIMATION_MP4
        writer = imageio_ffmpeg.write_frames(
            str(scratch_file), even, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
            macro_block_size=1, ffmpeg_log_level="error",
        )
        writer.send(None)
        try:
            for path in frames + [frames[-1]] * (LAST_FRAME_HOLD - 1):
                writer.send(_padded_rgb(path, size, even).tobytes())
        finally:
            writer.close()
        with open(scratch_file, "rb") as source, atomic.atomic_writer(target, "wb") as handle:
            shutil.copyfileobj(source, handle)
    logger.info("wrote %s (%d frames)", target, len(frames))
    return target


def write_animation_script(run_dir: str | os.PathLike) -> Path:
    """Write the guide's ``create_animation.sh`` (executable) into the run folder."""
    target = Path(run_dir) / SCRIPT
    atomic.write_text(target, _SCRIPT_TEXT, executable=True)
    return target


def animate_run(run_dir: str | os.PathLike, fps: float = 2.0, mp4: bool = False) -> list[Path]:
    """``latentlapse animate RUN_DIR``: rebuild the GIF (and the MP4) of a run; the paths written.

    Raises
    ------
    InputError
        The folder does not exist or holds no ``epoch_*.png`` frames.
    UsageError
        ``fps`` is not a positive number.
    MissingExtraError
        ``mp4`` without the ``video`` extra.
    """
    _check_fps(fps)
    _require_frames(run_dir)
    written = [write_gif(run_dir, fps)]
    if mp4:
        written.append(write_mp4(run_dir, fps))
    return written


def _require_frames(run_dir: str | os.PathLike) -> list[Path]:
    """The frames of ``run_dir``, or an InputError saying why there are none."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such run folder")
    frames = frame_paths(folder)
    if not frames:
        raise InputError(
            f"{folder}: no epoch_*.png frames to animate; "
            f"train with --visualize_training (frames=True in the library) to draw them"
        )
    return frames


def _check_fps(fps: float) -> None:
    """Reject a frame rate that is not a positive finite number."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise UsageError(f"--fps must be a finite positive number of frames per second, got {fps!r}")


def _frame_ms(fps: float) -> int:
    """Milliseconds per GIF frame; rates above 50 fps are clipped (with a warning) because
    viewers slow shorter delays down to 100 ms."""
    _check_fps(fps)
    frame_ms = round(1000.0 / fps)
    if frame_ms < _MIN_GIF_FRAME_MS:
        logger.warning("GIF frame rate %.4g fps is too high for viewers; using 50 fps", fps)
        frame_ms = _MIN_GIF_FRAME_MS
    return frame_ms


def _frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of a frame."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _load_rgb(path: Path, size: tuple[int, int]):
    """A frame as an RGB image of ``size`` (frames of another size are resized to fit)."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    if rgb.size != size:
        logger.warning("%s is %dx%d, not %dx%d like the first frame; resizing", path.name, *rgb.size, *size)
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return rgb


def palette_thumbnail(rgb):
    """A frame reduced to a quarter of its width and height, sampled without blending so that
    only colours the frame really contains are seen: its share of the GIF's palette montage.

    ``rgb`` is an (height, width, 3) uint8 array or a PIL image.
    """
    from PIL import Image

    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    return image.resize(_thumbnail_size(image.size), Image.Resampling.NEAREST)


def _thumbnail_size(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, size[0] // _PALETTE_REDUCTION), max(1, size[1] // _PALETTE_REDUCTION)


def _shared_palette(paths: list[Path], size: tuple[int, int], thumbnails: Mapping[str, Any]):
    """A palette image (median cut, ``GIF_COLORS``) fitted to a montage of every frame.

    Each frame enters as its :func:`palette_thumbnail` (from ``thumbnails`` by file name when
    it is there and of the right size, else read from disk); a 100-frame run needs about 20 MB.
    """
    from PIL import Image

    thumb = _thumbnail_size(size)
    montage = Image.new("RGB", (thumb[0], thumb[1] * len(paths)), "white")
    for i, path in enumerate(paths):
        small = thumbnails.get(path.name)
        if small is None or small.size != thumb:
            small = palette_thumbnail(_load_rgb(path, size))
        montage.paste(small, (0, i * thumb[1]))
    return montage.quantize(colors=GIF_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _padded_rgb(path: Path, size: tuple[int, int], even: tuple[int, int]) -> np.ndarray:
    """A frame as a contiguous (height, width, 3) uint8 array, padded with white to ``even``."""
    array = np.asarray(_load_rgb(path, size), dtype=np.uint8)
    out = np.full((even[1], even[0], 3), 255, dtype=np.uint8)
    out[: array.shape[0], : array.shape[1]] = array
    return out


def _imageio_ffmpeg():
    """The imageio_ffmpeg module with a usable ffmpeg binary, or a MissingExtraError."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise MissingExtraError("imageio-ffmpeg", "video", "writing MP4 animations") from exc
    return imageio_ffmpeg


_SCRIPT_TEXT = r"""#!/usr/bin/env bash
# Build this run's animation from its epoch_*.png frames, in epoch order.
#   ./create_animation.sh        training_animation.gif with ImageMagick (magick or convert)
#   ./create_animation.sh mp4    training_evolution.mp4 with FFmpeg
# Works from any folder. Without either tool, the same GIF in pure Python:  latentlapse animate .
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-gif}"
if [ "$mode" != "gif" ] && [ "$mode" != "mp4" ]; then
  echo "usage: $0 [gif|mp4]" >&2
  exit 2
fi

shopt -s nullglob
unsorted=(epoch_*.png)
if [ "${#unsorted[@]}" -eq 0 ]; then
  echo "create_animation.sh: no epoch_*.png frames in $PWD" >&2
  exit 1
fi

if [ "$mode" = "mp4" ]; then
  if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "FFmpeg is not installed. Install it:  sudo apt-get install ffmpeg" >&2
    echo "or write the MP4 in Python:  latentlapse animate . --mp4   (pip install 'latentlapse[video]')" >&2
    exit 1
  fi
  ffmpeg -y -framerate 2 -pattern_type glob -i 'epoch_*.png' \
         -c:v libx264 -pix_fmt yuv420p training_evolution.mp4
  echo "wrote $PWD/training_evolution.mp4"
  exit 0
fi

if command -v magick >/dev/null 2>&1; then
  im=magick
elif command -v convert >/dev/null 2>&1; then
  im=convert
else
  echo "ImageMagick is not installed (no 'magick' or 'convert' command). Install it:" >&2
  echo "  sudo apt-get install imagemagick" >&2
  echo "or build the GIF in pure Python, no ImageMagick needed:  latentlapse animate ." >&2
  exit 1
fi

# Order by epoch number (field 2 of epoch_NNN_accX.png), whatever the zero-padding.
frames=()
while IFS= read -r name; do
  frames+=("$name")
done < <(printf '%s\n' "${unsorted[@]}" | sort -t_ -k2,2n)

# 2 frames per second; the last frame is held three times as long.
last=$(( ${#frames[@]} - 1 ))
"$im" -delay 50 -loop 0 "${frames[@]:0:last}" -delay 150 "${frames[last]}" training_animation.gif
echo "wrote $PWD/training_animation.gif"
"""
