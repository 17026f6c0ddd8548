"""Files that appear whole or not at all: written beside their final name, renamed into place.

A trace and its manifest land together (:func:`commit_together`): both are written to temporary files
first, and only when both are whole are they renamed. Any error on the way (disk full, a name the file
system refuses, an exception in the caller) leaves the previous trace and manifest as they were.

What a reader can see if the machine stops between the renames: the old manifest is removed before the
new trace is renamed into place, and the new manifest is renamed last. So a reader finds the old pair,
the old trace without a manifest, the new trace without a manifest, or the new pair, and never a
manifest describing a trace it was not written for.

Outputs that are not regular files are handled apart: ``-`` (stdout), a FIFO or a character device
(``/dev/stdout``) is written straight into, with no manifest; a directory, a block device or a socket is
refused. Every failure to write is an :class:`~starcompactor.errors.OutputError` naming the file.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
import weakref
from contextlib import contextmanager
from typing import IO, Any, Iterator, Optional

from ..errors import OutputError

#: Bytes buffered before the file system sees them.
BUFFER_SIZE = 1 << 20


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def streamed(path: str) -> bool:
    """True for outputs written straight into rather than renamed into place: ``-``, FIFOs, devices."""
    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def check_output(path: str) -> None:
    """Refuse, before any work is done, an output that could not be written or must not be replaced.

    The directory must exist and take a new file (tried for real: permissions, a read-only file system,
    quotas); the path must not be a directory, a block device or a socket.
    """
    if streamed(path):
        return
    try:
        mode: Optional[int] = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(path, f"cannot write the output: {_why(exc)}") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise OutputError(path, "is a directory (name a file to write the trace to)")
        if not stat.S_ISREG(mode):
            raise OutputError(path, "is not a regular file (name a file, or - for stdout)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.lexists(directory) else "is not a directory"
        raise OutputError(path, f"the output directory {os.path.dirname(path) or '.'} {what}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(path, f"cannot write in the output directory: {_why(exc)}") from None
    os.close(fd)
    os.unlink(tmp)


class _Guarded(io.FileIO):
    """A file whose write errors (disk full, quota, I/O error) name the output, in one line."""

    def __init__(self, fd: int, name: str) -> None:
        super().__init__(fd, "wb", closefd=True)
        self._output = name

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise OutputError(self._output, f"cannot write: {_why(exc)}") from None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AtomicFile:
    """One output: :meth:`open` a temporary file beside ``path``, :meth:`finish` it, then :meth:`commit`
    (rename into place) or :meth:`discard`. A temporary file left uncommitted is removed when the object
    goes away or the interpreter exits.

    ``private``: the file keeps mode 0600 (for outputs holding unmasked names); else 0644 less the umask.
    """

    def __init__(
        self, path: str, *, binary: bool = False, newline: Optional[str] = "", private: bool = False
    ) -> None:
        self.path = path
        self.binary = binary
        self.newline = newline
        self.private = private
        self.stream = streamed(path)
        self.tmp: Optional[str] = None
        self.handle: Optional[IO[Any]] = None
        self.committed = False
        self._cleanup: Optional[weakref.finalize] = None
        self._target: Any = None

    def open(self) -> IO[Any]:
        if self.stream:
            self.handle = self._open_stream()
            return self.handle
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory
            )
        except OSError as exc:
            check_output(self.path)  # the clearer message, when there is one
            raise OutputError(self.path, f"cannot create the output: {_why(exc)}") from None
        self.tmp = tmp
        self._cleanup = weakref.finalize(self, _remove, tmp)
        raw = _Guarded(fd, self.path)
        buffered = io.BufferedWriter(raw, buffer_size=BUFFER_SIZE)
        if self.binary:
            self.handle = buffered
        else:
            # bytes that were not UTF-8 in the input (surrogate escapes) are written as \xNN, not refused
            self.handle = io.TextIOWrapper(
                buffered, encoding="utf-8", errors="backslashreplace", newline=self.newline
            )
        return self.handle

    def _open_stream(self) -> IO[Any]:
        if self.path == "-":
            target: IO[bytes] = sys.stdout.buffer
        else:
            try:
                fd = os.open(self.path, os.O_WRONLY)
            except OSError as exc:
                raise OutputError(self.path, f"cannot open: {_why(exc)}") from None
            target = io.BufferedWriter(_Guarded(fd, self.path), buffer_size=BUFFER_SIZE)
        self._target = target
        if self.binary:
            return target
        return io.TextIOWrapper(
            target, encoding="utf-8", errors="backslashreplace", newline=self.newline, write_through=True
        )

    def finish(self) -> None:
        """Everything written reaches the disk (flushed, fsynced, closed); errors name the output."""
        handle = self.handle
        if handle is None:
            return
        try:
            handle.flush()
            if self.stream:
                if isinstance(handle, io.TextIOWrapper):
                    handle.detach()  # stdout itself stays open
                if self._target is not sys.stdout.buffer:
                    self._target.close()
                return
            os.fsync(handle.fileno())
            handle.close()
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(self.path, f"cannot write: {_why(exc)}") from None

    def commit(self) -> None:
        """Rename the finished temporary file over ``path``."""
        if self.stream or self.tmp is None or self.committed:
            return
        try:
            os.chmod(self.tmp, 0o600 if self.private else 0o644 & ~_umask())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise OutputError(self.path, f"cannot put the output in place: {_why(exc)}") from None
        self.committed = True
        if self._cleanup is not None:
            self._cleanup.detach()

    def discard(self) -> None:
        """Drop the temporary file (the previous output, if any, stays as it was)."""
        handle = self.handle
        if handle is not None and self.stream:
            if isinstance(handle, io.TextIOWrapper):
                try:
                    handle.detach()  # never close stdout through the wrapper
                except (OSError, OutputError, ValueError):
                    pass
        elif handle is not None:
            try:
                handle.close()
            except (OSError, OutputError, ValueError):
                pass
        if self.tmp is not None and not self.committed:
            _remove(self.tmp)
            if self._cleanup is not None:
                self._cleanup.detach()


def commit_together(trace: AtomicFile, manifest: AtomicFile) -> None:
    """Put a finished trace and its finished manifest in place: old manifest out, trace in, manifest in."""
    if trace.stream:
        manifest.discard()
        return
    try:
        os.unlink(manifest.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        manifest.discard()
        trace.discard()
        raise OutputError(manifest.path, f"cannot replace the previous manifest: {_why(exc)}") from None
    try:
        trace.commit()
    except BaseException:
        manifest.discard()
        trace.discard()
        raise
    manifest.commit()
    _sync_directory(trace.path)


def _sync_directory(path: str) -> None:
    """The renames themselves reach the disk (where the platform allows opening a directory)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(
    path: str, *, binary: bool = False, newline: Optional[str] = "", private: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    output = AtomicFile(path, binary=binary, newline=newline, private=private)
    handle = output.open()
    try:
        yield handle
        output.finish()
        output.commit()
    except BaseException:
        output.discard()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
