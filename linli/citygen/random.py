"""Deterministic random streams: one independent generator per (seed, purpose, part)."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, purpose: str, *parts: int) -> np.random.Generator:
    """A generator that depends only on the seed, a named purpose and integer parts.

    Naming each stream keeps outputs stable when another stage draws more or fewer numbers,
    and chunking by community keeps them independent of how work is batched.
    """
    return np.random.default_rng([seed, zlib.crc32(purpose.encode()), *parts])


def split_total(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to `weights` that add up to exactly `total` (largest remainder)."""
    share = total * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    short = total - counts.sum()
    if short:
        counts[np.argsort(-(share - counts), kind="stable")[:short]] += 1
    return counts
