"""Instance-event traces: a source (Nova database or API) → mask → writer, plus the manifest.

The library entry point is :func:`make_instance_trace`. A source is any iterable of
:class:`~starcompactor.events.InstanceEvent`; :class:`~starcompactor.instances.db.DatabaseSource` and
:class:`~starcompactor.instances.api.ApiSource` also report what they read (``inputs()``) and what they
left out (``manifest_extra()``) for the manifest. Events stream straight through: nothing is held in
memory on the database path. There the source masks an instance's fields once, as it reads them, and
its rows become output lines without becoming events first (``row_batches``); the lines are the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from contextlib import ExitStack
from functools import partial
from itertools import islice
from typing import Any, Callable, Counter, Dict, Iterable, Iterator, List, Optional, Tuple

from ..config import check_instance_type
from ..errors import OutputError
from ..events import InstanceEvent
from ..mask import Masker, mask_instance_batch
from ..parallel import fork_available, forked
from ..traces import Progress, ProgressCallback, TraceResult, base_manifest, open_writer, write_manifest
from ..traces.atomic import check_output, streamed
from ..traces.lines import instance_line_maker
from . import workers as worker_processes
from .db import row_counts, rows_to_lines

log = logging.getLogger(__name__)


def make_instance_trace(
    source: Iterable[InstanceEvent],
    output: str,
    *,
    masker: Masker,
    epoch: dt.datetime,
    fmt: str = "csv",
    instance_type: str = "vm",
    extra: Optional[Dict[str, Any]] = None,
    workers: Optional[int] = 1,
    on_progress: Optional[ProgressCallback] = None,
) -> TraceResult:
    """Mask and write every event of ``source`` to ``output`` (atomically), then its manifest.

    ``on_progress`` is called with a :class:`~starcompactor.traces.Progress` (events written so far)
    after every batch. ``workers`` > 1: a database source's rows are decoded, masked and formatted by that
    many worker processes (line formats; see :mod:`starcompactor.instances.workers`).
    Returns what was written. On any error the output file is not created (or left as it was).
    """
    check_instance_type(instance_type)
    progress = _event_counter(on_progress)
    workers = workers or 1
    batches = getattr(source, "batches", None)
    masked_batches = getattr(source, "masked_batches", None)
    row_batches = getattr(source, "row_batches", None)
    line = instance_line_maker(fmt, epoch)
    parallel = workers > 1 and callable(getattr(source, "chunk_streams", None)) and line is not None
    check_output(output)
    split = getattr(source, "split", None)
    with ExitStack() as stack:
        parts = 1
        if workers > 1 and callable(split) and line is not None and not streamed(output) and fork_available():
            parts = stack.enter_context(split(workers, SPLIT_MINIMUM))
        writer = stack.enter_context(
            open_writer(output, "instance", fmt, epoch, hold=True, private=masker.method == "none")
        )
        if parts > 1:
            _write_parts(source, writer, masker, line, parts, progress)  # type: ignore[arg-type]
        elif parallel:
            worker_processes.write_database_trace(
                source,  # type: ignore[arg-type]
                writer,
                masker,
                fmt,
                workers=workers,
                progress=progress,
            )
        elif callable(row_batches) and line is not None:
            # the database source: rows masked as they are read, formatted without making events
            mask = masker.table
            for rows in row_batches(masker):
                writer.write_lines("".join(rows_to_lines(rows, line, mask)))
                writer.add_counts(*row_counts(rows))
                if progress is not None:
                    progress(len(rows))
        else:
            if callable(masked_batches):  # a source that masks as it reads (once per instance)
                masked = masked_batches(masker)
            else:
                masked = (
                    mask_instance_batch(batch, masker)
                    for batch in (batches() if callable(batches) else _batches(source))
                )
            for batch in masked:
                writer.write_all(batch)
                if progress is not None:
                    progress(len(batch))
    details: Dict[str, Any] = {"instance_type": instance_type}
    manifest_extra = getattr(source, "manifest_extra", None)
    if callable(manifest_extra):
        details.update(manifest_extra())
    if extra:
        details.update(extra)
    inputs = getattr(source, "inputs", None)
    manifest = base_manifest(
        "instance",
        epoch=epoch,
        fmt=fmt,
        masking_method=masker.method,
        key_fingerprint=masker.fingerprint,
        writer=writer,
        inputs=inputs() if callable(inputs) else (),
        extra=details,
    )
    manifest_file = write_manifest(output, manifest, writer=writer)
    log.info("wrote %d instance events to %s", manifest["events"], output)
    return TraceResult(output, manifest_file, manifest)


#: Events (read from the dump) below which a trace is written by one process: forking costs ~0.1 s.
SPLIT_MINIMUM = 200_000


def _write_rows(
    source: Any,
    masker: Masker,
    line: Callable[..., str],
    part: int,
    write: Callable[[str], Any],
    add_counts: Callable[..., None],
    progress: Optional[Callable[[int], None]],
) -> None:
    """One part's rows → lines (the one-process path's functions, so the bytes are the same)."""
    mask = masker.table
    for rows in source.row_batches(masker, part=part):
        write("".join(rows_to_lines(rows, line, mask)))
        add_counts(*row_counts(rows))
        if progress is not None:
            progress(len(rows))


def _write_parts(
    source: Any,
    writer: Any,
    masker: Masker,
    line: Callable[..., str],
    parts: int,
    progress: Optional[Callable[[int], None]],
) -> None:
    """The source's parts (``source.split``) made at once: this process writes the first into the trace,
    forked processes the others into temporary files beside it, added in order once all are done."""
    directory = os.path.dirname(os.path.abspath(writer.path))
    paths: List[str] = []
    try:
        for _ in range(1, parts):
            try:
                fd, path = tempfile.mkstemp(
                    prefix=f".{os.path.basename(writer.path)}.part-", suffix=".tmp", dir=directory
                )
            except OSError as exc:
                raise OutputError(writer.path, f"cannot write beside the output: {exc.strerror}") from None
            os.close(fd)
            paths.append(path)
        with ExitStack() as children:
            results = [
                children.enter_context(forked(partial(_write_part, source, writer, masker, line, part, path)))
                for part, path in enumerate(paths, 1)
            ]
            _write_rows(source, masker, line, 0, writer.write_lines, writer.add_counts, progress)
            totals = [source.part_totals()]
            for result in results:
                counts, first, last, part_totals = result()
                writer.add_counts(counts, first, last)
                totals.append(part_totals)
                if progress is not None and part_totals[0]:
                    progress(part_totals[0])
        for path in paths:
            writer.append_part(path)
        source.add_part_totals(totals)
    finally:
        for path in paths:
            try:
                os.unlink(path)
            except OSError:
                pass


def _write_part(
    source: Any, writer: Any, masker: Masker, line: Callable[..., str], part: int, path: str
) -> Tuple[Counter, Any, Any, Any]:
    """In a forked process: part ``part``'s lines into ``path``; returns what the manifest needs."""
    counts: Counter = Counter()
    bounds: List[Any] = [None, None]

    def add_counts(more: Counter, first: Any, last: Any) -> None:
        counts.update(more)
        if first is not None and (bounds[0] is None or first < bounds[0]):
            bounds[0] = first
        if last is not None and (bounds[1] is None or last > bounds[1]):
            bounds[1] = last

    try:
        with open(path, "wb") as out:
            encode = writer.part_bytes
            _write_rows(source, masker, line, part, lambda text: out.write(encode(text)), add_counts, None)
    except OSError as exc:
        raise OutputError(writer.path, f"cannot write: {exc.strerror or exc}") from None
    return counts, bounds[0], bounds[1], source.part_totals()


def _event_counter(on_progress: Optional[ProgressCallback]) -> Optional[Callable[[int], None]]:
    """``advance(n)``: ``n`` more events written, reported to ``on_progress`` as a running count."""
    if on_progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        on_progress(Progress("event", done))

    return advance


def _batches(events: Iterable[InstanceEvent], size: int = 4096) -> Iterator[List[InstanceEvent]]:
    iterator = iter(events)
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch
