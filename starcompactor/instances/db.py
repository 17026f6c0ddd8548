"""Instance events from live Nova cell databases (SPEC §1.3), streamed with PyMySQL.

One row per ``instance_actions_events`` row::

    instances i JOIN instance_actions ia ON i.uuid = ia.instance_uuid
                JOIN instance_actions_events iae ON ia.id = iae.action_id

Each cell database gets its own connection and a server-side (unbuffered) cursor, ordered by event start
time in SQL; the cells are merged in time order while streaming (:func:`merge_sorted_batches`), so
memory stays flat however many events there are. Rows are read in bulk by :mod:`starcompactor.server.packets`
and handed on in batches (lists), which is what keeps the per-event cost of the pipeline low. The
instance's columns, which repeat on each of its events, come last and are read as one item: decoded,
and masked, once per instance (:func:`instance_columns`).

``HOST_NAME (PHYSICAL)`` follows one rule on every path (:func:`physical_host`, SPEC §1.3): the instance's
``node`` — the hypervisor_hostname for a VM, the Ironic node uuid for bare metal, the machine trace's host
key (SPEC §1.2) — else the event's own ``instance_actions_events.host`` (the service that handled it: a
build that failed and cleared the node still names where it ran), else ``instances.host``. Here the
rule (:mod:`starcompactor.instances.hosts`) is SQL (:data:`EVENT_HOST`, :data:`INSTANCE_HOST`): the event's host is a column of its own, NULL
whenever the instance has a node, so the common row pays one NULL byte for it.

PyMySQL is imported when a connection is made (:mod:`starcompactor.server.connect`), not with this module.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..config import check_instance_type
from ..errors import ConfigError
from ..events import InstanceEvent
from ..mask import Masker
from ..server.connect import connect, database_error, quote_identifier
from ..server.packets import SharedColumns, stream_chunks, stream_rows
from ..server.settings import DbSettings
from .hosts import physical_host as physical_host  # the rule lives in hosts; re-exported
from .merge import merge_sorted_batches

log = logging.getLogger(__name__)


#: :func:`physical_host` in SQL, split in two: the event's host when the instance has no node (NULL
#: otherwise, one byte per row) …
EVENT_HOST = "CASE WHEN i.`node` IS NULL OR i.`node` = '' THEN NULLIF(iae.`host`, '') END"
#: … and the instance's part, read once per instance.
INSTANCE_HOST = "COALESCE(NULLIF(i.`node`, ''), i.`host`)"


def build_query(
    database: str,
    *,
    start: Optional[dt.datetime] = None,
    end: Optional[dt.datetime] = None,
    instance_type: str = "vm",
) -> Tuple[str, List[Any]]:
    """The SPEC §1.3 join for one cell, ordered by event start time; values are parameters.

    The event's :data:`EVENT_COLUMNS` columns come first (the last of them its own host, see
    :data:`EVENT_HOST`), then the instance's, which repeat on every event of an instance and are read as
    one item (:func:`instance_columns`).
    ``--start``/``--end`` bound ``instance_actions.created_at`` inclusively, as the original did.
    """
    db = quote_identifier(database)
    columns = [
        "iae.`event`",
        "iae.`start_time`",
        "iae.`finish_time`",
        "iae.`result`",
        EVENT_HOST,
        "i.`uuid`",
        "i.`hostname`",
        "i.`user_id`",
        "i.`project_id`",
        INSTANCE_HOST,
    ]
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
    ``(event, start, finish, result, event host, instance item)``; unfinished ones left out unless asked
    for."""
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
EVENT_COLUMNS = 5


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


class _Unmasked(Dict[Any, Any]):
    """A value is its own masked value (the ``mask`` of an unmasked run)."""

    def __missing__(self, value: Any) -> Any:
        return value


UNMASKED: Mapping[Any, Any] = _Unmasked()


def rows_to_events(rows: List[tuple], mask: Mapping[Any, Any] = UNMASKED) -> List[InstanceEvent]:
    """Rows of :func:`build_query`, read with :func:`instance_columns`, → events. ``mask`` masks an
    event's own host (a :attr:`~starcompactor.mask.Masker.table`, as the instance's fields were)."""
    make = tuple.__new__
    cls = InstanceEvent
    return [
        make(
            cls,
            (
                uuid,
                event,
                start,
                finish,
                result,
                name,
                user,
                project,
                host if own is None else mask[own],
                props,
            ),
        )
        for event, start, finish, result, own, (uuid, name, user, project, host, props) in rows
    ]


def rows_to_lines(
    rows: List[tuple], line: Callable[..., str], mask: Mapping[Any, Any] = UNMASKED
) -> List[str]:
    """Rows of :func:`build_query`, read with :func:`instance_columns`, → output lines, where ``line`` is
    a :func:`~starcompactor.traces.lines.instance_line_maker`: the same lines as formatting the events of
    :func:`rows_to_events`, without making them (a tuple per event is measurable at millions)."""
    return [
        line(
            uuid, event, start, finish, result, name, user, project, host if own is None else mask[own], props
        )
        for event, start, finish, result, own, (uuid, name, user, project, host, props) in rows
    ]


def row_counts(rows: List[tuple]) -> Tuple[Counter, Optional[dt.datetime], Optional[dt.datetime]]:
    """(events by name, first start time, last start time) of rows in start-time order (SQL puts the
    rows without a start time first)."""
    first = next((row[1] for row in rows if row[1] is not None), None)
    return Counter(map(itemgetter(0), rows)), first, rows[-1][1] if rows else None


class Flavors(Dict[str, Dict[str, Any]]):
    """``memory_mb,root_gb,vcpus`` text → the PROPERTIES dict, one shared dict per distinct flavor."""

    def __missing__(self, text: str) -> Dict[str, Any]:
        values = [None if part == "NULL" else int(part) for part in text.split(",")]
        properties = dict(zip(("memory_mb", "root_gb", "vcpus"), values))
        if len(self) < 4096:
            self[text] = properties
        return properties


def _row_start(row: tuple) -> dt.datetime:
    return row[1] or dt.datetime.min


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
        check_instance_type(instance_type)
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
        mask = masker.table if masker is not None else UNMASKED
        return (rows_to_events(rows, mask) for rows in self.row_batches(masker))

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
        """Per cell, the result as undecoded chunks (for :mod:`starcompactor.instances.workers`)."""
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
