"""Compress test data the way backup jobs do, by a short name (``gz``, ``bz2``, ``xz``, ``zst``, ``plain``)."""

from __future__ import annotations

import bz2
import gzip
import lzma

#: File-name suffix of each kind.
SUFFIX = {"gz": ".gz", "bz2": ".bz2", "xz": ".xz", "zst": ".zst", "plain": ""}


def compress(data: bytes, kind: str, *, fast: bool = False) -> bytes:
    """``data`` compressed as ``kind``; ``fast`` trades size for speed (property tests)."""
    if kind == "gz":
        return gzip.compress(data, compresslevel=1 if fast else 9, mtime=0)
    if kind == "bz2":
        return bz2.compress(data, 1 if fast else 9)
    if kind == "xz":
        return lzma.compress(data, preset=0 if fast else 6)
    if kind == "zst":
        import zstandard

        return zstandard.ZstdCompressor(level=1 if fast else 19).compress(data)
    if kind == "plain":
        return data
    raise ValueError(f"unknown compression {kind!r}")
