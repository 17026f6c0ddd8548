"""Read a trace back, in any of our formats (SPEC §3), with the manifest beside it.

Instance traces run to tens of millions of rows, so they are read a piece at a time into pyarrow tables
and never row by row in Python: a text trace is cut into pieces of about ``chunk_bytes`` that end at a
line end outside any quoted field, and each piece goes through pyarrow's multi-threaded CSV (or JSON)
parser; a Parquet trace is read a row group at a time. Only the columns asked for are converted.
Machine traces are small (one row per host change) and are read into Python records.

What kind of trace a file holds is told by its columns (and checked against its manifest's ``trace``).
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import orjson

from ..errors import MissingDependencyError, TraceReadError
from ..traces import INSTANCE_COLUMNS, MACHINE_COLUMNS, manifest_path, supported_formats

log = logging.getLogger(__name__)

#: The extra that holds what ``starcompactor report`` needs.

#: Bytes of text parsed at a time: large enough for pyarrow's threads, small enough to keep memory flat.
CHUNK_BYTES = 32 << 20
#: Parquet row groups up to this many rows are read whole; larger ones in batches.
PARQUET_GROUP_ROWS = 1 << 21
_UNIX = dt.datetime(1970, 1, 1)

#: Column types an instance trace is read with (times in microseconds: the writers may write fractions).
INSTANCE_TYPES = {
    "START_TIME": "timestamp", "FINISH_TIME": "timestamp", "EVENT_DURATION": "float64", "START_SEC": "float64",
    "FINISH_SEC": "float64",
}  # fmt: skip


@dataclass(frozen=True)
class TraceFile:
    """A trace file as found: which trace, which format, and its manifest (None when there is none)."""

    path: str
    kind: str
    fmt: str
    columns: Tuple[str, ...]
    size: int
    manifest: Optional[Dict[str, Any]] = None
    manifest_path: Optional[str] = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def arrow() -> Any:
    """pyarrow, or the error that says which extra to install."""
    try:
        import pyarrow
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "report", "starcompactor report") from exc
    return pyarrow


# -- what a file is ---------------------------------------------------------------------------------


def open_trace(path: str) -> TraceFile:
    """Identify the trace at ``path`` (format from its first bytes, kind from its columns) and read its
    manifest. Raises :class:`TraceReadError` naming the file for anything that is not a trace."""
    try:
        size = os.stat(path).st_size
        if os.path.isdir(path):
            raise TraceReadError(path, "is a directory, not a trace file")
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(0)
            first = handle.readline(1 << 20)
    except FileNotFoundError:
        raise TraceReadError(path, "no such file") from None
    except OSError as exc:
        raise TraceReadError(path, f"cannot read: {exc.strerror or exc}") from None
    if not first.strip():
        raise TraceReadError(path, "empty file, not a trace")
    if head == b"PAR1":
        fmt = "parquet"
        columns = _parquet_columns(path)
    elif first.lstrip().startswith(b"{"):
        fmt = "jsonl"
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            raise TraceReadError(path, "first line is not JSON: not a jsonl trace") from None
        columns = tuple(record) if isinstance(record, dict) else ()
    else:
        fmt = "legacy-csv" if first.endswith(b"\r\n") else "csv"
        try:
            columns = tuple(next(csv.reader([first.decode("utf-8").rstrip("\r\n")])))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            raise TraceReadError(path, "not a trace: the first line is not a csv header") from None
    kind = _kind_of(columns)
    if kind is None:
        shown = ", ".join(columns[:6]) + (", …" if len(columns) > 6 else "")
        raise TraceReadError(
            path,
            f"not a starcompactor trace: its columns ({shown}) are neither a machine nor an instance trace's",
        )
    manifest, where = _read_manifest(path)
    if manifest is not None:
        said = manifest.get("trace")
        if said in ("machine", "instance") and said != kind:
            raise TraceReadError(path, f"the manifest {where} says a {said} trace, the columns say {kind}")
        if manifest.get("format") in supported_formats() and manifest.get("format") != fmt:
            log.warning(
                "%s: the manifest says format %s, the file reads as %s", path, manifest["format"], fmt
            )
    return TraceFile(path, kind, fmt, columns, size, manifest, where)


def _kind_of(columns: Sequence[str]) -> Optional[str]:
    if tuple(columns) == MACHINE_COLUMNS or set(columns) == set(MACHINE_COLUMNS):
        return "machine"
    if tuple(columns) == INSTANCE_COLUMNS or set(columns) == set(INSTANCE_COLUMNS):
        return "instance"
    return None


def _parquet_columns(path: str) -> Tuple[str, ...]:
    pa = arrow()
    import pyarrow.parquet as pq

    try:
        return tuple(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise TraceReadError(path, f"cannot read as Parquet: {_first_line(exc)}") from None


def _read_manifest(path: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    where = manifest_path(path)
    if where is None or not os.path.exists(where):
        return None, None
    try:
        with open(where, "rb") as handle:
            data = orjson.loads(handle.read())
    except OSError as exc:
        raise TraceReadError(where, f"cannot read manifest: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise TraceReadError(where, f"manifest is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TraceReadError(where, "manifest is not a JSON object")
    return data, where


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 240 else text[:240] + "…"


# -- pieces of text ---------------------------------------------------------------------------------


def text_chunks(
    path: str, size: int = CHUNK_BYTES, *, skip_header: bool, quotes: bool
) -> Iterator[memoryview]:
    """The file (after its header line) in pieces of about ``size`` bytes, each ending at a line end.

    With ``quotes`` (csv) a line end inside a quoted field is not an end, so a field holding a newline
    is never cut in two (see :func:`_row_end`; the piece may end a little before the last line end).
    Each piece is a view of one buffer that is read into again for the next piece (fresh memory costs
    page faults, ~1/4 of the parse time): use a piece before asking for the next. pyarrow's parsers copy
    what they keep.
    """
    with open(path, "rb") as handle:
        if skip_header:
            handle.readline()
        buffer = bytearray(size + (1 << 16))
        kept = 0  # bytes at the start of the buffer: the unfinished line after the last piece
        while True:
            if len(buffer) < kept + size:
                buffer = buffer[:kept] + bytearray(size)  # a line longer than a piece: grow
            got = handle.readinto(memoryview(buffer)[kept : kept + size])
            end = kept + got
            if not got:
                if bytes(buffer[:kept]).strip():
                    yield memoryview(buffer)[:kept]
                return
            cut = _row_end(buffer, end) if quotes else buffer.rfind(b"\n", 0, end)
            if cut < 0:
                kept = end  # no line end yet: read on
                continue
            yield memoryview(buffer)[: cut + 1]
            rest = buffer[cut + 1 : end]
            kept = len(rest)
            buffer[:kept] = rest


#: Bytes before a quote that make it a closing quote: not a quote (an escaped one is doubled), not a
#: field or line start (where it would open a field).
_NOT_CLOSING = frozenset(b'",\r\n')


def _row_end(buffer: bytearray, end: int) -> int:
    """Index of the last line end in ``buffer[:end]`` that is outside quotes (-1: none), given that the
    buffer starts outside quotes.

    Fast path: a ``"`` followed by the line end and preceded by a byte that cannot open a field or be
    half of an escaped ``""`` is a closing quote, so that line end ends a row; our traces end their rows
    with the quoted PROPERTIES, so the last line has one. Otherwise, count quotes: a line end is outside
    them when the ``"`` before it are even in number.
    """
    limit = max(0, end - (1 << 20))
    for mark, step in ((b'"\n', 1), (b'"\r\n', 2)):
        pos = buffer.rfind(mark, limit, end)
        while pos > 0:
            if buffer[pos - 1] not in _NOT_CLOSING:
                return pos + step
            pos = buffer.rfind(mark, limit, pos)
    cut = buffer.rfind(b"\n", 0, end)
    while cut >= 0 and _odd_quotes(buffer, cut):
        cut = buffer.rfind(b"\n", 0, cut)
    return cut


def _odd_quotes(buffer: bytearray, end: int) -> bool:
    """Whether ``buffer[:end]`` holds an odd number of ``"`` (numpy counts 1.5x faster than bytes.count)."""
    import numpy as np

    return bool(np.count_nonzero(np.frombuffer(buffer, np.uint8, end) == 34) % 2)


