"""Open a dump from anywhere and undo its compression, recognised by magic bytes.

Backup file names cannot be trusted (``.sql`` files that are gzip, ``.bz2`` that are plain), so the
first bytes decide. Decompressors live in a small registry (:data:`DECOMPRESSORS`: name, magic bytes,
opener); ``isal`` (igzip) replaces zlib for gzip when it is installed, since it decompresses about three
times faster.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import os
import sys
import zlib
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Optional, Sequence, Tuple, Union

from ..errors import (
    CorruptArchiveError,
    DumpError,
    MissingDependencyError,
    TruncatedDumpError,
    UnknownCompressionError,
)
from ..registry import Registry

log = logging.getLogger(__name__)

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

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
    for decompressor in sorted((d for _, d in DECOMPRESSORS.items()), key=lambda d: -len(d.magic)):
        if head.startswith(decompressor.magic):
            return decompressor.name
    for magic, name in UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            return name
    return "plain"


class _DecompressObjReader:
    """``read(n)`` over a stream of compressed members/frames, decoded with a decompress object.

    File wrappers (``gzip.GzipFile``, isal's ``IGzipFile``) drop what they decoded in the call that meets a
    cut, and ``zstandard``'s stream reader does not notice a cut at all. Here every byte before a cut
    comes out first, and the next read raises :class:`EOFError`. Small input pieces keep the
    decompressor's working set in cache (faster than the file wrappers, measured with isal).
    """

    def __init__(self, raw: IO[bytes], factory: Callable[[], Any], bounded: bool, input_size: int = 64 << 10):
        self._raw = raw
        self._factory = factory
        self._bounded = bounded  #: the decompress object takes max_length (zlib-style)
        self._input_size = input_size
        self._dec = factory()
        self._data = b""  # compressed bytes not yet handed to the decompressor
        self._started = False  # the current member has been fed something
        self._raw_eof = False

    def read1(self, size: int) -> bytes:
        while True:
            if not self._data and not self._raw_eof:
                self._data = self._raw.read(self._input_size) or b""
                self._raw_eof = not self._data
            if not self._started:
                self._data = self._data.lstrip(b"\x00")  # zero padding between or after members
                if not self._data:
                    if self._raw_eof:
                        return b""
                    continue
                self._started = True
            dec = self._dec
            # with no input left, this drains output the decompressor still holds
            out = dec.decompress(self._data, size) if self._bounded else dec.decompress(self._data)
            if dec.eof:
                self._data = dec.unused_data
                self._dec = self._factory()
                self._started = False
            else:
                self._data = dec.unconsumed_tail if self._bounded else b""
                if not out and not self._data and self._raw_eof:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            if out:
                return out

    read = read1

    def close(self) -> None:
        self._raw.close()


def _open_gzip(raw: IO[bytes]) -> Any:
    zlib_module: Any
    try:
        from isal import isal_zlib as zlib_module
    except ImportError:  # pragma: no cover - depends on the extras installed
        zlib_module = zlib
    return _DecompressObjReader(raw, lambda: zlib_module.decompressobj(31), bounded=True)


def _open_bzip2(raw: IO[bytes]) -> IO[bytes]:
    return bz2.BZ2File(raw, mode="rb")


def _open_xz(raw: IO[bytes]) -> IO[bytes]:
    return lzma.LZMAFile(raw, mode="rb")


def _open_zstd(raw: IO[bytes]) -> Any:
    try:
        import zstandard
    except ImportError as exc:
        raise MissingDependencyError("zstandard", "zstd", "reading .zst dumps") from exc
    decompressor = zstandard.ZstdDecompressor()
    return _DecompressObjReader(raw, decompressor.decompressobj, bounded=False)


Opener = Callable[[IO[bytes]], Any]


@dataclass(frozen=True)
class Decompressor:
    """A compression the reader undoes: its name, the magic bytes that start its streams, the function
    wrapping a raw binary stream into a decompressing one (``read1(n)`` or ``read(n)``), and the file-name
    suffixes it usually has (which select backup files; the content decides how they are read)."""

    name: str
    magic: bytes
    open: Opener
    suffixes: Tuple[str, ...] = ()


#: compression name -> :class:`Decompressor` (magic bytes are tried longest first).
DECOMPRESSORS: Registry[Decompressor] = Registry("compression")


def register_decompressor(
    name: str, magic: bytes, opener: Opener, suffixes: Sequence[str] = (), *, replace: bool = False
) -> None:
    """Teach the reader another compression, recognised by ``magic`` (at least two bytes); files ending
    in one of ``suffixes`` (without the dot) are taken as backups."""
    if len(magic) < 2:
        raise ValueError(f"magic bytes of {name!r} are too short to tell a stream by: {magic!r}")
    DECOMPRESSORS.register(name, Decompressor(name, magic, opener, tuple(suffixes)), replace=replace)


def supported_compressions() -> Tuple[str, ...]:
    """The compressions the reader recognises and undoes (besides plain text)."""
    return DECOMPRESSORS.names()


def compressed_suffixes() -> Tuple[str, ...]:
    """File-name suffixes (without the dot) of every registered compression."""
    return tuple(suffix for _, d in DECOMPRESSORS.items() for suffix in d.suffixes)


register_decompressor("gzip", b"\x1f\x8b", _open_gzip, ("gz", "gzip"))
register_decompressor("bzip2", b"BZh", _open_bzip2, ("bz2",))
register_decompressor("xz", b"\xfd7zXZ\x00", _open_xz, ("xz",))
register_decompressor("zstd", b"\x28\xb5\x2f\xfd", _open_zstd, ("zst", "zstd"))


def describe(source: PathOrFile) -> str:
    """A printable name for a path, URI or file object."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or repr(source))


def open_raw(source: PathOrFile, transport_params: Optional[Dict[str, Any]] = None) -> IO[bytes]:
    """Open a path, URI (anything smart_open opens) or ``-`` as a binary stream, without decompressing.

    ``transport_params`` go to smart_open as they are (e.g. ``{"client": boto3.client("s3",
    endpoint_url=…)}`` for an S3-compatible store).
    """
    if not isinstance(source, (str, os.PathLike)):
        return source
    name = os.fspath(source)
    if name == "-":
        return sys.stdin.buffer
    if "://" not in name:
        return open(name, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
    import smart_open

    return smart_open.open(name, "rb", compression="disable", transport_params=transport_params)


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

    def __init__(
        self,
        source: PathOrFile,
        name: Optional[str] = None,
        transport_params: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.name = name or describe(source)
        raw = open_raw(source, transport_params)
        self._owns_raw = isinstance(source, (str, os.PathLike))
        head = raw.read(8)
        if head is None:
            head = b""
        self.compression = sniff_compression(head)
        if self.compression != "plain" and self.compression not in DECOMPRESSORS:
            raw.close()
            raise UnknownCompressionError(self.name, f"{self.compression} archives are not supported")
        try:
            raw.seek(0)
            stream: IO[bytes] = raw
        except (OSError, AttributeError, io.UnsupportedOperation):
            stream = io.BufferedReader(_Peeked(head, raw), buffer_size=1 << 20)
        self._raw = raw
        self._deferred: Optional[DumpError] = None
        if self.compression == "plain":
            self._stream: Any = stream
        else:
            self._stream = DECOMPRESSORS.get(self.compression).open(stream)

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes (fewer only at the end).

        When the stream is cut or corrupt, the bytes decoded before the damage are returned first and
        the error is raised by the next call, so that a reader which needs only the start of a damaged
        dump gets all of it.
        """
        if self._deferred is not None:
            raise self._deferred
        read1 = getattr(self._stream, "read1", None) or self._stream.read
        parts = []
        got = 0
        while got < size:
            try:
                piece = read1(size - got)
            except Exception as exc:
                error = self._translate(exc)
                if error is None:
                    raise
                if not got:
                    raise error from exc
                error.__cause__ = exc
                self._deferred = error
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read1(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes, as the codec hands them out (empty only at the end).

        No joining of pieces: the reader's skip loop searches each piece where it lands, which saves a
        copy of every decompressed byte.
        """
        if self._deferred is not None:
            raise self._deferred
        read1 = getattr(self._stream, "read1", None) or self._stream.read
        try:
            return read1(size)
        except Exception as exc:
            error = self._translate(exc)
            if error is None:
                raise
            raise error from exc

    def _translate(self, exc: Exception) -> Optional[DumpError]:
        """Our error for a codec's exception (None: not a codec failure)."""
        if isinstance(exc, EOFError):
            return TruncatedDumpError(self.name, f"{self.compression} stream ends early ({exc})")
        if isinstance(exc, (OSError, zlib.error, lzma.LZMAError, ValueError)) or type(exc).__name__ in (
            "ZstdError",
            "IsalError",
            "error",
        ):
            return CorruptArchiveError(self.name, f"{self.compression}: {exc}")
        return None

    def compressed_position(self) -> Optional[int]:
        """How far into the compressed input we are (for progress), when the source can tell."""
        try:
            return self._raw.tell()
        except Exception:  # any stream: progress only
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
