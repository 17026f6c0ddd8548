"""The ``openstack_audit`` log exported to Parquet, in the layout upstream StarCompactor reads.

Upstream (ChameleonCloud/starcompactor, ``starcompactor/extractors/machine.py`` and ``instance.py``) reads
one file per audit table, named ``openstack_audit.audit_<name>.parquet``, from one directory; each file has
the audit table's own columns, ``data`` as JSON text and the times as timestamps (naive, or tz-aware in
UTC; upstream also accepts time text). Here the location is a directory or an ``s3://`` prefix, and a
table whose file is absent is simply not in the log (upstream crashes on it).

Files are read column-wise with pyarrow, a batch at a time (row group by row group), never row by row
through pandas: memory stays bounded by the batch, whatever the table's size. pyarrow is imported when a
log is opened (``pip install 'starcompactor[parquet]'``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import AuditLogError, ConfigError, MissingDependencyError, StarCompactorError
from .records import (
    AUDIT_DATABASE,
    BACKFILL_USER,
    EXPECTED_TABLES,
    AuditLog,
    AuditRow,
    TableLayout,
    TableStats,
    json_value,
    parse_data,
    parse_time_text,
    rows_of,
)

#: Rows per batch: the Python objects of one batch (a data dict of ~25 keys each) are what memory holds.
BATCH_ROWS = 16384
FILE_NAME = re.compile(r"^" + re.escape(AUDIT_DATABASE) + r"\.audit_(?P<name>.+)\.parquet$")


def _pyarrow() -> Tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            "pyarrow", "parquet", "reading an openstack_audit Parquet export"
        ) from exc
    return pa, pc, pq


# -- listing ----------------------------------------------------------------------------------------


def _list_local(directory: str) -> List[Tuple[str, str]]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        raise ConfigError(f"{directory}: audit export directory does not exist") from None
    except NotADirectoryError:
        raise ConfigError(f"{directory}: not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot list audit export directory: {exc.strerror or exc}") from exc
    # a table is one file, or a directory of part files (as pyarrow's and Spark's dataset writers make)
    return [(entry.path, entry.name) for entry in entries if entry.is_file() or entry.is_dir()]


def _list_s3(uri: str, transport_params: Optional[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """Objects right under the prefix, as ``starcompactor.backups`` lists a backup directory."""
    client = (transport_params or {}).get("client")
    if client is None:
        try:
            import boto3
        except ImportError as exc:
            raise MissingDependencyError("boto3", "s3", "an s3:// audit export") from exc
        client = boto3.client("s3")  # honours AWS_ENDPOINT_URL, as smart_open does when opening
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(prefix) :]
                if name:
                    found.append((f"s3://{bucket}/{obj['Key']}", name))
            for common in page.get("CommonPrefixes", ()):  # a table written as a directory of parts
                name = common["Prefix"][len(prefix) :].rstrip("/")
                if name:
                    found.append((f"s3://{bucket}/{common['Prefix']}", name))
    except Exception as exc:  # botocore errors: no such bucket, access denied, no endpoint
        if isinstance(exc, StarCompactorError):
            raise
        raise ConfigError(f"{uri}: cannot list audit export: {exc}") from exc
    return found


def export_files(location: str, transport_params: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """``{table name: file URI}`` of the export at ``location`` (directory, ``file://`` or ``s3://``)."""
    if location.startswith("file://"):
        location = location[len("file://") :]
    if "://" not in location:
        entries = _list_local(location)
    elif location.startswith("s3://"):
        entries = _list_s3(location, transport_params)
    else:
        scheme = location.split("://", 1)[0]
        raise ConfigError(
            f"{location}: cannot list a {scheme}:// audit export (local directories and s3:// only)"
        )
    files = {}
    for uri, name in entries:
        m = FILE_NAME.match(name)
        if m:
            files[m.group("name")] = uri
    return dict(sorted(files.items()))


def _parts(uri: str, transport_params: Optional[Dict[str, Any]]) -> List[str]:
    """The part files of a table written as a directory (``uri`` ends with ``/`` on S3), in name order;
    hidden and bookkeeping files (``_SUCCESS``, ``.crc``) left out."""
    if uri.startswith("s3://"):
        return [u for u, name in _list_s3(uri, transport_params) if _is_part(name)]
    try:
        names = sorted(e.name for e in os.scandir(uri) if e.is_file() and _is_part(e.name))
    except OSError as exc:
        raise AuditLogError(uri, None, f"cannot list the table's part files: {exc.strerror or exc}") from exc
    return [os.path.join(uri, name) for name in names]


def _is_part(name: str) -> bool:
    return not name.startswith(("_", ".")) and not name.endswith(".crc")


class _PartedFile:
    """The two things this module asks of a ``ParquetFile``, over a table's part files in order."""

    def __init__(self, files: List[Any]) -> None:
        self._files = files
        self.schema_arrow = files[0].schema_arrow

    def iter_batches(self, **options: Any) -> Iterator[Any]:
        for part in self._files:
            yield from part.iter_batches(**options)


@contextlib.contextmanager
def _parquet_file(uri: str, table: str, transport_params: Optional[Dict[str, Any]]) -> Iterator[Any]:
    """An open ``pyarrow.parquet.ParquetFile`` (or the parts of a directory, read in turn); errors name
    the file and the table."""
    pa, _, pq = _pyarrow()
    if uri.endswith("/") or ("://" not in uri and os.path.isdir(uri)):
        parts = _parts(uri, transport_params)
        if not parts:
            raise AuditLogError(uri, f"audit_{table}", "a directory without Parquet part files")
        with contextlib.ExitStack() as stack:
            opened = [stack.enter_context(_parquet_file(part, table, transport_params)) for part in parts]
            yield _PartedFile(opened)
        return
    handle = None
    try:
        if "://" in uri:
            import smart_open

            handle = smart_open.open(uri, "rb", compression="disable", transport_params=transport_params)
            yield pq.ParquetFile(handle)
        else:
            yield pq.ParquetFile(uri)
    except (pa.ArrowException, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditLogError(uri, f"audit_{table}", f"cannot read Parquet: {detail}") from None
    finally:
        if handle is not None:
            handle.close()


# -- columns → rows ---------------------------------------------------------------------------------


def _times(pa: Any, array: Any, uri: str, table: str, column: str) -> List[Any]:
    """A time column → naive UTC datetimes. Aware timestamps are stored as UTC instants: viewing them
    without their zone gives UTC wall time. Nanoseconds are cut to microseconds (Python's resolution)."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            array = array.view(pa.timestamp(kind.unit))
        if kind.unit != "us":  # seconds and milliseconds too: their text has 0 or 3 digits of fraction,
            array = array.cast(pa.timestamp("us"), safe=False)  # which Python < 3.11 cannot parse
        # pyarrow's own to_pylist makes each datetime in Python (~3 µs); its text in C and fromisoformat
        # (C too) take a fifth of that
        parse = dt.datetime.fromisoformat
        return [parse(text) if text is not None else None for text in array.cast(pa.string()).to_pylist()]
    if pa.types.is_null(kind):
        return [None] * len(array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out = []
        for text in array.to_pylist():
            value = parse_time_text(text) if text is not None else None
            if text is not None and value is None:
                raise AuditLogError(uri, f"audit_{table}", f"{column} holds {text!r}, not a time")
            out.append(value)
        return out
    if pa.types.is_date(kind):
        return [dt.datetime.combine(d, dt.time()) if d is not None else None for d in array.to_pylist()]
    raise AuditLogError(uri, f"audit_{table}", f"{column} is {kind}, not a timestamp")


def _texts(pa: Any, array: Any) -> List[Optional[str]]:
    if pa.types.is_integer(array.type):
        array = array.cast(pa.string())
    elif pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return [v.decode("utf-8", "replace") if v is not None else None for v in array.to_pylist()]
    return array.to_pylist()


def _data(pa: Any, array: Any, audit_ids: List[Any], uri: str, table: str) -> List[Dict[str, Any]]:
    kind = array.type
    if pa.types.is_struct(kind) or pa.types.is_map(kind):
        # a typed export (a struct of the captured columns): the same objects the JSON text gives
        return [_plain_object(value) for value in array.to_pylist()]
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_null(kind)
    ):
        raise AuditLogError(uri, f"audit_{table}", f"data is {kind}, not JSON text")
    import orjson

    loads = orjson.loads
    texts = array.to_pylist()
    try:
        objects = [loads(t) if t is not None else {} for t in texts]
    except orjson.JSONDecodeError:
        objects = [parse_data(uri, table, a, t) for a, t in zip(audit_ids, texts)]  # names the bad row
    if set(map(type, objects)) - {dict}:
        for audit_id, value in zip(audit_ids, objects):
            if type(value) is not dict:
                parse_data(uri, table, audit_id, orjson.dumps(value))  # raises: not an object
    return objects


def _plain_object(value: Any) -> Dict[str, Any]:
    """A struct's or map's value as the JSON object of its text form would be (times as MySQL writes
    them in JSON: ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return {}
    items = value if isinstance(value, list) else value.items()  # a map is a list of pairs
    out = {}
    for key, item in items:
        if isinstance(item, dt.datetime):
            if item.tzinfo is not None:
                item = item.astimezone(dt.timezone.utc).replace(tzinfo=None)
            item = item.isoformat(" ", "microseconds")
        elif isinstance(item, dt.date):
            item = item.isoformat()
        elif isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        out[str(key)] = item
    return out


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The collector off while a batch is made: its objects hold no cycles, and the collections that
    tens of thousands of new dicts trigger cost a fifth of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _batch_rows(pa: Any, batch: Any, layout: TableLayout, uri: str) -> List[AuditRow]:
    with _no_gc():
        return _make_rows(pa, batch, layout, uri)


def _make_rows(pa: Any, batch: Any, layout: TableLayout, uri: str) -> List[AuditRow]:
    name = layout.name
    col = batch.column
    index = {c: i for i, c in enumerate(batch.schema.names)}
    n = batch.num_rows
    audit_ids = col(index["audit_id"]).to_pylist()
    ids = _texts(pa, col(index["id"]))
    types = col(index["audit_event_type"]).to_pylist()
    changed_at = _times(pa, col(index["audit_changed_at"]), uri, name, "audit_changed_at")
    event_time = (
        _times(pa, col(index["audit_event_time"]), uri, name, "audit_event_time")
        if layout.has_event_time
        else changed_at
    )
    changed_by = col(index["audit_changed_by"]).to_pylist() if layout.has_changed_by else [None] * n
    if layout.has_data:
        data = _data(pa, col(index["data"]), audit_ids, uri, name)
    else:
        values = []
        for column in layout.captured:
            array = col(index[column])
            if pa.types.is_timestamp(array.type):
                values.append([json_value(v) for v in _times(pa, array, uri, name, column)])
            else:
                values.append([json_value(v) for v in array.to_pylist()])
        data = [dict(zip(layout.captured, row)) for row in zip(*values)]
    return rows_of(name, [audit_ids, ids, types, event_time, changed_by, changed_at, data])


# -- the log ----------------------------------------------------------------------------------------


def read_parquet_log(
    location: str,
    *,
    expected: Any = EXPECTED_TABLES,
    transport_params: Optional[Dict[str, Any]] = None,
    batch_rows: int = BATCH_ROWS,
) -> AuditLog:
    """The audit log exported at ``location``. Each file's schema is checked now (a file that is not
    Parquet, or a table without the audit columns, is an :class:`AuditLogError` naming it); rows are
    read when :meth:`AuditLog.batches` asks for them."""
    pa, pc, _ = _pyarrow()
    files = export_files(location, transport_params)
    if not files:
        raise AuditLogError(location, None, f"no {AUDIT_DATABASE}.audit_<name>.parquet file here")
    layouts: Dict[str, TableLayout] = {}
    for name, uri in files.items():
        with _parquet_file(uri, name, transport_params) as parquet:
            layouts[name] = TableLayout.of(uri, name, parquet.schema_arrow.names)

    def read_batches(layout: TableLayout) -> Iterator[List[AuditRow]]:
        uri = files[layout.name]
        columns = list(dict.fromkeys(layout.select))
        with _parquet_file(uri, layout.name, transport_params) as parquet:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                yield _batch_rows(pa, batch, layout, uri)

    def read_stats(layout: TableLayout) -> TableStats:
        """Two columns only, counted by pyarrow."""
        uri = files[layout.name]
        stats = TableStats()
        columns = ["audit_changed_at"] + (["audit_changed_by"] if layout.has_changed_by else [])
        with _parquet_file(uri, layout.name, transport_params) as parquet:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                at = batch.column(0)
                if not pa.types.is_timestamp(at.type):
                    for by, when in zip(
                        batch.column(1).to_pylist() if layout.has_changed_by else [None] * batch.num_rows,
                        _times(pa, at, uri, layout.name, "audit_changed_at"),
                    ):
                        stats.add(by, when)
                    continue
                if at.type.tz is not None:
                    at = at.view(pa.timestamp(at.type.unit))
                if at.type.unit == "ns":
                    at = at.cast(pa.timestamp("us"), safe=False)
                stats.rows += batch.num_rows
                bounds = pc.min_max(at).as_py()
                for when in (bounds["min"], bounds["max"]):
                    if when is not None:
                        stats.add(None, when, 0)
                if layout.has_changed_by:
                    backfill = pc.filter(at, pc.equal(batch.column(1), BACKFILL_USER))
                    for item in pc.value_counts(backfill).to_pylist():
                        if item["values"] is not None:
                            stats.backfill[item["values"]] += item["counts"]
        return stats

    return AuditLog(location, "parquet", layouts, read_batches, read_stats=read_stats, expected=expected)


__all__ = ["export_files", "read_parquet_log"]
