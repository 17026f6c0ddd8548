"""The ``openstack_audit`` log inside a mysqldump archive.

Every ``--all-databases`` dump taken after the log was installed holds the whole log up to its time, so
the newest such dump is all a run needs (:func:`newest_with_log`). ``--all-databases`` writes databases in
alphabetical order: ``openstack_audit`` comes after ``nova*``, ``mysql`` and ``keystone``, before
``placement``; the reader stops at its end. The audit tables' times are DATETIME (written as they are
stored: the server's UTC) or, from the role's first versions, TIMESTAMP (converted to UTC by the dump's
``SET TIME_ZONE``). The triggers sit in the audited databases' sections and are skipped; a dump taken
while the triggers were dropped (an upgrade) still holds the tables.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..dump import DecompressedStream, DumpReader
from ..dump.stream import PathOrFile, describe
from .records import (
    AUDIT_DATABASE,
    EXPECTED_TABLES,
    KNOWN_TABLES,
    TABLE_PREFIX,
    AuditLog,
    AuditRow,
    TableLayout,
    dict_row_maker,
    in_batches,
    table_name,
)

log = logging.getLogger(__name__)

BATCH_ROWS = 65536
_CHUNK = 1 << 20
#: What mysqldump writes where the database starts: ``USE`` (every multi-database dump, also with
#: ``--compact``), or the header of a single-database dump.
_MARKERS = (f"\nUSE `{AUDIT_DATABASE}`;".encode(), f"Database: {AUDIT_DATABASE}\n".encode())


def read_dump_log(
    source: PathOrFile,
    *,
    name: Optional[str] = None,
    tables: Iterable[str] = (),
    expected: Iterable[str] = EXPECTED_TABLES,
    transport_params: Optional[Dict[str, Any]] = None,
) -> AuditLog:
    """The audit log of one dump, read in one pass that stops after ``openstack_audit``.

    The tables read are every name the role ever used (:data:`KNOWN_TABLES`) plus ``tables``; any other
    ``audit_*`` table the dump holds is listed in :attr:`AuditLog.unread` (and logged), not dropped
    silently. A dump without the log gives an empty log whose :attr:`~AuditLog.missing` names everything.
    """
    wanted = list(dict.fromkeys([*KNOWN_TABLES, *tables]))
    reader = DumpReader(
        source,
        [(AUDIT_DATABASE, TABLE_PREFIX + t) for t in wanted],
        stop_early=True,
        name=name,
        transport_params=transport_params,
    )
    label = name or describe(source)
    layouts: Dict[str, TableLayout] = {}
    rows: Dict[str, List[AuditRow]] = {}
    makers: Dict[str, Callable[[Dict[str, Any]], AuditRow]] = {}
    for _db, table, row in reader:
        make = makers.get(table)
        if make is None:
            label = reader.info.path or label
            short = table_name(table)
            assert short is not None
            schema = reader.schemas.get((AUDIT_DATABASE, table))
            # no CREATE TABLE (--no-create-info): the INSERT's column list named the columns
            columns = schema.column_names if schema is not None else tuple(row)
            layouts[short] = TableLayout.of(label, short, columns)
            make = makers[table] = dict_row_maker(layouts[short], label)
            rows[short] = []
        rows[table[len(TABLE_PREFIX) :]].append(make(row))
    label = reader.info.path or label
    for (db, table), schema in reader.schemas.items():  # tables without rows
        short = table_name(table)
        if db == AUDIT_DATABASE and short is not None and short not in layouts:
            layouts[short] = TableLayout.of(label, short, schema.column_names)
    unread = [
        t[len(TABLE_PREFIX) :]
        for db, t in reader.info.tables
        if db == AUDIT_DATABASE and t.startswith(TABLE_PREFIX) and t[len(TABLE_PREFIX) :] not in wanted
    ]
    if unread:
        log.warning(
            "%s: audit tables not read (pass their names to read them): %s", label, ", ".join(sorted(unread))
        )

    def read_batches(layout: TableLayout) -> Iterator[List[AuditRow]]:
        return in_batches(rows.get(layout.name, []), BATCH_ROWS)

    return AuditLog(label, "dump", layouts, read_batches, expected=expected, unread=unread)


def has_audit_log(
    source: PathOrFile, *, name: Optional[str] = None, transport_params: Optional[Dict[str, Any]] = None
) -> bool:
    """Whether a dump holds the ``openstack_audit`` database: a byte search of the decompressed stream
    that stops at the first sign of it (a dump without it is read to its end)."""
    keep = max(len(m) for m in _MARKERS) - 1
    with DecompressedStream(source, name, transport_params=transport_params) as stream:
        tail = b"\n"
        while True:
            chunk = stream.read1(_CHUNK)
            if not chunk:
                return False
            window = tail + chunk
            if any(marker in window for marker in _MARKERS):
                return True
            tail = window[-keep:]


def newest_with_log(
    sources: Sequence[PathOrFile], *, transport_params: Optional[Dict[str, Any]] = None
) -> Optional[Tuple[int, PathOrFile]]:
    """``(index, source)`` of the last of ``sources`` (oldest first) that holds the log, or None.

    Once installed, every later ``--all-databases`` dump holds the log, so this usually decides on the
    newest dump after reading it up to ``openstack_audit``.
    """
    for index in range(len(sources) - 1, -1, -1):
        if has_audit_log(sources[index], transport_params=transport_params):
            return index, sources[index]
    return None


__all__ = ["has_audit_log", "newest_with_log", "read_dump_log"]
