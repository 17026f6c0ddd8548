"""Decompress ahead in a thread: one dump on two cores, for when a core would otherwise sit idle.

A history of N dumps on W workers leaves cores idle for its last ``N mod W`` files (3 dumps on 2 cores:
the third is read alone). gzip, bzip2 and xz cannot be decoded from the middle, so splitting one file's
*decompression* needs a parallel decoder (rapidgzip: measured here at ~3.5 × isal's CPU per byte and
0.9 GB of memory for two threads — no gain on two cores). What can run beside it is the statement
walker: isal, bz2 and lzma release the GIL while they decode, so a thread decompressing the next pieces
while the walker searches the current one puts a second core to work on the same file.

:class:`PrefetchStream` has the two methods the reader's buffer calls (``read1`` and
``compressed_position``); a bounded queue (``depth`` pieces) keeps the memory it adds small.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Optional

#: Decompressed pieces held ahead of the reader.
DEPTH = 4
_END = object()


class PrefetchStream:
    """``read1``/``compressed_position`` over a stream read by a background thread."""

    def __init__(self, stream: Any, piece_size: int, depth: int = DEPTH) -> None:
        self._stream = stream
        self._piece = piece_size
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._position: Optional[int] = None
        self._done = False
        self._thread = threading.Thread(target=self._run, name="decompress-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                piece = self._stream.read1(self._piece)
                self._put((piece, self._stream.compressed_position()))
                if not piece:
                    return
        except BaseException as exc:  # handed to the reader, raised where it would have been
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read1(self, size: int) -> bytes:
        """The next piece (at most the piece size the thread reads; ``size`` is not split)."""
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        piece, self._position = item
        if not piece:
            self._done = True
        return piece

    def compressed_position(self) -> Optional[int]:
        return self._position

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


__all__ = ["PrefetchStream"]
