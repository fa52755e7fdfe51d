"""The one place where latentlapse writes files: temp file in the same folder, fsync, replace.

A reader therefore sees either the previous complete file or the new complete file, never a
truncated one — whether the writer raises, the disk fills up, or the process is killed. Temp
names start with a dot and end in ``.tmp`` so they never match an output pattern such as
``epoch_*.png``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from latentlapse.core.errors import RunFailed, UsageError

TMP_SUFFIX = ".tmp"
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # errnos reported as "no space left"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; outputs get the permissions a plain open() would have given.
_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike, mode: str = "wb", *, executable: bool = False
) -> Iterator[IO[Any]]:
    """Yield a file object; on clean exit its content replaces ``path`` in one step.

    On any exception the temp file is removed and ``path`` is left as it was. A full disk (or
    exhausted quota) is reported as a :class:`RunFailed` naming the file. ``executable`` adds
    the x bits.
    """
    path = Path(path)
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'w' or 'wb', got {mode!r}")
    folder = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=folder)
    except OSError as exc:  # no inode left is a full disk too
        if exc.errno in _FULL_DISK:
            raise _full_disk(path) from exc
        raise
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, _FILE_MODE | (0o111 & _FILE_MODE >> 2 if executable else 0))
        if mode == "w":
            handle: IO[Any] = os.fdopen(fd, "w", encoding="utf-8", newline="")
        else:
            handle = os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _FULL_DISK:
            raise _full_disk(path) from exc
        raise
    _fsync_dir(folder)


def _full_disk(path: Path) -> RunFailed:
    """The one-line message of a write that found no space (or no quota) left."""
    return RunFailed(
        f"{path}: no space left on device while writing; free some disk space "
        f"(the previous version of the file, if any, is intact)"
    )


def check_destination(path: str | os.PathLike, flag: str = "--out") -> None:
    """UsageError (exit 2), before any work, unless ``path`` can be written: its folder exists and
    it is not itself a folder (found only at the end, the work would be lost)."""
    given, path = os.fspath(path), Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {given}: is a folder; give the path of a file to write")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {given}: the folder {path.parent} does not exist; create it or choose another {flag}")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str, *, executable: bool = False) -> None:
    """Atomically write UTF-8 ``text`` to ``path`` (newlines written as given)."""
    with atomic_writer(path, "w", executable=executable) as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (NaN written as null)."""
    write_text(path, json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n")


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` by rewriting the whole (small) file atomically."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    write_text(path, old + text)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temp files a killed process left in ``folder`` or below (a run's ``layouts/``);
    return what was removed."""
    removed = []
    for tmp in Path(folder).rglob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _json_safe(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and non-finite floats into plain JSON values."""
    import math

    if isinstance(obj, dict):
        return {str(key): _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(value) for value in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
