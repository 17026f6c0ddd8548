"""Instance events from live Nova cell databases (SPEC §1.3), streamed with PyMySQL.

One row per ``instance_actions_events`` row::

    instances i JOIN instance_actions ia ON i.uuid = ia.instance_uuid
                JOIN instance_actions_events iae ON ia.id = iae.action_id

Each cell database gets its own connection and a server-side (unbuffered) cursor, ordered by event start
time in SQL; the cells are merged in time order while streaming (:func:`merge_sorted_batches`), so
memory stays flat however many events there are. Rows are read in bulk by :mod:`starcompactor.mysql_rows`
and handed on in batches (lists), which is what keeps the per-event cost of the pipeline low. The
instance's columns, which repeat on each of its events, come last and are read as one item: decoded,
and masked, once per instance (:func:`instance_columns`).

``HOST_NAME (PHYSICAL)`` is ``instances.node`` — the hypervisor_hostname for a VM, the Ironic node uuid
for bare metal — because that is the host key of the machine trace (SPEC §1.2). ``instances.host`` (the
nova-compute service name, what the original tool published) is only the fallback when ``node`` is
empty; with a VM it rarely equals the hypervisor_hostname, so such rows will not join.

PyMySQL is imported when a connection is made, not with this module.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import ConfigError, DatabaseError
from .events import InstanceEvent
from .mycnf import default_files, read_option_files
from .mysql_rows import SharedColumns, datetime_or_none, stream_chunks, stream_rows

if TYPE_CHECKING:
    from .mask import Masker

log = logging.getLogger(__name__)

#: Where the client looks for the server's socket when host is ``localhost`` (Debian/RHEL/macOS builds).
DEFAULT_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock")  # noqa: S108 - the client's own default


@dataclass
class DbSettings:
    """How to reach the server. ``password`` never appears in repr, logs or messages."""

    host: Optional[str] = None
    port: int = 3306
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    socket: Optional[str] = None
    protocol: Optional[str] = None
    ssl: Dict[str, Any] = field(default_factory=dict)
    connect_timeout: int = 10

    def address(self) -> Tuple[Optional[str], Optional[str], int]:
        """(socket, host, port) actually used: like the client, ``localhost`` means the local socket."""
        if self.socket:
            return self.socket, None, self.port
        if (self.protocol or "").lower() != "tcp" and self.host in (None, "", "localhost"):
            for candidate in DEFAULT_SOCKETS:
                if os.path.exists(candidate):
                    return candidate, None, self.port
        return None, self.host or "localhost", self.port

    @property
    def server(self) -> str:
        """The server as named in messages: ``MySQL server localhost:3306`` or ``… socket /path``."""
        socket, host, port = self.address()
        where = f"socket {socket}" if socket else f"{host}:{port}"
        return f"MySQL server {where}"


def resolve_settings(
    *,
    defaults_file: Optional[str] = None,
    defaults_extra_file: Optional[str] = None,
    no_defaults: bool = False,
    host: Optional[str] = None,
    port: Optional[int] = None,
    user: Optional[str] = None,
    socket: Optional[str] = None,
    password: Optional[str] = None,
    prompt: bool = False,
    default_user: Optional[str] = None,
) -> DbSettings:
    """Option files, then explicit values (which win), then a password prompt if asked for.

    ``prompt`` (``-p`` with no value) asks on the terminal with :func:`getpass.getpass`, as does a bare
    ``password`` line in an option file; a password is never taken from the command line here.
    """
    if no_defaults:
        options: Dict[str, Optional[str]] = {}
    elif defaults_file:
        path = Path(defaults_file)
        options = read_option_files([path], required=[path])
    else:
        extra = [Path(defaults_extra_file)] if defaults_extra_file else []
        options = read_option_files(default_files(defaults_extra_file), required=extra)

    def opt(name: str) -> Optional[str]:
        value = options.get(name)
        return value if value else None

    port_text = opt("port")
    try:
        file_port = int(port_text) if port_text else None
    except ValueError:
        raise ConfigError(f"option file: port must be a number, not {port_text!r}") from None
    settings = DbSettings(
        host=host or opt("host"),
        port=port or file_port or 3306,
        user=user or opt("user") or default_user or _login_name(),
        socket=socket or opt("socket"),
        protocol=opt("protocol"),
    )
    for name, key in (("ssl-ca", "ca"), ("ssl-cert", "cert"), ("ssl-key", "key")):
        if opt(name):
            settings.ssl[key] = opt(name)
    if "ssl-verify-server-cert" in options and settings.ssl:
        settings.ssl["check_hostname"] = True
    if password is not None:
        settings.password = password
    elif prompt or ("password" in options and options["password"] is None):
        settings.password = getpass.getpass(f"Password for {settings.user} at {settings.server}: ")
    else:
        settings.password = options.get("password") or ""
    return settings


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "root"


# -- connection -------------------------------------------------------------------------------------


def _conversions() -> Dict[Any, Any]:
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import conversions

    conv = dict(conversions)
    conv[FIELD_TYPE.DATETIME] = datetime_or_none
    conv[FIELD_TYPE.TIMESTAMP] = datetime_or_none
    return conv


def database_error(settings: DbSettings, database: Optional[str], exc: BaseException) -> DatabaseError:
    """One line for any PyMySQL error: ``MySQL server …: database nova: Access denied … (MySQL error 1045)``."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        detail = f"{str(args[1]).splitlines()[0] if args[1] else type(exc).__name__} (MySQL error {args[0]})"
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseError(settings.server, database, detail)


