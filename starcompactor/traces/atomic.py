"""Files that appear whole or not at all: written beside their final name, renamed into place."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterator, Optional


@contextmanager
def atomic_output(path: str, *, binary: bool = False, newline: Optional[str] = "") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    if path == "-":
        if binary:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        else:
            stream = io.TextIOWrapper(
                sys.stdout.buffer, encoding="utf-8", newline=newline, write_through=True
            )
            try:
                yield stream
                stream.flush()
            finally:
                stream.detach()
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        mode = "wb" if binary else "w"
        kwargs: Dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
