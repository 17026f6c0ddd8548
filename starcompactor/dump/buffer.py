"""The decompressed bytes around the reader's position: a window that slides over the whole dump.

The reader looks at only a few lines per table (comments, ``CREATE TABLE``, ``LOCK TABLES`` …) and at the
``INSERT`` statements of the tables it wants; everything else is skipped with :meth:`DumpBuffer.skip_to`,
which searches each decompressed piece where it lands and drops it, so the bytes of unwanted tables are
never copied into the buffer. Whatever is held is bounded by ``max_statement_bytes`` plus one piece.

Offsets: ``buf[pos]`` is the next byte to look at; ``base + pos`` is its offset in the decompressed
stream (for messages). Reading more may drop the consumed part of ``buf``, so an index held across a
read is only valid relative to ``pos``.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..errors import DumpError, LineTooLongError
from .stream import DecompressedStream


class DumpBuffer:
    """``buf``/``pos``/``base`` over a :class:`~starcompactor.dump.stream.DecompressedStream`."""

    def __init__(
        self,
        stream: DecompressedStream,
        path: str,
        *,
        chunk_size: int,
        max_statement_bytes: int,
        on_progress: Optional[Callable[[int], None]] = None,
    ) -> None:
        self.stream = stream
        self.path = path
        self.chunk_size = chunk_size
        self.max_statement_bytes = max_statement_bytes
        self.on_progress = on_progress
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.eof = False
        self.read_error: Optional[DumpError] = None
        self._last_compressed = 0

    @property
    def offset(self) -> int:
        """Offset of ``buf[pos]`` in the decompressed stream."""
        return self.base + self.pos

    def read_chunk(self) -> bytes:
        """The next piece of decompressed data (empty at the end of the stream, setting ``eof``)."""
        chunk = self.stream.read1(self.chunk_size)
        if self.on_progress is not None:
            position = self.stream.compressed_position()
            if position is not None:
                self.on_progress(position - self._last_compressed)
                self._last_compressed = position
        if not chunk:
            self.eof = True
        return chunk

    def fill(self, bounded: bool = True) -> bool:
        """Append one chunk to the buffer, dropping what was consumed. False at end of stream.

        Called when the thing starting at ``pos`` needs more bytes, so (when ``bounded``) holding more
        than ``max_statement_bytes`` unconsumed means a statement (or line) over the bound.
        ``bounded=False`` is a read-ahead: a damaged stream only stops it; the error is raised when the
        bytes are really needed.
        """
        if self.eof:
            return False
        if self.read_error is not None:
            if not bounded:
                return False
            raise self.read_error
        if bounded and len(self.buf) - self.pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.path, f"more than {self.max_statement_bytes} bytes without an end", self.offset
            )
        try:
            chunk = self.read_chunk()
        except DumpError as exc:
            if bounded:
                raise
            # reading ahead (``ensure``) met a damaged stream: what is buffered may be all we need
            self.read_error = exc
            return False
        if not chunk:
            return False
        if self.pos:
            self.base += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        else:
            self.buf += chunk
        return True

    def find(self, needle: bytes, start: int) -> int:
        """Index of ``needle`` at or after ``start`` in the buffer, reading more as needed; -1 at EOF.

        Reading more may drop the consumed part of the buffer: indexes held by the caller are only
        valid relative to ``pos``.
        """
        while True:
            i = self.buf.find(needle, start)
            if i >= 0:
                return i
            start = max(start, len(self.buf) - len(needle) + 1)
            old_pos = self.pos
            if not self.fill():
                return -1
            start -= old_pos

    def skip_to(self, needle: bytes) -> int:
        """Discard everything up to ``needle`` (which stays in the buffer at ``pos``). -1 at EOF.

        This is where the bytes of unwanted tables go: each decompressed piece is searched where it
        lands and dropped, never appended to the buffer (only the last ``len(needle) - 1`` bytes are
        carried over, for a needle split across two pieces).
        """
        i = self.buf.find(needle, self.pos)
        if i >= 0:
            self.pos = i
            return i
        keep = len(needle) - 1
        tail_start = max(self.pos, len(self.buf) - keep)
        self.base += tail_start
        tail = self.buf[tail_start:]
        self.buf, self.pos = tail, 0
        if self.eof:
            return -1
        if self.read_error is not None:
            raise self.read_error
        while True:
            chunk = self.read_chunk()
            if not chunk:
                return -1
            if tail:
                j = (tail + chunk[:keep]).find(needle)
                if j >= 0:
                    self.buf, self.pos = tail + chunk, j
                    return j
            j = chunk.find(needle)
            if j >= 0:
                self.base += len(tail)
                self.buf, self.pos = chunk, j
                return j
            joined = len(tail) + len(chunk)
            tail = chunk[-keep:] if len(chunk) >= keep else (tail + chunk)[-keep:]
            self.base += joined - len(tail)
            self.buf = tail

    def line_end(self) -> int:
        """Index of the newline ending the line at ``pos`` (the buffer's end at EOF)."""
        i = self.find(b"\n", self.pos)
        if i < 0:
            return len(self.buf)
        if i - self.pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.path, f"a line of {i - self.pos} bytes (bound {self.max_statement_bytes})", self.offset
            )
        return i

    def ensure(self, n: int) -> None:
        """Have at least ``n`` bytes after ``pos`` in the buffer, unless the stream ends first."""
        while len(self.buf) - self.pos < n and self.fill(bounded=False):
            pass
