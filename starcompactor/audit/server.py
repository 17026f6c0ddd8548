"""The ``openstack_audit`` log on a live MySQL/MariaDB server.

Tables are found through ``information_schema`` (``audit_*`` of the database, with their columns), then
each is streamed in ``audit_id`` order on its own unbuffered connection. The session's ``time_zone`` is
set to UTC first: TIMESTAMP columns (the role's first versions) are then returned in UTC; DATETIME
columns come back as stored. Identifiers are quoted, values are parameters; errors are one line naming
the server (:class:`~starcompactor.errors.DatabaseError`) or the table (:class:`AuditLogError`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Iterator, List

from ..server.connect import connect, database_error, quote_identifier
from ..server.packets import stream_rows
from ..server.settings import DbSettings
from .records import (
    AUDIT_DATABASE,
    BACKFILL_USER,
    EXPECTED_TABLES,
    TABLE_PREFIX,
    AuditLog,
    AuditRow,
    TableLayout,
    TableStats,
    row_maker,
    table_name,
)

log = logging.getLogger(__name__)

_TABLES = (
    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s ORDER BY TABLE_NAME, ORDINAL_POSITION"
)


def _session(settings: DbSettings, database: str, *, unbuffered: bool = False) -> Any:
    """A connection in UTC (TIMESTAMP values are converted to the session's zone)."""
    import pymysql

    connection = connect(settings, database, unbuffered=unbuffered)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")
    except pymysql.err.MySQLError as exc:
        connection.close()
        raise database_error(settings, database, exc) from None
    return connection


def read_server_log(
    settings: DbSettings,
    *,
    database: str = AUDIT_DATABASE,
    expected: Iterable[str] = EXPECTED_TABLES,
) -> AuditLog:
    """The audit log of ``database`` on the server ``settings`` reach. The tables and their columns are
    read now (a wrong password or a missing database fails here); rows when asked for."""
    import pymysql

    connection = _session(settings, database)
    columns: Dict[str, List[str]] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute(_TABLES, [database, TABLE_PREFIX.replace("_", "\\_") + "%"])
            for table, column in cursor.fetchall():
                columns.setdefault(table, []).append(column)
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc) from None
    finally:
        connection.close()
    where = f"{settings.server} database {database}"
    layouts = {}
    for table, names in columns.items():
        short = table_name(table)
        if short is not None:
            layouts[short] = TableLayout.of(where, short, names)
    source = quote_identifier(database) + "." + "{}"

    def read_batches(layout: TableLayout) -> Iterator[List[AuditRow]]:
        make = row_maker(layout, where)
        select = ", ".join(quote_identifier(c) for c in layout.select)
        sql = f"SELECT {select} FROM {source.format(quote_identifier(TABLE_PREFIX + layout.name))} ORDER BY `audit_id`"
        connection = _session(settings, database, unbuffered=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                for rows in stream_rows(cursor):
                    yield [make(row) for row in rows]
        except pymysql.err.MySQLError as exc:
            raise database_error(settings, database, exc) from None
        finally:
            try:
                connection.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection
                log.debug("closing %s: %s", database, exc)

    def read_stats(layout: TableLayout) -> TableStats:
        """Counted by the server: a grouped count of the backfill rows, and the table's bounds."""
        table = source.format(quote_identifier(TABLE_PREFIX + layout.name))
        stats = TableStats()
        connection = _session(settings, database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT COUNT(*), MIN(`audit_changed_at`), MAX(`audit_changed_at`) FROM {table}"
                )
                count, first, last = cursor.fetchone()
                if layout.has_changed_by:
                    cursor.execute(
                        f"SELECT `audit_changed_at`, COUNT(*) FROM {table} WHERE `audit_changed_by` = %s "
                        "GROUP BY `audit_changed_at`",
                        [BACKFILL_USER],
                    )
                    for when, n in cursor.fetchall():
                        if when is not None:
                            stats.backfill[when] += n
        except pymysql.err.MySQLError as exc:
            raise database_error(settings, database, exc) from None
        finally:
            connection.close()
        stats.rows = count
        for when in (first, last):
            if when is not None:
                stats.add(None, when, 0)
        return stats

    return AuditLog(where, "server", layouts, read_batches, read_stats=read_stats, expected=expected)


__all__ = ["read_server_log"]
