"""Shared fixtures. Real files from ``../shared/data`` are used in place where present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from latentlapse.core import threads

# As the command line does before torch or scikit-learn load their OpenMP runtimes: on a busy
# machine, threads that wait sleep instead of spinning (in-process CLI calls come too late for it).
threads.prepare_environment()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The folder of real XMM-Newton and Chandra files; skips where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set LATENTLAPSE_SHARED_DATA to use it)")
    return SHARED_DATA