def connect(settings: DbSettings, database: str, *, unbuffered: bool = True) -> Any:
    """A PyMySQL connection to ``database`` with a server-side cursor class; errors → DatabaseError."""
    try:
        import pymysql
        import pymysql.cursors
    except ImportError as exc:  # pragma: no cover - PyMySQL is a hard dependency
        from .errors import MissingDependencyError

        raise MissingDependencyError("PyMySQL", "db", "--source db") from exc
    socket, host, port = settings.address()
    kwargs: Dict[str, Any] = {
        "user": settings.user,
        "password": settings.password or "",
        "database": database,
        "charset": "utf8mb4",
        "conv": _conversions(),
        "connect_timeout": settings.connect_timeout,
        "autocommit": True,
        "cursorclass": pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor,
    }
    if socket:
        kwargs["unix_socket"] = socket
    else:
        kwargs["host"] = host
        kwargs["port"] = port
    if settings.ssl:
        kwargs["ssl"] = dict(settings.ssl)
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc) from None


# -- query ------------------------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """A MySQL identifier in backquotes (a backquote inside is doubled)."""
    if not name or "\x00" in name:
        raise ConfigError(f"bad database name {name!r}")
    return "`" + name.replace("`", "``") + "`"


def build_query(
    database: str,
    *,
    start: Optional[dt.datetime] = None,
    end: Optional[dt.datetime] = None,
    instance_type: str = "vm",
) -> Tuple[str, List[Any]]:
    """The SPEC §1.3 join for one cell, ordered by event start time; values are parameters.

    The event's :data:`EVENT_COLUMNS` columns come first, then the instance's, which repeat on every
    event of an instance and are read as one item (:func:`instance_columns`).
    ``--start``/``--end`` bound ``instance_actions.created_at`` inclusively, as the original did.
    """
    db = quote_identifier(database)
    columns = [
        "iae.`event`", "iae.`start_time`", "iae.`finish_time`", "iae.`result`",
        "i.`uuid`", "i.`hostname`", "i.`user_id`", "i.`project_id`", "COALESCE(NULLIF(i.`node`, ''), i.`host`)",
    ]  # fmt: skip
    if instance_type == "vm":
        # One text column for the flavor: a VM's rows repeat it, and one field parses faster than three.
        columns.append(
            "CONCAT_WS(',', IFNULL(i.`memory_mb`, 'NULL'), IFNULL(i.`root_gb`, 'NULL'), IFNULL(i.`vcpus`, 'NULL'))"
        )
    sql = (
        f"SELECT {', '.join(columns)} FROM {db}.`instances` AS i "
        f"JOIN {db}.`instance_actions` AS ia ON i.`uuid` = ia.`instance_uuid` "
        f"JOIN {db}.`instance_actions_events` AS iae ON ia.`id` = iae.`action_id`"
    )
    where = []
    params: List[Any] = []
    if start is not None:
        where.append("ia.`created_at` >= %s")
        params.append(start)
    if end is not None:
        where.append("ia.`created_at` <= %s")
        params.append(end)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY iae.`start_time`, iae.`id`"
    return sql, params


