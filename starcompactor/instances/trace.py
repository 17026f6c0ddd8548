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
from itertools import islice
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from ..config import check_instance_type
from ..events import InstanceEvent
from ..mask import Masker, mask_instance_batch
from ..traces import Progress, ProgressCallback, TraceResult, base_manifest, open_writer, write_manifest
from ..traces.atomic import check_output
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
    with open_writer(output, "instance", fmt, epoch, hold=True, private=masker.method == "none") as writer:
        if parallel:
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
