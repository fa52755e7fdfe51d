"""Shared fixtures. Real files from ``../shared/data`` are used in place where present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LATENTLAPSE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The folder of real XMM-Newton and Chandra files; skips where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set LATENTLAPSE_SHARED_DATA to use it)")
    return SHARED_DATA