# -- instance traces: tables ------------------------------------------------------------------------


def instance_tables(
    trace: TraceFile, columns: Sequence[str], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Any]:
    """pyarrow tables of ``columns`` of an instance trace, a piece at a time, with the same types
    whatever the format: times as ``timestamp[us]`` (naive UTC), numbers as float64, the rest strings;
    missing values are nulls."""
    pa = arrow()
    types = {name: _arrow_type(pa, INSTANCE_TYPES.get(name, "string")) for name in columns}
    try:
        if trace.fmt == "parquet":
            yield from _parquet_tables(trace, columns, types)
        elif trace.fmt == "jsonl":
            yield from _jsonl_tables(trace, columns, types, chunk_bytes)
        else:
            yield from _csv_tables(trace, columns, types, chunk_bytes)
    except pa.ArrowException as exc:
        raise TraceReadError(trace.path, f"cannot read {trace.fmt} trace: {_first_line(exc)}") from None
    except OSError as exc:
        raise TraceReadError(trace.path, f"cannot read: {exc.strerror or exc}") from None


def _arrow_type(pa: Any, name: str) -> Any:
    if name == "timestamp":
        return pa.timestamp("us")
    return pa.float64() if name == "float64" else pa.string()


def _csv_tables(
    trace: TraceFile, columns: Sequence[str], types: Dict[str, Any], chunk_bytes: int
) -> Iterator[Any]:
    pa = arrow()
    import pyarrow.csv as pacsv

    legacy = trace.fmt == "legacy-csv"
    read = pacsv.ReadOptions(column_names=list(trace.columns), block_size=max(1 << 20, chunk_bytes // 8))
    fast = pacsv.ParseOptions(newlines_in_values=False)
    safe = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        include_columns=list(columns), column_types=types, strings_can_be_null=True,
        null_values=["", "None"] if legacy else [""], quoted_strings_can_be_null=True,
    )  # fmt: skip
    for piece in text_chunks(trace.path, chunk_bytes, skip_header=True, quotes=True):
        buffer = pa.py_buffer(piece)
        try:
            yield pacsv.read_csv(buffer, read_options=read, parse_options=fast, convert_options=convert)
        except pa.ArrowInvalid:
            # a quoted field holding a line end (rare: an unmasked name): parse this piece the slow way
            yield pacsv.read_csv(buffer, read_options=read, parse_options=safe, convert_options=convert)


def _jsonl_tables(
    trace: TraceFile, columns: Sequence[str], types: Dict[str, Any], chunk_bytes: int
) -> Iterator[Any]:
    pa = arrow()
    import pyarrow.json as pajson

    schema = pa.schema([(name, types[name]) for name in columns])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = pajson.ReadOptions(block_size=max(1 << 20, chunk_bytes // 8))
    for piece in text_chunks(trace.path, chunk_bytes, skip_header=False, quotes=False):
        table = pajson.read_json(pa.BufferReader(pa.py_buffer(piece)), read_options=read, parse_options=parse)
        yield table.select(list(columns))


def _parquet_tables(trace: TraceFile, columns: Sequence[str], types: Dict[str, Any]) -> Iterator[Any]:
    pa = arrow()
    import pyarrow.parquet as pq

    schema = pa.schema([(name, types[name]) for name in columns])
    with pq.ParquetFile(trace.path) as handle:
        # a row group at a time: iter_batches over the whole file keeps ~300 MB of buffers at 10 M rows
        for group in range(handle.metadata.num_row_groups):
            if handle.metadata.row_group(group).num_rows <= PARQUET_GROUP_ROWS:
                yield handle.read_row_group(group, columns=list(columns)).cast(schema)
                continue
            for batch in handle.iter_batches(batch_size=1 << 18, row_groups=[group], columns=list(columns)):
                yield pa.Table.from_batches([batch]).cast(schema)


# -- machine traces: records ------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineRecord:
    """One row of a machine trace: time in microseconds since 1970 (naive UTC), host, event, properties."""

    time: int
    host: str
    event: str
    properties: Dict[str, Any]


def machine_records(trace: TraceFile, chunk_bytes: int = CHUNK_BYTES) -> Iterator[MachineRecord]:
    """Every row of a machine trace, PROPERTIES parsed (JSON; the legacy format's Python literal with
    :func:`ast.literal_eval`, never ``eval``). A bad row is an error naming the file and the row."""
    if trace.kind != "machine":
        raise TraceReadError(trace.path, "not a machine trace")
    if trace.fmt == "jsonl":
        yield from _machine_jsonl(trace)
        return
    pa = arrow()
    parse_properties = _literal_properties if trace.fmt == "legacy-csv" else _json_properties
    cache: Dict[str, Dict[str, Any]] = {}
    columns = ["EVENT_TIME", "HOST_NAME (PHYSICAL)", "EVENT", "PROPERTIES"]
    types = {"EVENT_TIME": pa.timestamp("us"), "HOST_NAME (PHYSICAL)": pa.string(), "EVENT": pa.string(),
             "PROPERTIES": pa.string()}  # fmt: skip
    try:
        if trace.fmt == "parquet":
            tables = _parquet_tables(trace, columns, types)
        else:
            tables = _csv_tables(trace, columns, types, chunk_bytes)
        row = 1
        for table in tables:
            times = table.column("EVENT_TIME").cast(pa.int64()).to_pylist()
            hosts = table.column("HOST_NAME (PHYSICAL)").to_pylist()
            events = table.column("EVENT").to_pylist()
            texts = table.column("PROPERTIES").to_pylist()
            for time, host, event, text in zip(times, hosts, events, texts):
                row += 1
                if time is None or event is None:
                    raise TraceReadError(trace.path, f"row {row}: no EVENT_TIME or EVENT")
                properties = cache.get(text or "")
                if properties is None:
                    properties = parse_properties(trace.path, row, text or "")
                    if len(cache) < 65536:
                        cache[text or ""] = properties
                yield MachineRecord(time, host or "", event, properties)
    except pa.ArrowException as exc:
        raise TraceReadError(trace.path, f"cannot read {trace.fmt} trace: {_first_line(exc)}") from None


def _json_properties(path: str, row: int, text: str) -> Dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise TraceReadError(path, f"row {row}: PROPERTIES is not JSON") from None
    if not isinstance(value, dict):
        raise TraceReadError(path, f"row {row}: PROPERTIES is not a JSON object")
    return value


def _literal_properties(path: str, row: int, text: str) -> Dict[str, Any]:
    """The legacy format's PROPERTIES (a Python dict repr), read as a literal: nothing is executed."""
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise TraceReadError(path, f"row {row}: PROPERTIES is not a Python dict literal") from None
    if not isinstance(value, dict):
        raise TraceReadError(path, f"row {row}: PROPERTIES is not a dict")
    return value


def _machine_jsonl(trace: TraceFile) -> Iterator[MachineRecord]:
    with open(trace.path, "rb") as handle:
        for row, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                time = parse_iso(record["EVENT_TIME"])
                event = record["EVENT"]
                properties = record.get("PROPERTIES") or {}
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise TraceReadError(trace.path, f"line {row}: not a machine event record") from None
            if not isinstance(properties, dict) or not isinstance(event, str):
                raise TraceReadError(trace.path, f"line {row}: not a machine event record")
            yield MachineRecord(time, record.get("HOST_NAME (PHYSICAL)") or "", event, properties)


def parse_iso(text: Any) -> int:
    """An ISO 8601 time (naive UTC, or with an offset) → microseconds since 1970."""
    if not isinstance(text, str):
        raise ValueError(text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return to_micros(value)


def to_micros(value: dt.datetime) -> int:
    delta = value - _UNIX
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return _UNIX + dt.timedelta(microseconds=int(value))


def iso(value: Optional[int]) -> Optional[str]:
    """Microseconds since 1970 → ISO text (seconds precision unless there is a fraction)."""
    return None if value is None else from_micros(value).isoformat()


def read_all(paths: Sequence[str]) -> List[TraceFile]:
    return [open_trace(path) for path in paths]