@dataclass
class CellStats:
    """What one cell contributed (for the manifest)."""

    database: str
    events: int = 0
    skipped_unfinished: int = 0


def _cell_rows(
    settings: DbSettings,
    connection: Any,
    database: str,
    sql: str,
    params: List[Any],
    instance: SharedColumns,
    include_unfinished: bool,
    stats: CellStats,
) -> Iterator[List[tuple]]:
    """One cell's rows in start-time order, in lists (one per read from the server), shaped
    ``(event, start, finish, result, instance item)``; unfinished ones left out unless asked for."""
    import pymysql

    events = skipped = 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for rows in stream_rows(cursor, shared=instance):
                if not include_unfinished:
                    rows, dropped = finished_rows(rows)
                    skipped += dropped
                events += len(rows)
                if rows:
                    yield rows
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc) from None
    finally:
        stats.events = events
        stats.skipped_unfinished = skipped
        try:
            connection.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken connection
            log.debug("closing %s: %s", database, exc)


def finished_rows(rows: List[tuple]) -> Tuple[List[tuple], int]:
    """(the rows with a finish time, how many were left out)."""
    finished = [row for row in rows if row[2] is not None]
    return finished, len(rows) - len(finished)


_NO_PROPERTIES: Dict[str, Any] = {}

#: How many columns of :func:`build_query` belong to the event; the instance's follow.
EVENT_COLUMNS = 4


def instance_columns(vm: bool, masker: Optional[Masker] = None) -> SharedColumns:
    """The instance columns of :func:`build_query`'s rows as one item per distinct instance:
    ``(uuid, name, user_id, project_id, host, properties)``, its identifying fields masked by
    ``masker`` when one is given (the same values as :func:`~starcompactor.mask.mask_instance_batch`).

    An instance has many events; this way its columns are decoded, and its fields hashed, once.
    """
    flavors = Flavors()

    if masker is None:

        def make(values: tuple) -> tuple:
            uuid, name, user, project, host, *flavor = values
            return uuid, name, user, project, host, flavors[flavor[0]] if vm else _NO_PROPERTIES

    else:
        mask = masker.table  # users, projects and hosts recur across instances
        mask_once = masker.uncached  # an instance's uuid and name do not

        def make(values: tuple) -> tuple:
            uuid, name, user, project, host, *flavor = values
            properties = flavors[flavor[0]] if vm else _NO_PROPERTIES
            return mask_once(uuid), mask_once(name), mask[user], mask[project], mask[host], properties

    return SharedColumns(EVENT_COLUMNS, make)


def rows_to_events(rows: List[tuple]) -> List[InstanceEvent]:
    """Rows of :func:`build_query`, read with :func:`instance_columns`, → events."""
    make = tuple.__new__
    cls = InstanceEvent
    return [
        make(cls, (uuid, event, start, finish, result, name, user, project, host, properties))
        for event, start, finish, result, (uuid, name, user, project, host, properties) in rows
    ]


def rows_to_lines(rows: List[tuple], line: Callable[..., str]) -> List[str]:
    """Rows of :func:`build_query`, read with :func:`instance_columns`, → output lines, where ``line`` is
    a :func:`~starcompactor.writers.instance_line_maker`: the same lines as formatting the events of
    :func:`rows_to_events`, without making them (a tuple per event is measurable at millions)."""
    return [
        line(uuid, event, start, finish, result, name, user, project, host, properties)
        for event, start, finish, result, (uuid, name, user, project, host, properties) in rows
    ]


