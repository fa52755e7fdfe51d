"""Fault injection for the reliability tests: a full disk for files whose name matches a pattern.

Put this folder on PYTHONPATH with ``LATENTLAPSE_TEST_ENOSPC=<glob>`` set, and every Python
process started from then on — the spawned frame worker included — fails ``os.fsync`` of a
matching file with ENOSPC (after ``LATENTLAPSE_TEST_ENOSPC_SKIP`` successful ones). The tests use
:func:`failing_fsync` in-process too. Linux only: the file's name comes from /proc/self/fd.
"""

from __future__ import annotations

import errno
import fnmatch
import os


def failing_fsync(pattern: str, skip: int = 0, real=os.fsync):
    """An ``os.fsync`` that raises ENOSPC for files whose base name matches ``pattern``."""
    matches = [0]

    def fsync(fd):
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if fnmatch.fnmatch(name, pattern):
            matches[0] += 1
            if matches[0] > skip:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    return fsync


if __name__ == "sitecustomize" and os.environ.get("LATENTLAPSE_TEST_ENOSPC"):
    os.fsync = failing_fsync(os.environ["LATENTLAPSE_TEST_ENOSPC"],
                             int(os.environ.get("LATENTLAPSE_TEST_ENOSPC_SKIP", "0")))
