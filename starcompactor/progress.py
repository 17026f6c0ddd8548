"""A progress bar on stderr (tqdm): files done / total and input bytes, with rates.

Off when stderr is not a terminal, with ``--quiet``, or when ``TQDM_DISABLE`` is set (we honour it
ourselves because an explicit ``disable=`` argument overrides tqdm's own reading of it). tqdm is imported
only when a bar is shown.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional


def enabled(quiet: bool = False, stream: Any = None) -> bool:
    """Whether a bar should be shown on ``stream`` (stderr by default)."""
    if quiet:
        return False
    flag = os.environ.get("TQDM_DISABLE", "")
    if flag and flag.lower() not in ("0", "false", "no", "off"):
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Counts files and bytes; draws two tqdm bars when enabled, else only counts (for the log)."""

    def __init__(
        self, total_files: int, total_bytes: Optional[int], *, show: bool, desc: str = "dumps"
    ) -> None:
        self.files = 0
        self.bytes = 0
        self.total_files = total_files
        self.total_bytes = total_bytes
        self._bars: list = []
        if show:
            from tqdm import tqdm

            self._files_bar = tqdm(total=total_files, desc=desc, unit="file", file=sys.stderr, position=0,
                                   dynamic_ncols=True, disable=False)  # fmt: skip
            self._bytes_bar = tqdm(total=total_bytes or None, desc="read", unit="B", unit_scale=True,
                                   unit_divisor=1024, file=sys.stderr, position=1, dynamic_ncols=True,
                                   disable=False)  # fmt: skip
            self._bars = [self._files_bar, self._bytes_bar]

    def file_done(self, size: Optional[int]) -> None:
        self.files += 1
        self.bytes += size or 0
        if self._bars:
            self._files_bar.update(1)
            if size:
                self._bytes_bar.update(size)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars = []

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