def row_counts(rows: List[tuple]) -> Tuple[Counter, Optional[dt.datetime], Optional[dt.datetime]]:
    """(events by name, first start time, last start time) of rows in start-time order (SQL puts the
    rows without a start time first)."""
    first = next((row[1] for row in rows if row[1] is not None), None)
    return Counter(map(itemgetter(0), rows)), first, rows[-1][1] if rows else None


class Flavors(dict):  # type: ignore[type-arg]
    """``memory_mb,root_gb,vcpus`` text → the PROPERTIES dict, one shared dict per distinct flavor."""

    def __missing__(self, text: str) -> Dict[str, Any]:
        values = [None if part == "NULL" else int(part) for part in text.split(",")]
        properties = dict(zip(("memory_mb", "root_gb", "vcpus"), values))
        if len(self) < 4096:
            self[text] = properties
        return properties


def _row_start(row: tuple) -> dt.datetime:
    return row[1] or dt.datetime.min


def _cut(batch: List[Any], bound: Any, inclusive: bool, key: Callable[[Any], Any], lo: int = 0) -> int:
    """How many leading items of ``batch`` (sorted) have a key below ``bound`` (or equal, if inclusive);
    the answer is known to be at least ``lo``."""
    hi = len(batch)
    while lo < hi:
        mid = (lo + hi) // 2
        value = key(batch[mid])
        if value < bound or (inclusive and value == bound):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _merge_two(earlier: List[Any], later: List[Any], key: Callable[[Any], Any]) -> List[Any]:
    """Two sorted lists in one; on equal keys ``earlier``'s items first (a stable merge).

    The shorter list's items are placed into the longer by binary search and the longer is copied in
    slices: a cell with a few events (``nova_cell0``) costs next to nothing beside a busy one.
    """
    if len(later) <= len(earlier):
        dense, sparse, inclusive = earlier, later, True  # a later item goes after equal earlier ones
    else:
        dense, sparse, inclusive = later, earlier, False  # an earlier item goes before equal later ones
    out: List[Any] = []
    position = 0
    for item in sparse:
        cut = _cut(dense, key(item), inclusive, key, position)
        out.extend(dense[position:cut])
        out.append(item)
        position = cut
    out.extend(dense[position:])
    return out


def merge_sorted_batches(
    streams: List[Iterator[List[Any]]], key: Callable[[Any], Any]
) -> Iterator[List[Any]]:
    """Merge streams of sorted batches into batches in (key, stream, position) order.

    The same order as :func:`heapq.merge` of the items (ties go to the earlier stream), without a heap
    operation per item (see :func:`_merge_two`). Each round emits everything up
    to the smallest last key among the current batches: nothing after it can sort before it. All
    streams are closed (their connections too) when done or abandoned.
    """
    try:
        heads: List[Tuple[int, List[Any]]] = []
        for index, stream in enumerate(streams):
            batch = next(stream, None)
            if batch:
                heads.append((index, batch))
        while len(heads) > 1:
            bound, bound_index = min((key(batch[-1]), index) for index, batch in heads)
            parts = []
            following = []
            for index, batch in heads:
                cut = len(batch) if index == bound_index else _cut(batch, bound, index < bound_index, key)
                if cut:
                    parts.append(batch[:cut] if cut < len(batch) else batch)
                rest = batch[cut:]
                if not rest:
                    rest = next(streams[index], None) or []
                if rest:
                    following.append((index, rest))
            heads = following
            if parts:
                merged = parts[0]
                for part in parts[1:]:
                    merged = _merge_two(merged, part, key)
                yield merged
        if heads:
            index, batch = heads[0]
            yield batch
            yield from streams[index]
    finally:
        for stream in streams:
            stream.close()  # type: ignore[attr-defined]


def _cell_chunks(
    settings: DbSettings, connection: Any, database: str, sql: str, params: List[Any]
) -> Iterator[Tuple[Any, int, Any]]:
    """One cell's result as undecoded chunks: ``(chunk, seq, converters)`` (see mysql_rows)."""
    import pymysql

    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            converters = getattr(cursor._result, "converters", None)
            for chunk, seq in stream_chunks(cursor):
                yield chunk, seq, converters
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc) from None
    finally:
        try:
            connection.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken connection
            log.debug("closing %s: %s", database, exc)


