"""The database path of the instance trace with worker processes doing the per-row work.

Reading a result set is cheap; decoding its rows, masking and formatting them is ~5–6 µs of Python per
event, all on one core. Here the main process only reads the socket and cuts the bytes into chunks of
whole row packets (:meth:`~starcompactor.server.packets.ResultStream.packet_chunks`); worker processes turn
each chunk into finished output lines with the same functions as the one-process path
(:func:`~starcompactor.server.packets.parse_chunk` with :func:`~starcompactor.instances.db.instance_columns`,
:func:`~starcompactor.instances.db.rows_to_lines`, :func:`~starcompactor.traces.lines.instance_line_maker`)
and the main process writes them in order. At most ``2 × workers`` chunks per cell are in flight, so
memory stays flat. With several cells, workers also return each line's start time and the cells are
merged on it exactly as in the one-process path.

Only line formats (csv, legacy-csv, jsonl) go this way; parquet stays in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from operator import itemgetter
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from ..errors import ProtocolError
from ..mask import Masker, MaskingKey
from ..server.connect import database_error
from ..server.packets import parse_chunk
from ..server.settings import DbSettings
from ..traces.lines import instance_line_maker
from ..traces.writers import TraceWriter
from .db import DatabaseSource, finished_rows, instance_columns, row_counts, rows_to_lines
from .merge import merge_sorted_batches

log = logging.getLogger(__name__)

_worker: Dict[str, Any] = {}


def _start_worker(
    method: str, key: Optional[MaskingKey], epoch: dt.datetime, fmt: str, vm: bool, include_unfinished: bool
) -> None:
    masker = Masker(method, key)
    _worker.update(
        instance=instance_columns(vm, masker),
        mask=masker.table,
        line=instance_line_maker(fmt, epoch),
        include_unfinished=include_unfinished,
    )


def _ready() -> bool:
    return bool(_worker)


def _format_chunk(
    chunk: Any, seq: int, converters: Any, with_keys: bool
) -> Tuple[Any, int, int, Counter, Any, Any]:
    """One chunk → (text, or [(start key, line)] when ``with_keys``; events, skipped, counts, first, last)."""
    instance = _worker["instance"]
    if isinstance(chunk, bytes):
        rows = parse_chunk(chunk, seq, converters, instance)
    else:  # rows decoded in the main process
        rows = [instance.regroup(row) for row in chunk]
    skipped = 0
    if not _worker["include_unfinished"]:
        rows, skipped = finished_rows(rows)
    lines = rows_to_lines(rows, _worker["line"], _worker["mask"])
    counts, first, last = row_counts(rows)
    if with_keys:
        # exact integer microseconds (they pickle faster than datetimes); no start time sorts first
        microsecond = dt.timedelta(microseconds=1)
        minimum = dt.datetime.min
        payload: Any = ([((row[1] or minimum) - minimum) // microsecond for row in rows], lines)
    else:
        payload = "".join(lines)
    return payload, len(rows), skipped, counts, first, last


def write_database_trace(
    source: DatabaseSource,
    writer: TraceWriter,
    masker: Masker,
    fmt: str,
    *,
    workers: int,
    progress: Optional[Callable[[int], None]] = None,
) -> None:
    """Write every event of ``source`` to the open ``writer`` with ``workers`` worker processes."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding sockets and threads
    executor = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(
            masker.method,
            masker.key,
            writer.epoch,
            fmt,
            source.instance_type == "vm",
            source.include_unfinished,
        ),
    )
    try:
        # Start the workers now: they import while the server sorts the result (not waited for).
        for _ in range(workers):
            executor.submit(_ready)
        cells = source.chunk_streams()
        with_keys = len(cells) > 1
        streams = [
            _cell_results(chunks, executor, 2 * workers, with_keys, writer, stats, progress, source.settings)
            for chunks, stats in zip(cells, source.cells)
        ]
        if with_keys:
            line = itemgetter(1)
            for batch in merge_sorted_batches(streams, itemgetter(0)):
                writer.write_lines("".join(map(line, batch)))
        else:
            try:
                for text in streams[0]:
                    writer.write_lines(text)
            finally:
                streams[0].close()  # type: ignore[attr-defined]
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _cell_results(
    chunks: Iterator[Tuple[Any, int, Any]],
    executor: ProcessPoolExecutor,
    window: int,
    with_keys: bool,
    writer: TraceWriter,
    stats: Any,
    progress: Optional[Callable[[int], None]],
    settings: DbSettings,
) -> Iterator[Any]:
    """One cell's formatted chunks in order, at most ``window`` of them being made at a time."""
    pending: Deque[Future] = deque()

    def collect() -> Any:
        try:
            payload, events, skipped, counts, first, last = pending.popleft().result()
        except ProtocolError as exc:  # bytes a worker could not read as rows
            raise database_error(
                settings, stats.database, ProtocolError(f"MySQL protocol error: {exc}")
            ) from None
        if with_keys:
            payload = list(zip(*payload))
        stats.events += events
        stats.skipped_unfinished += skipped
        writer.add_counts(counts, first, last)
        if progress is not None and events:
            progress(events)
        return payload

    try:
        for chunk, seq, converters in _larger(chunks):
            pending.append(executor.submit(_format_chunk, chunk, seq, converters, with_keys))
            if len(pending) >= window:
                payload = collect()
                if payload:
                    yield payload
        while pending:
            payload = collect()
            if payload:
                yield payload
    finally:
        for future in pending:
            future.cancel()
        chunks.close()  # type: ignore[attr-defined]


#: Bytes of row packets per task: a task costs ~0.3 ms to hand over, a socket read gives ~80 KB.
TASK_BYTES = 2 << 20


def _larger(chunks: Iterator[Tuple[Any, int, Any]]) -> Iterator[Tuple[Any, int, Any]]:
    """Join consecutive byte chunks into pieces of about :data:`TASK_BYTES` (decoded rows pass as they are)."""
    parts: List[bytes] = []
    size = 0
    first_seq = 0
    converters = None
    for chunk, seq, converters in chunks:
        if not isinstance(chunk, bytes):
            if parts:
                yield b"".join(parts), first_seq, converters
                parts, size = [], 0
            yield chunk, seq, converters
            continue
        if not parts:
            first_seq = seq
        parts.append(chunk)
        size += len(chunk)
        if size >= TASK_BYTES:
            yield b"".join(parts), first_seq, converters
            parts, size = [], 0
    if parts:
        yield b"".join(parts), first_seq, converters
