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
import queue
import sys
import threading
import zlib
from typing import IO, Any, Callable, Dict, Optional, Union

from .errors import (
    CorruptArchiveError,
    DumpError,
    MissingDependencyError,
    TruncatedDumpError,
    UnknownCompressionError,
)

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
        *,
        prefetch: Optional[bool] = None,
    ) -> None:
        self.name = name or describe(source)
        self._prefetch: Optional[_Prefetcher] = None
        self._use_prefetch = PREFETCH if prefetch is None else prefetch
        raw = open_raw(source, transport_params)
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
        self._deferred: Optional[DumpError] = None
        if self.compression == "plain":
            self._stream = stream
        else:
            self._stream = DECOMPRESSORS[self.compression](stream)
        self.compressed_size = _size_of(raw)

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes (fewer only at the end).

        When the stream is cut or corrupt, the bytes decoded before the damage are returned first and
        the error is raised by the next call, so that a reader which needs only the start of a damaged
        dump gets all of it.
        """
        if self._use_prefetch and self.compression != "plain":
            if self._prefetch is None:
                self._prefetch = _Prefetcher(self._read_direct, size, self.name)
            return self._prefetch.read(size)
        return self._read_direct(size)

    def read1(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes, as the codec hands them out (empty only at the end).

        No joining of pieces: the reader's skip loop searches each piece where it lands, which saves a
        copy of every decompressed byte.
        """
        if self._use_prefetch and self.compression != "plain":
            return self.read(size)
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

    def _read_direct(self, size: int) -> bytes:
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
        except Exception:  # any stream, possibly being read by the prefetch thread: progress only
            return None

    def close(self) -> None:
        try:
            if self._prefetch is not None:
                self._prefetch.stop()
            if self._stream is not self._raw:
                self._stream.close()
        finally:
            if self._owns_raw:
                self._raw.close()

    def __enter__(self) -> DecompressedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Decompress in a background thread, ahead of the parser (see :class:`_Prefetcher`). Off by default:
#: on a 2-vCPU machine it did not shorten a read (benchmarks/README.md); zstandard's decompress object
#: keeps the GIL, and the parser is much cheaper than bzip2. It may pay off for slow remote sources.
PREFETCH = False


class _Prefetcher:
    """Run a decompressing ``read`` a few chunks ahead of the caller, in a daemon thread.

    The codecs (zlib, isal, bz2, lzma, zstandard) release the GIL while they decompress, so on a second
    core the parser's work overlaps decompression. Chunks, then the final ``b""`` or the exception,
    arrive in order, so the caller sees exactly what a direct ``read`` would have given it.
    """

    def __init__(self, read: Callable[[int], bytes], chunk_size: int, name: str, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(depth)
        self._stopping = False
        self._rest = b""
        self._end: Any = None  #: b"" or the exception that ended the stream
        self._thread = threading.Thread(
            target=self._work, args=(read, chunk_size), name=f"decompress {name}", daemon=True
        )
        self._thread.start()

    def _work(self, read: Callable[[int], bytes], chunk_size: int) -> None:
        while not self._stopping:
            try:
                item: Any = read(chunk_size)
            except BaseException as exc:  # handed to the reading thread, which raises it
                item = exc
            while not self._stopping:
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    pass
            if not isinstance(item, bytes) or not item:
                return

    def read(self, size: int) -> bytes:
        if not self._rest:
            if self._end is not None:
                if isinstance(self._end, BaseException):
                    raise self._end
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException) or not item:
                self._end = item
                return self.read(size)
            self._rest = item
        if len(self._rest) <= size:
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data

    def stop(self) -> None:
        """Stop the thread (it finishes the chunk it is decompressing) before the streams are closed."""
        self._stopping = True
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.05)


def _size_of(raw: IO[bytes]) -> Optional[int]:
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        pass
    size = getattr(raw, "content_length", None) or getattr(raw, "_content_length", None)
    return int(size) if size else None
