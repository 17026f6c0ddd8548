"""Opening and decompressing: magic bytes decide, streams stay streams, damage is reported by name."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.dump.stream import DecompressedStream, sniff_compression
from starcompactor.errors import CorruptArchiveError, TruncatedDumpError, UnknownCompressionError
from tests.support.paths import READER_FIXTURES

READER = READER_FIXTURES
PLAIN = (READER / "latin1.sql").read_bytes()


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


COMPRESS = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": _zstd,
    "plain": lambda d: d,
}


def read_all(stream: DecompressedStream, size: int = 1 << 20) -> bytes:
    parts = []
    while True:
        piece = stream.read(size)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_content_decides_not_the_name(tmp_path, kind):
    path = tmp_path / "backup.sql.bz2"  # the suffix lies for every kind but one
    path.write_bytes(COMPRESS[kind](PLAIN))
    with DecompressedStream(path) as stream:
        assert stream.compression == kind
        assert read_all(stream, 333) == PLAIN


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_unseekable_stream(kind):
    """A pipe cannot seek back over the sniffed bytes: they are pushed back instead."""
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(COMPRESS[kind](PLAIN))
    proc.stdin.close()
    with DecompressedStream(proc.stdout, name="pipe") as stream:
        assert stream.compression == kind
        assert read_all(stream) == PLAIN
    proc.stdout.close()
    proc.wait()


def test_cli_compressors_and_concatenated_members(tmp_path):
    """Files made by the command-line tools, including multi-member gzip (pigz, cat a.gz b.gz)."""
    for tool, kind in (("gzip", "gzip"), ("bzip2", "bzip2"), ("xz", "xz"), ("zstd", "zstd")):
        first = subprocess.run([tool, "-c"], input=PLAIN[:1000], capture_output=True, check=True).stdout
        second = subprocess.run([tool, "-c"], input=PLAIN[1000:], capture_output=True, check=True).stdout
        path = tmp_path / f"x.{tool}"
        path.write_bytes(first + second)
        with DecompressedStream(path) as stream:
            assert stream.compression == kind
            assert read_all(stream) == PLAIN


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"PK\x03\x04", "zip"),
        (b"7z\xbc\xaf\x27\x1c", "7z"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"-- MySQL", "plain"),
    ],
)
def test_sniff(head, kind):
    assert sniff_compression(head + b"\x00" * 8) == kind


def test_unknown_compression_names_the_file(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_bytes(b"\x04\x22\x4d\x18" + os.urandom(100))
    with pytest.raises(UnknownCompressionError, match=r"dump\.sql: unknown compression: lz4"):
        DecompressedStream(path)


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["gzip", "bzip2", "xz", "zstd"]), fraction=st.floats(0.05, 0.95))
def test_cut_stream_yields_what_precedes_the_cut_then_raises(kind, fraction):
    data = (READER / "nova-compact.sql").read_bytes()
    packed = COMPRESS[kind](data)
    cut = packed[: int(len(packed) * fraction)]
    stream = DecompressedStream(io.BytesIO(cut), name="cut.sql")
    got = b""
    with pytest.raises(TruncatedDumpError, match="cut.sql"):
        while True:
            piece = stream.read(1 << 16)
            assert piece, "a cut stream must not end quietly"
            got += piece
    assert data.startswith(got)
    if kind == "gzip":
        # everything the codec can decode from the cut input came out before the error
        try:
            from isal import isal_zlib as zlib_module
        except ImportError:  # pragma: no cover
            import zlib as zlib_module
        assert len(got) == len(zlib_module.decompressobj(31).decompress(cut))


def test_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(PLAIN * 50, mtime=0))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(CorruptArchiveError, match=r"bad\.gz: corrupt archive: gzip"):
        read_all(DecompressedStream(path))


def test_trailing_garbage_after_gzip_is_corruption(tmp_path):
    path = tmp_path / "garbage.gz"
    path.write_bytes(gzip.compress(PLAIN) + b"not gzip at all")
    with pytest.raises(CorruptArchiveError, match="garbage.gz"):
        read_all(DecompressedStream(path))
