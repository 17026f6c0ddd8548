"""Open a dump from anywhere and undo its compression, recognised by magic bytes.

Backup file names cannot be trusted (``.sql`` files that are gzip, ``.bz2`` that are plain), so the
first bytes decide. Decompressors live in a small registry; ``isal`` (igzip) replaces zlib for gzip when
it is installed, since it decompresses about three times faster.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import os
import sys
import zlib
from typing import IO, Any, Callable, Dict, Optional, Union

from .errors import CorruptArchiveError, MissingDependencyError, TruncatedDumpError, UnknownCompressionError

log = logging.getLogger(__name__)

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

#: (magic prefix, compression name), longest first where prefixes overlap.
MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

#: Compressions we recognise but cannot read.
UNSUPPORTED_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x89LZO", "lzop"),
    (b"\x5d\x00\x00", "lzma"),
)


def sniff_compression(head: bytes) -> str:
    """Name the compression of a stream from its first bytes ("plain" when none is recognised)."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    for magic, name in UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            return name
    return "plain"


def _open_gzip(raw: IO[bytes]) -> IO[bytes]:
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - depends on the extras installed
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    return igzip.IGzipFile(fileobj=raw, mode="rb")


def _open_bzip2(raw: IO[bytes]) -> IO[bytes]:
    return bz2.BZ2File(raw, mode="rb")


def _open_xz(raw: IO[bytes]) -> IO[bytes]:
    return lzma.LZMAFile(raw, mode="rb")


def _open_zstd(raw: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError as exc:
        raise MissingDependencyError("zstandard", "zstd", "reading .zst dumps") from exc
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)


#: compression name -> function wrapping a raw binary stream into a decompressing one.
DECOMPRESSORS: Dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gzip": _open_gzip,
    "bzip2": _open_bzip2,
    "xz": _open_xz,
    "zstd": _open_zstd,
}


def register_decompressor(name: str, magic: bytes, opener: Callable[[IO[bytes]], IO[bytes]]) -> None:
    """Teach the reader another compression, recognised by ``magic``."""
    global MAGIC
    DECOMPRESSORS[name] = opener
    MAGIC = ((magic, name),) + tuple(m for m in MAGIC if m[1] != name)


def describe(source: PathOrFile) -> str:
    """A printable name for a path, URI or file object."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or repr(source))


def open_raw(source: PathOrFile) -> IO[bytes]:
    """Open a path, URI (anything smart_open opens) or ``-`` as a binary stream, without decompressing."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    name = os.fspath(source)
    if name == "-":
        return sys.stdin.buffer
    if "://" not in name:
        return open(name, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
    import smart_open

    return smart_open.open(name, "rb", compression="disable")


class _Peeked(io.RawIOBase):
    """A raw stream with its first bytes pushed back (for sources that cannot seek: stdin, HTTP)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        if not data:
            return 0
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        try:
            self._rest.close()
        finally:
            super().close()


class DecompressedStream:
    """Binary ``read(n)`` over the decompressed content, turning codec failures into our errors."""

    def __init__(self, source: PathOrFile, name: Optional[str] = None) -> None:
        self.name = name or describe(source)
        raw = open_raw(source)
        self._owns_raw = isinstance(source, (str, os.PathLike))
        head = raw.read(8)
        if head is None:
            head = b""
        self.compression = sniff_compression(head)
        if self.compression not in DECOMPRESSORS and self.compression != "plain":
            raw.close()
            raise UnknownCompressionError(self.name, f"{self.compression} archives are not supported")
        try:
            raw.seek(0)
            stream: IO[bytes] = raw
        except (OSError, AttributeError, io.UnsupportedOperation):
            stream = io.BufferedReader(_Peeked(head, raw), buffer_size=1 << 20)
        self._raw = raw
        if self.compression == "plain":
            self._stream = stream
        else:
            self._stream = DECOMPRESSORS[self.compression](stream)
        self.compressed_size = _size_of(raw)

    def read(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except EOFError as exc:
            raise TruncatedDumpError(self.name, f"{self.compression} stream ends early ({exc})") from exc
        except (OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
            if "zstd" in type(exc).__module__ or self.compression == "zstd" and "frame" in str(exc).lower():
                raise CorruptArchiveError(self.name, f"zstd: {exc}") from exc
            raise CorruptArchiveError(self.name, f"{self.compression}: {exc}") from exc
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__name__ == "ZstdError":
                raise CorruptArchiveError(self.name, f"zstd: {exc}") from exc
            raise

    def compressed_position(self) -> Optional[int]:
        """How far into the compressed input we are (for progress), when the source can tell."""
        try:
            return self._raw.tell()
        except (OSError, AttributeError, ValueError):
            return None

    def close(self) -> None:
        try:
            if self._stream is not self._raw:
                self._stream.close()
        finally:
            if self._owns_raw:
                self._raw.close()

    def __enter__(self) -> DecompressedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _size_of(raw: IO[bytes]) -> Optional[int]:
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        pass
    size = getattr(raw, "content_length", None) or getattr(raw, "_content_length", None)
    return int(size) if size else None
