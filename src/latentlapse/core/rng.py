"""Named random streams derived from the one ``--seed``.

Every stochastic step takes its own generator from here, so no code touches global RNG state and
adding or removing a consumer (the visualiser's sample, say) cannot shift another stream.
"""

from __future__ import annotations

import hashlib

import numpy as np

STREAMS = (
    "simulate",
    "split",
    "oversample",
    "augment",
    "init",
    "loader",
    "dropout",
    "subsample",
    "projection",
    "label_noise",
    "metrics",
)


def _stream_key(name: str) -> int:
    """A stable integer for a stream name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def seed_sequence(seed: int, name: str) -> np.random.SeedSequence:
    """The SeedSequence of stream ``name``; independent of which other streams exist."""
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}")
    return np.random.SeedSequence([int(seed), _stream_key(name)])


def generator(seed: int, name: str) -> np.random.Generator:
    """A fresh numpy Generator for stream ``name`` of ``seed``."""
    return np.random.default_rng(seed_sequence(seed, name))


def projection_seed(seed: int) -> int:
    """The seed of the 2-D projections (a 31-bit int: what openTSNE and umap-learn accept)."""
    return int_seed(seed, "projection") % (2**31)


def int_seed(seed: int, name: str) -> int:
    """A 63-bit integer seed for libraries that take an int (torch generators, openTSNE)."""
    return int(seed_sequence(seed, name).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)
