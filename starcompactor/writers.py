"""Trace writers (csv, legacy-csv, jsonl, parquet) and the manifest, shared by both traces (SPEC §3).

Every writer streams records to a temporary file beside the output and renames it into place only when
the whole trace was written, so a failed run never leaves a half-written trace. ``-`` writes to stdout.

``legacy-csv`` reproduces the original tool's files byte for byte: PROPERTIES as a Python dict repr,
missing values as ``None``, ``*_SEC`` as floats, CRLF line ends (consumers parse it with ``eval()``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import orjson

from .errors import MissingDependencyError, StarCompactorError
from .events import InstanceEvent, MachineEvent

FORMATS = ("csv", "legacy-csv", "jsonl", "parquet")

MACHINE_COLUMNS = ("EVENT_TIME", "EVENT_TIME_SEC", "HOST_NAME (PHYSICAL)", "EVENT", "PROPERTIES")
INSTANCE_COLUMNS = (
    "INSTANCE_UUID", "EVENT", "START_TIME", "START_SEC", "FINISH_TIME", "FINISH_SEC", "EVENT_DURATION",
    "RESULT", "INSTANCE_NAME", "USER_ID", "PROJECT_ID", "HOST_NAME (PHYSICAL)", "PROPERTIES",
)  # fmt: skip

DEFAULT_NAMES = {"machine": "machine_events.csv", "instance": "instance_events.csv"}


# -- values -----------------------------------------------------------------------------------------


def seconds_since(time: Optional[dt.datetime], epoch: dt.datetime, *, clamp: bool = True) -> Optional[float]:
    """Seconds from ``epoch`` to ``time``; -1 before the epoch when ``clamp``; None when time is missing."""
    if time is None:
        return None
    value = (time - epoch).total_seconds()
    if clamp and value < 0:
        return -1
    return value


def _number(value: Optional[float]) -> Any:
    """Whole seconds as int (``852658``), fractions as float."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _iso(time: Optional[dt.datetime]) -> Optional[str]:
    return time.isoformat() if time is not None else None


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def properties_json(properties: Dict[str, Any]) -> str:
    return orjson.dumps(properties, default=_json_default).decode("utf-8")


def machine_record(event: MachineEvent, epoch: dt.datetime) -> Dict[str, Any]:
    """The typed output record of a machine event (keys are the output columns)."""
    return {
        "EVENT_TIME": event.time,
        "EVENT_TIME_SEC": _number(seconds_since(event.time, epoch)),
        "HOST_NAME (PHYSICAL)": event.host,
        "EVENT": event.event,
        "PROPERTIES": event.properties,
    }


def instance_record(event: InstanceEvent, epoch: dt.datetime) -> Dict[str, Any]:
    duration = None
    if event.start_time is not None and event.finish_time is not None:
        duration = (event.finish_time - event.start_time).total_seconds()
    return {
        "INSTANCE_UUID": event.instance_uuid,
        "EVENT": event.event,
        "START_TIME": event.start_time,
        "START_SEC": _number(seconds_since(event.start_time, epoch)),
        "FINISH_TIME": event.finish_time,
        "FINISH_SEC": _number(seconds_since(event.finish_time, epoch)),
        "EVENT_DURATION": _number(duration),
        "RESULT": event.result,
        "INSTANCE_NAME": event.instance_name,
        "USER_ID": event.user_id,
        "PROJECT_ID": event.project_id,
        "HOST_NAME (PHYSICAL)": event.host,
        "PROPERTIES": event.properties,
    }


def _csv_instance_row(event: InstanceEvent, epoch: dt.datetime) -> List[Any]:
    """The csv row of :func:`instance_record`, built directly (this runs per event, millions of times)."""
    start = event.start_time
    finish = event.finish_time
    if start is not None:
        start_sec: Any = (start - epoch).total_seconds()
        start_sec = -1 if start_sec < 0 else int(start_sec) if start_sec.is_integer() else start_sec
        start_text = start.isoformat()
    else:
        start_sec = start_text = ""
    if finish is not None:
        finish_sec: Any = (finish - epoch).total_seconds()
        finish_sec = -1 if finish_sec < 0 else int(finish_sec) if finish_sec.is_integer() else finish_sec
        finish_text = finish.isoformat()
    else:
        finish_sec = finish_text = ""
    if start is not None and finish is not None:
        duration: Any = (finish - start).total_seconds()
        if duration.is_integer():
            duration = int(duration)
    else:
        duration = ""
    result = event.result
    return [
        event.instance_uuid or "", event.event or "", start_text, start_sec, finish_text, finish_sec, duration,
        "" if result is None else result, event.instance_name or "", event.user_id or "", event.project_id or "",
        event.host or "", properties_json(event.properties),
    ]  # fmt: skip