class DatabaseSource:
    """Instance events of every cell database, merged in start-time order, as one iterator.

    Connections are opened (and errors raised) by :meth:`open`, before any output is started; iterate
    once. ``cells`` holds per-database counts after iteration.
    """

    def __init__(
        self,
        settings: DbSettings,
        databases: Sequence[str],
        *,
        start: Optional[dt.datetime] = None,
        end: Optional[dt.datetime] = None,
        instance_type: str = "vm",
        include_unfinished: bool = False,
    ) -> None:
        if instance_type not in ("vm", "baremetal"):
            raise ConfigError(f"unknown instance type {instance_type!r} (choose vm or baremetal)")
        if not databases:
            raise ConfigError("no Nova databases to read (nova_databases is empty)")
        self.settings = settings
        self.databases = list(dict.fromkeys(databases))
        self.start = start
        self.end = end
        self.instance_type = instance_type
        self.include_unfinished = include_unfinished
        self.cells = [CellStats(db) for db in self.databases]
        self._connections: List[Any] = []

    def open(self) -> DatabaseSource:
        """Connect to every cell now, so that a wrong name or password fails before any output."""
        try:
            for database in self.databases:
                self._connections.append(connect(self.settings, database))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.close()
            except Exception as exc:  # noqa: BLE001 - already broken
                log.debug("closing a connection: %s", exc)
        self._connections = []

    def __iter__(self) -> Iterator[InstanceEvent]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[List[InstanceEvent]]:
        """The events as lists in start-time order: the fast way through a pipeline of millions."""
        return self.masked_batches(None)

    def masked_batches(self, masker: Optional[Masker]) -> Iterator[List[InstanceEvent]]:
        """:meth:`batches` with the identifying fields masked by ``masker`` (as
        :func:`~starcompactor.mask.mask_instance_batch` does), once per instance rather than per event."""
        return map(rows_to_events, self.row_batches(masker))

    def row_batches(self, masker: Optional[Masker]) -> Iterator[List[tuple]]:
        """The rows behind :meth:`masked_batches` (see :func:`rows_to_events`, :func:`rows_to_lines`)."""
        if not self._connections:
            self.open()
        vm = self.instance_type == "vm"
        streams = []
        for connection, database, stats in zip(self._connections, self.databases, self.cells):
            sql, params = build_query(
                database, start=self.start, end=self.end, instance_type=self.instance_type
            )
            log.info("querying %s database %s", self.settings.server, database)
            streams.append(
                _cell_rows(
                    self.settings,
                    connection,
                    database,
                    sql,
                    params,
                    instance_columns(vm, masker),
                    self.include_unfinished,
                    stats,
                )
            )
        self._connections = []
        return merge_sorted_batches(streams, _row_start)

    def chunk_streams(self) -> List[Iterator[Tuple[Any, int, Any]]]:
        """Per cell, the result as undecoded chunks (for :mod:`starcompactor.instances_parallel`)."""
        if not self._connections:
            self.open()
        streams = []
        for connection, database in zip(self._connections, self.databases):
            sql, params = build_query(
                database, start=self.start, end=self.end, instance_type=self.instance_type
            )
            log.info("querying %s database %s", self.settings.server, database)
            streams.append(_cell_chunks(self.settings, connection, database, sql, params))
        self._connections = []
        return streams

    @property
    def skipped_unfinished(self) -> int:
        return sum(c.skipped_unfinished for c in self.cells)

    def manifest_extra(self) -> Dict[str, Any]:
        """What the manifest says about this run beyond the counts: window, unfinished events skipped."""
        return {
            "source": "db",
            "window": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
            "include_unfinished": self.include_unfinished,
            "skipped_unfinished": self.skipped_unfinished,
        }

    def inputs(self) -> List[Dict[str, Any]]:
        """Manifest ``inputs`` entries: one per cell database (no credentials)."""
        return [
            {
                "source": "mysql",
                "server": self.settings.server,
                "database": c.database,
                "events": c.events,
                "skipped_unfinished": c.skipped_unfinished,
            }
            for c in self.cells
        ]
