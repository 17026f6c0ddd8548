"""Trace writers (csv, legacy-csv, jsonl, parquet), shared by both traces (SPEC §3).

Every writer streams records to a temporary file beside the output and renames it into place only when
the whole trace was written (:mod:`starcompactor.traces.atomic`), so a failed run never leaves a
half-written trace. With ``hold=True`` the rename waits for :func:`~starcompactor.traces.write_manifest`,
which puts trace and manifest in place together. ``-`` writes to stdout. Writers are registered by format
name in :data:`WRITERS`; a new format is one :class:`TraceWriter` subclass and one registration.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from itertools import islice
from operator import itemgetter
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Tuple, Type

import orjson

from ..errors import MissingDependencyError
from ..events import InstanceEvent
from ..registry import Registry
from .atomic import AtomicFile
from .legacy import legacy_instance_row, legacy_machine_row
from .lines import csv_line_maker, csv_quoted_line, instance_line_formatter
from .records import COLUMNS, instance_record, json_default, machine_record, properties_json


class TraceWriter:
    """Write one trace. Use as a context manager; call :meth:`write` per event; counts by event type."""

    binary = False
    newline: Optional[str] = ""
    format_name = ""  #: the name the format is registered and chosen by
    suffix = ".csv"  #: the default output file's suffix
    PROGRESS_STEP = 10_000

    def __init__(
        self,
        path: str,
        kind: str,
        epoch: dt.datetime,
        *,
        rack_key: Optional[str] = None,
        hold: bool = False,
        private: bool = False,
    ) -> None:
        if kind not in COLUMNS:
            raise ValueError(f"unknown trace kind {kind!r}")
        self.path = path
        self.kind = kind
        self.epoch = epoch
        self.rack_key = rack_key
        self.columns = COLUMNS[kind]
        self.counts: Counter[str] = Counter()
        self.first: Optional[dt.datetime] = None
        self.last: Optional[dt.datetime] = None
        self.hold = hold
        #: the file being written; with ``hold``, still under its temporary name after the block
        self.output = AtomicFile(path, binary=self.binary, newline=self.newline, private=private)

    def __enter__(self) -> TraceWriter:
        self._handle = self.output.open()
        try:
            self.open(self._handle)
        except BaseException:
            self.output.discard()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.output.discard()
            return
        try:
            self.close()
            self.output.finish()
            if not self.hold:
                self.output.commit()
        except BaseException:
            self.output.discard()
            raise

    def write(self, event: Any) -> None:
        self.counts[event.event] = self.counts.get(event.event, 0) + 1
        time = event.time if self.kind == "machine" else event.start_time
        if time is not None:
            if self.first is None or time < self.first:
                self.first = time
            if self.last is None or time > self.last:
                self.last = time
        self.write_event(event)

    def _count(self, events: List[Any]) -> None:
        """Counts by event type and the time range of a batch of instance events (tuples)."""
        self.counts.update(map(itemgetter(1), events))
        starts = [event[2] for event in events if event[2] is not None]
        if starts:
            low, high = min(starts), max(starts)
            if self.first is None or low < self.first:
                self.first = low
            if self.last is None or high > self.last:
                self.last = high

    def add_counts(self, counts: Dict[str, int], first: Any, last: Any) -> None:
        """Fold in what was written elsewhere (by worker processes): counts by event, time range."""
        self.counts.update(counts)
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last

    def write_lines(self, text: str) -> None:
        """Write text made by :func:`instance_line_formatter` for this writer's format."""
        self._handle.write(text.encode("utf-8") if self.binary else text)

    def part_bytes(self, text: str) -> bytes:
        """The bytes :meth:`write_lines` writes for ``text`` (for a part of the trace written elsewhere,
        then added with :meth:`append_part`)."""
        if self.binary:
            return text.encode("utf-8")
        if self.newline != "":
            raise ValueError(f"{self.format_name}: lines are written with newline translation")
        return text.encode("utf-8", "backslashreplace")

    def append_part(self, path: str) -> None:
        """Add the bytes of ``path`` (made with :meth:`part_bytes`) after what was written so far."""
        handle = self._handle
        handle.flush()
        target = handle if self.binary else handle.buffer  # type: ignore[attr-defined]
        with open(path, "rb") as part:
            shutil.copyfileobj(part, target, 1 << 20)

    def write_all(self, events: Iterable[Any], progress: Optional[Callable[[int], None]] = None) -> None:
        """Write every event; ``progress(n)`` is called every :attr:`PROGRESS_STEP` events and at the end.

        Instance events in a line format go a batch at a time through :func:`instance_line_formatter`
        (the instance trace can have tens of millions of rows); everything else event by event.
        """
        format_lines = self._line_formatter()
        if format_lines is not None:
            iterator = iter(events)
            while True:
                batch = list(islice(iterator, self.PROGRESS_STEP))
                if not batch:
                    return
                self._count(batch)
                self.write_lines("".join(format_lines(batch)))
                if progress is not None:
                    progress(len(batch))
        step = self.PROGRESS_STEP
        pending = 0
        for event in events:
            self.write(event)
            pending += 1
            if pending == step and progress is not None:
                progress(pending)
                pending = 0
        if pending and progress is not None:
            progress(pending)

    def _line_formatter(self) -> Optional[Callable[[List[InstanceEvent]], List[str]]]:
        """This writer's :func:`instance_line_formatter` for instance events (made once), else None."""
        if self.kind != "instance":
            return None
        if self._format_lines is None:
            self._format_lines = instance_line_formatter(self.format_name, self.epoch) or False
        return self._format_lines or None

    _format_lines: Any = None

    def record(self, event: Any) -> Dict[str, Any]:
        if self.kind == "machine":
            return machine_record(event, self.epoch)
        return instance_record(event, self.epoch)

    # to override
    def open(self, handle: IO[Any]) -> None:
        pass

    def write_event(self, event: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CsvWriter(TraceWriter):
    """PROPERTIES as JSON, empty cells for missing values, ISO times, whole seconds as integers."""

    format_name = "csv"

    def open(self, handle: IO[Any]) -> None:
        self._handle = handle
        self._line = csv_line_maker()
        handle.write(csv_quoted_line(list(self.columns)))

    def write_event(self, event: Any) -> None:
        if self.kind == "instance":
            self._handle.write(self._line_formatter()([event])[0])  # type: ignore[misc]
            return
        record = self.record(event)
        row = []
        for column in self.columns:
            value = record[column]
            if value is None:
                row.append("")
            elif column == "PROPERTIES":
                row.append(properties_json(value))
            elif isinstance(value, dt.datetime):
                row.append(value.isoformat())
            else:
                row.append(value)
        self._handle.write(self._line(row))


class LegacyCsvWriter(TraceWriter):
    """The original tool's format, byte for byte."""

    format_name = "legacy-csv"

    def open(self, handle: IO[Any]) -> None:
        self._csv = csv.writer(handle)  # excel dialect: CRLF, minimal quoting, as the original
        self._csv.writerow(self.columns)

    def write_event(self, event: Any) -> None:
        if self.kind == "machine":
            self._csv.writerow(legacy_machine_row(event, self.epoch, self.rack_key))
        else:
            self._csv.writerow(legacy_instance_row(event, self.epoch))


class JsonLinesWriter(TraceWriter):
    binary = True
    format_name = "jsonl"
    suffix = ".jsonl"

    def open(self, handle: IO[Any]) -> None:
        self._out = handle

    def write_event(self, event: Any) -> None:
        self._out.write(
            orjson.dumps(self.record(event), default=json_default, option=orjson.OPT_APPEND_NEWLINE)
        )


class ParquetWriter(TraceWriter):
    """Typed columns: timestamps, numbers; PROPERTIES as a JSON string column."""

    format_name = "parquet"
    suffix = ".parquet"

    binary = True
    batch_size = 65536

    def open(self, handle: IO[Any]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingDependencyError("pyarrow", "parquet", "--format parquet") from exc
        self._pa = pa
        ts = pa.timestamp("s")
        if self.kind == "machine":
            fields = [
                ("EVENT_TIME", ts),
                ("EVENT_TIME_SEC", pa.float64()),
                ("HOST_NAME (PHYSICAL)", pa.string()),
                ("EVENT", pa.string()),
                ("PROPERTIES", pa.string()),
            ]
        else:
            fields = [
                ("INSTANCE_UUID", pa.string()),
                ("EVENT", pa.string()),
                ("START_TIME", ts),
                ("START_SEC", pa.float64()),
                ("FINISH_TIME", ts),
                ("FINISH_SEC", pa.float64()),
                ("EVENT_DURATION", pa.float64()),
                ("RESULT", pa.string()),
                ("INSTANCE_NAME", pa.string()),
                ("USER_ID", pa.string()),
                ("PROJECT_ID", pa.string()),
                ("HOST_NAME (PHYSICAL)", pa.string()),
                ("PROPERTIES", pa.string()),
            ]
        self._schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(handle, self._schema)
        self._batch: Dict[str, List[Any]] = {name: [] for name, _ in fields}

    def write_event(self, event: Any) -> None:
        record = self.record(event)
        for column, values in self._batch.items():
            value = record[column]
            if column == "PROPERTIES":
                value = properties_json(value)
            elif (
                isinstance(value, int)
                and not isinstance(value, bool)
                and column.endswith(("_SEC", "DURATION"))
            ):
                value = float(value)
            values.append(value)
        if len(self._batch["EVENT"]) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._batch["EVENT"] or not hasattr(self, "_flushed"):
            table = self._pa.Table.from_pydict(self._batch, schema=self._schema)
            self._writer.write_table(table)
            self._flushed = True
            for values in self._batch.values():
                values.clear()

    def close(self) -> None:
        self._flush()
        self._writer.close()


#: format name -> writer class; the command line's choices and default file suffixes come from here.
WRITERS: Registry[Type[TraceWriter]] = Registry("output format")
for _writer in (CsvWriter, LegacyCsvWriter, JsonLinesWriter, ParquetWriter):
    WRITERS.register(_writer.format_name, _writer)


def register_writer(writer: Type[TraceWriter], *, replace: bool = False) -> None:
    """Add an output format: a :class:`TraceWriter` subclass with its ``format_name`` and ``suffix``."""
    WRITERS.register(writer.format_name, writer, replace=replace)


def supported_formats() -> Tuple[str, ...]:
    """The output formats, in the order the command line offers them."""
    return WRITERS.names()


def default_output(kind: str, fmt: str) -> str:
    """The file a trace is written to when none is named: ``machine_events.csv``, ``….parquet`` …"""
    return f"{kind}_events{WRITERS.get(fmt).suffix}"


def open_writer(
    path: str,
    kind: str,
    fmt: str,
    epoch: dt.datetime,
    *,
    rack_key: Optional[str] = None,
    hold: bool = False,
    private: bool = False,
) -> TraceWriter:
    """A writer for ``fmt`` (one of :func:`supported_formats`); use it as a context manager.

    ``hold``: the finished trace is put in place by ``write_manifest(path, manifest, writer=writer)``,
    together with its manifest (until then it stays under a temporary name). ``private``: mode 0600
    (for a trace with unmasked names).
    """
    if kind not in COLUMNS:
        raise ValueError(f"unknown trace kind {kind!r}")
    writer = WRITERS.get(fmt)(path, kind, epoch, rack_key=rack_key)
    writer.hold = hold
    writer.output.private = private
    return writer