def csv_field(text: str) -> str:
    """One csv field as ``csv.writer`` writes it (minimal quoting, ``"`` doubled)."""
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


class _DayText(dict):  # type: ignore[type-arg]
    """days since a midnight → ``YYYY-MM-DDT`` (computed on first use)."""

    def __init__(self, midnight: dt.datetime) -> None:
        super().__init__()
        self.midnight = midnight

    def __missing__(self, days: int) -> str:
        text = self[days] = (self.midnight + dt.timedelta(days=days)).date().isoformat() + "T"
        return text


class _SecondText(dict):  # type: ignore[type-arg]
    """second of the day → ``HH:MM:SS`` (computed on first use)."""

    def __missing__(self, second: int) -> str:
        text = self[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        return text


class EpochClock:
    """ISO text and seconds since the epoch of naive datetimes, for writers of millions of rows.

    ``datetime.isoformat()`` costs ~1 µs; here a time without microseconds is split into whole days and
    seconds of day since midnight before the epoch, and the text is two cached pieces (a day's
    ``YYYY-MM-DDT``, a second's ``HH:MM:SS``). Anything else (microseconds, time zones) takes the
    general route. Both give the same text and numbers.
    """

    def __init__(self, epoch: dt.datetime) -> None:
        self.epoch = epoch
        self.midnight = epoch.replace(hour=0, minute=0, second=0, microsecond=0)
        self.offset = (epoch - self.midnight).seconds
        self.exact = epoch.microsecond == 0 and epoch.tzinfo is None
        self.day_text = _DayText(self.midnight)
        self.second_text = _SecondText()

    def stamp(self, time: dt.datetime) -> Tuple[str, Any, Any]:
        """(ISO text, seconds since the epoch clamped at -1, unclamped seconds)."""
        if self.exact and not time.microsecond and time.tzinfo is None:
            delta = time - self.midnight
            seconds = delta.days * 86400 + delta.seconds - self.offset
            text = self.day_text[delta.days] + self.second_text[delta.seconds]
            return text, (-1 if seconds < 0 else seconds), seconds
        seconds_f = (time - self.epoch).total_seconds()
        value: Any = int(seconds_f) if seconds_f.is_integer() else seconds_f
        return time.isoformat(), (-1 if value < 0 else value), value


def instance_csv_lines(epoch: dt.datetime) -> Callable[..., str]:
    """A function giving the csv line of an instance event from its ten fields (positional, in
    :class:`~starcompactor.events.InstanceEvent` order).

    ``csv.writer.writerow`` costs ~5 µs per row on a small machine; this ~1.5 µs: one f-string, one scan
    for the characters that need quoting (a row that has them goes through ``csv.writer``), times through
    :class:`EpochClock`'s caches (inlined here: two method calls per row are measurable) and cached
    PROPERTIES text for the dict objects a source reuses (sources never change a dict once handed out).
    """
    clock = EpochClock(epoch)
    stamp = clock.stamp
    midnight = clock.midnight
    offset = clock.offset
    exact = clock.exact
    day_text = clock.day_text
    second_text = clock.second_text
    properties_text: Dict[int, Tuple[Any, str]] = {}

    def line(
        uuid: Any, name: Any, start: Any, finish: Any, result: Any, instance_name: Any, user: Any, project: Any,
        host: Any, properties: Dict[str, Any],
    ) -> str:  # fmt: skip
        if start is None:
            start_text = start_sec = start_raw = ""
        elif exact and not start.microsecond:
            delta = start - midnight
            days = delta.days
            seconds = delta.seconds
            start_text = day_text[days] + second_text[seconds]
            start_raw = days * 86400 + seconds - offset
            start_sec = -1 if start_raw < 0 else start_raw
        else:
            start_text, start_sec, start_raw = stamp(start)
        if finish is None:
            finish_text = finish_sec = duration = ""
        else:
            if exact and not finish.microsecond:
                delta = finish - midnight
                days = delta.days
                seconds = delta.seconds
                finish_text = day_text[days] + second_text[seconds]
                finish_raw = days * 86400 + seconds - offset
                finish_sec = -1 if finish_raw < 0 else finish_raw
            else:
                finish_text, finish_sec, finish_raw = stamp(finish)
            if start is None:
                duration = ""
            elif type(start_raw) is int and type(finish_raw) is int:
                duration = finish_raw - start_raw
            else:
                duration = (finish - start).total_seconds()
                if duration.is_integer():
                    duration = int(duration)
        text = (
            f"{uuid or ''},{name or ''},{start_text},{start_sec},{finish_text},{finish_sec},{duration},"
            f"{'' if result is None else result},{instance_name or ''},{user or ''},{project or ''},"
            f"{host or ''},"
        )
        if '"' in text or "\n" in text or "\r" in text or text.count(",") != 12:
            event = InstanceEvent(
                uuid, name, start, finish, result, instance_name, user, project, host, properties
            )
            return _csv_quoted_line(_csv_instance_row(event, epoch))
        cached = properties_text.get(id(properties))
        if cached is None or cached[0] is not properties:
            if len(properties_text) >= 4096:
                properties_text.clear()
            cached = properties_text[id(properties)] = (properties, csv_field(properties_json(properties)))
        return text + cached[1] + "\n"

    return line


def _csv_quoted_line(row: List[Any], dialect: str = "unix-lf") -> str:
    buffer = io.StringIO()
    if dialect == "excel":
        csv.writer(buffer).writerow(row)
    else:
        csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def instance_line_maker(fmt: str, epoch: dt.datetime) -> Optional[Callable[..., str]]:
    """The function giving the ``fmt`` writer's line for one instance event, from the event's ten fields
    (positional, in :class:`~starcompactor.events.InstanceEvent` order), or None for a format that is
    not lines of text (parquet).

    The writers use it (through :func:`instance_line_formatter`), and so does the database path, which
    formats rows without making events of them: one implementation of each format.
    """
    if fmt == "csv":
        return instance_csv_lines(epoch)
    if fmt == "legacy-csv":

        def legacy_line(*fields: Any) -> str:
            return _csv_quoted_line(_legacy_instance_row(InstanceEvent(*fields), epoch), "excel")

        return legacy_line
    if fmt == "jsonl":
        dumps = orjson.dumps
        option = orjson.OPT_APPEND_NEWLINE

        def json_line(*fields: Any) -> str:
            record = instance_record(InstanceEvent(*fields), epoch)
            return dumps(record, default=_json_default, option=option).decode("utf-8")

        return json_line
    return None


def instance_line_formatter(
    fmt: str, epoch: dt.datetime
) -> Optional[Callable[[List[InstanceEvent]], List[str]]]:
    """A function turning a batch of (masked) instance events into the lines the ``fmt`` writer writes
    for them, or None for a format that is not lines of text (parquet)."""
    make = instance_line_maker(fmt, epoch)
    if make is None:
        return None
    return lambda events: [make(*event) for event in events]


def _legacy_machine_row(event: MachineEvent, epoch: dt.datetime, rack_key: Optional[str]) -> List[str]:
    seconds = seconds_since(event.time, epoch, clamp=False)
    seconds_text = "-1" if seconds is not None and seconds < 0 else str(seconds)
    properties = dict(event.properties)
    if rack_key and rack_key not in properties:
        properties[rack_key] = None  # the original's ordered mask set it on every row
    return [_legacy_str(event.time), seconds_text, event.host, event.event, repr(properties)]


def _legacy_instance_row(event: InstanceEvent, epoch: dt.datetime) -> List[str]:
    start = seconds_since(event.start_time, epoch, clamp=False)
    finish = seconds_since(event.finish_time, epoch, clamp=False)
    duration = None
    if event.start_time is not None and event.finish_time is not None:
        duration = (event.finish_time - event.start_time).total_seconds()
    return [
        _legacy_str(event.instance_uuid), _legacy_str(event.event), _legacy_str(event.start_time), str(start),
        _legacy_str(event.finish_time), str(finish), str(duration), _legacy_str(event.result),
        _legacy_str(event.instance_name), _legacy_str(event.user_id), _legacy_str(event.project_id),
        _legacy_str(event.host), repr(dict(event.properties)),
    ]  # fmt: skip


def _legacy_str(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


# -- atomic output ----------------------------------------------------------------------------------


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


# -- writers ----------------------------------------------------------------------------------------


class TraceWriter:
    """Write one trace. Use as a context manager; call :meth:`write` per event; counts by event type."""

    binary = False
    newline: Optional[str] = ""
    format_name = ""
    PROGRESS_STEP = 10_000

    def __init__(self, path: str, kind: str, epoch: dt.datetime, *, rack_key: Optional[str] = None) -> None:
        if kind not in ("machine", "instance"):
            raise ValueError(kind)
        self.path = path
        self.kind = kind
        self.epoch = epoch
        self.rack_key = rack_key
        self.columns = MACHINE_COLUMNS if kind == "machine" else INSTANCE_COLUMNS
        self.counts: Counter[str] = Counter()
        self.first: Optional[dt.datetime] = None
        self.last: Optional[dt.datetime] = None
        self._context: Any = None

    def __enter__(self) -> TraceWriter:
        self._context = atomic_output(self.path, binary=self.binary, newline=self.newline)
        self._handle = self._context.__enter__()
        try:
            self.open(self._handle)
        except BaseException:
            self._context.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        self._context.__exit__(exc_type, exc, tb)

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
        self._csv = csv.writer(handle, lineterminator="\n")
        self._csv.writerow(self.columns)

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
        self._csv.writerow(row)


class LegacyCsvWriter(TraceWriter):
    """The original tool's format, byte for byte."""

    format_name = "legacy-csv"

    def open(self, handle: IO[Any]) -> None:
        self._csv = csv.writer(handle)  # excel dialect: CRLF, minimal quoting, as the original
        self._csv.writerow(self.columns)

    def write_event(self, event: Any) -> None:
        if self.kind == "machine":
            self._csv.writerow(_legacy_machine_row(event, self.epoch, self.rack_key))
        else:
            self._csv.writerow(_legacy_instance_row(event, self.epoch))


class JsonLinesWriter(TraceWriter):
    binary = True
    format_name = "jsonl"

    def open(self, handle: IO[Any]) -> None:
        self._out = handle

    def write_event(self, event: Any) -> None:
        self._out.write(
            orjson.dumps(self.record(event), default=_json_default, option=orjson.OPT_APPEND_NEWLINE)
        )


class ParquetWriter(TraceWriter):
    """Typed columns: timestamps, numbers; PROPERTIES as a JSON string column."""

    format_name = "parquet"

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
                ("EVENT_TIME", ts), ("EVENT_TIME_SEC", pa.float64()), ("HOST_NAME (PHYSICAL)", pa.string()),
                ("EVENT", pa.string()), ("PROPERTIES", pa.string()),
            ]  # fmt: skip
        else:
            fields = [
                ("INSTANCE_UUID", pa.string()), ("EVENT", pa.string()), ("START_TIME", ts),
                ("START_SEC", pa.float64()), ("FINISH_TIME", ts), ("FINISH_SEC", pa.float64()),
                ("EVENT_DURATION", pa.float64()), ("RESULT", pa.string()), ("INSTANCE_NAME", pa.string()),
                ("USER_ID", pa.string()), ("PROJECT_ID", pa.string()), ("HOST_NAME (PHYSICAL)", pa.string()),
                ("PROPERTIES", pa.string()),
            ]  # fmt: skip
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


WRITERS: Dict[str, Callable[..., TraceWriter]] = {
    "csv": CsvWriter,
    "legacy-csv": LegacyCsvWriter,
    "jsonl": JsonLinesWriter,
    "parquet": ParquetWriter,
}


def open_writer(
    path: str, kind: str, fmt: str, epoch: dt.datetime, *, rack_key: Optional[str] = None
) -> TraceWriter:
    """A writer for ``fmt`` (one of :data:`FORMATS`); use it as a context manager."""
    try:
        factory = WRITERS[fmt]
    except KeyError:
        raise StarCompactorError(
            f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})"
        ) from None
    return factory(path, kind, epoch, rack_key=rack_key)


