"""Progress bars on stderr (tqdm), the only place tqdm is used: the library reports progress through an
``on_progress`` callback (:class:`~starcompactor.traces.Progress`), and this draws it.

Off when stderr is not a terminal, with ``--quiet``, or when ``TQDM_DISABLE`` is set (we honour it
ourselves because an explicit ``disable=`` argument overrides tqdm's own reading of it). tqdm is imported
only when a bar is shown.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

from ..traces import Progress, ProgressCallback


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


class Bars:
    """tqdm bars fed by :class:`~starcompactor.traces.Progress` reports: units done (of the total, when
    known) and, when the run reads files, input bytes."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._units: Any = None
        self._bytes: Any = None
        self._bars: List[Any] = []

    def __call__(self, report: Progress) -> None:
        from tqdm import tqdm

        if self._units is None:
            self._units = tqdm(
                total=report.total,
                desc=self.desc,
                unit=f" {report.unit}s",
                file=sys.stderr,
                position=0,
                dynamic_ncols=True,
                disable=False,
            )
            self._bars.append(self._units)
            if report.bytes_total is not None:
                self._bytes = tqdm(
                    total=report.bytes_total,
                    desc="read",
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=sys.stderr,
                    position=1,
                    dynamic_ncols=True,
                    disable=False,
                )
                self._bars.append(self._bytes)
        self._units.update(report.done - self._units.n)
        if self._bytes is not None:
            self._bytes.update(report.bytes_done - self._bytes.n)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars = []


@contextmanager
def progress_bars(desc: str, show: bool) -> Iterator[Optional[ProgressCallback]]:
    """An ``on_progress`` callback drawing bars while the block runs (None when not shown)."""
    if not show:
        yield None
        return
    bars = Bars(desc)
    try:
        yield bars
    finally:
        bars.close()