# -- manifest ---------------------------------------------------------------------------------------


def manifest_path(output: str) -> Optional[str]:
    return None if output == "-" else output + ".manifest.json"


def write_manifest(output: str, manifest: Dict[str, Any]) -> Optional[str]:
    """Write ``OUTPUT.manifest.json`` beside the trace (nothing for stdout). Never holds the key."""
    path = manifest_path(output)
    if path is None:
        return None
    data = orjson.dumps(
        manifest, default=_manifest_default, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    )
    with atomic_output(path, binary=True) as handle:
        handle.write(data)
    return path


def _manifest_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return _json_default(value)


def base_manifest(
    kind: str, *, epoch: dt.datetime, fmt: str, masking_method: str, key_fingerprint: Optional[str],
    writer: TraceWriter, extra: Optional[Dict[str, Any]] = None, inputs: Sequence[Dict[str, Any]] = (),
) -> Dict[str, Any]:  # fmt: skip
    from . import __version__

    manifest: Dict[str, Any] = {
        "tool": "starcompactor",
        "version": __version__,
        "trace": kind,
        "format": fmt,
        "epoch": epoch.isoformat(),
        "masking": {"method": masking_method, "key_fingerprint": key_fingerprint},
        "inputs": list(inputs),
        "counts": dict(sorted(writer.counts.items())),
        "events": sum(writer.counts.values()),
        "time_range": {"first": _iso(writer.first), "last": _iso(writer.last)},
    }
    if extra:
        manifest.update(extra)
    return manifest
