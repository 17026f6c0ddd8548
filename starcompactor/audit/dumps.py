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
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

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


def audit_keys(tables: Iterable[str] = (), only: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """The ``(database, table)`` keys a dump reader asks for to read the log: every name the role ever
    used (:data:`KNOWN_TABLES`) plus ``tables`` — or ``only`` those, for a reader that needs no more."""
    names = only if only is not None else [*KNOWN_TABLES, *tables]
    return [(AUDIT_DATABASE, TABLE_PREFIX + t) for t in dict.fromkeys(names)]


@dataclass
class DumpLog:
    """The audit tables of one dump, read: picklable, so that a worker that read the dump (for its
    snapshot, in the same pass) can hand them back. :meth:`log` makes the :class:`AuditLog`."""

    source: str
    layouts: Dict[str, TableLayout] = field(default_factory=dict)
    rows: Dict[str, List[AuditRow]] = field(default_factory=dict)
    unread: Tuple[str, ...] = ()

    def __getstate__(self) -> Dict[str, Any]:
        """Rows travel as columns (a tuple per field): pickling a named tuple per row costs ~3x more."""
        state = dict(self.__dict__)
        state["rows"] = {name: tuple(zip(*rows)) for name, rows in self.rows.items()}
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        new = tuple.__new__
        state["rows"] = {
            name: [new(AuditRow, values) for values in zip(*columns)]
            for name, columns in state["rows"].items()
        }
        self.__dict__.update(state)

    @property
    def present(self) -> bool:
        """Whether the dump holds the log at all (any audit table, with rows or not, read or not)."""
        return bool(self.layouts) or bool(self.unread)

    def log(self, expected: Iterable[str] = EXPECTED_TABLES) -> AuditLog:
        rows = self.rows

        def read_batches(layout: TableLayout) -> Iterator[List[AuditRow]]:
            return in_batches(rows.get(layout.name, []), BATCH_ROWS)

        return AuditLog(
            self.source, "dump", self.layouts, read_batches, expected=expected, unread=self.unread
        )


class DumpLogCollector:
    """Collects the audit tables' rows while a :class:`DumpReader` (asked for :func:`audit_keys` among its
    tables) goes through a dump; :meth:`finish` after the read gives the :class:`DumpLog`.

    ``keep`` (table name without ``audit_`` → ``data`` keys): each row's ``data`` is cut to its table's
    keys, none for a table it does not name (its rows still count). A worker that hands the log back
    then sends what its consumer reads, not every captured column of every audited table. ``only``: the
    tables read (see :func:`audit_keys`); the others the dump holds are listed as unread, quietly, since
    leaving them is the caller's choice.
    """

    def __init__(
        self,
        label: str,
        tables: Iterable[str] = (),
        keep: Optional[Mapping[str, Sequence[str]]] = None,
        only: Optional[Sequence[str]] = None,
    ) -> None:
        self.label = label
        self.only = only
        self.wanted = [t for _, t in audit_keys(tables, only)]
        self._makers: Dict[str, Callable[[Dict[str, Any]], AuditRow]] = {}
        self.keep = keep
        self.found = DumpLog(label)

    def add(self, reader: DumpReader, table: str, row: Dict[str, Any]) -> None:
        """One row of ``openstack_audit``.``table``."""
        make = self._makers.get(table)
        short = table[len(TABLE_PREFIX) :]
        if make is None:
            self.label = reader.info.path or self.label
            schema = reader.schemas.get((AUDIT_DATABASE, table))
            # no CREATE TABLE (--no-create-info): the INSERT's column list named the columns
            columns = schema.column_names if schema is not None else tuple(row)
            self.found.layouts[short] = TableLayout.of(self.label, short, columns)
            make = dict_row_maker(self.found.layouts[short], self.label)
            if self.keep is not None:
                make = _projected(make, tuple(self.keep.get(short, ())))
            self._makers[table] = make
            self.found.rows[short] = []
        self.found.rows[short].append(make(row))

    def finish(self, reader: DumpReader) -> DumpLog:
        label = reader.info.path or self.label
        found = self.found
        found.source = label
        for (db, table), schema in reader.schemas.items():  # tables without rows
            short = table_name(table)
            if db == AUDIT_DATABASE and short is not None and short not in found.layouts:
                found.layouts[short] = TableLayout.of(label, short, schema.column_names)
        unread = [
            t[len(TABLE_PREFIX) :]
            for db, t in reader.info.tables
            if db == AUDIT_DATABASE and t.startswith(TABLE_PREFIX) and t not in self.wanted
        ]
        if unread and self.only is None:
            log.warning(
                "%s: audit tables not read (pass their names to read them): %s",
                label,
                ", ".join(sorted(unread)),
            )
        found.unread = tuple(sorted(unread))
        return found


def _projected(
    make: Callable[[Dict[str, Any]], AuditRow], keys: Tuple[str, ...]
) -> Callable[[Dict[str, Any]], AuditRow]:
    new = tuple.__new__

    def make_projected(row: Dict[str, Any]) -> AuditRow:
        audit_row = make(row)
        data = audit_row[7]
        return new(AuditRow, (*audit_row[:7], {k: data[k] for k in keys if k in data}))

    return make_projected


def read_dump_log(
    source: PathOrFile,
    *,
    name: Optional[str] = None,
    tables: Iterable[str] = (),
    expected: Iterable[str] = EXPECTED_TABLES,
    transport_params: Optional[Dict[str, Any]] = None,
    only: Optional[Sequence[str]] = None,
) -> AuditLog:
    """The audit log of one dump, read in one pass that stops after ``openstack_audit``.

    The tables read are every name the role ever used (:data:`KNOWN_TABLES`) plus ``tables``; any other
    ``audit_*`` table the dump holds is listed in :attr:`AuditLog.unread` (and logged), not dropped
    silently. A dump without the log gives an empty log whose :attr:`~AuditLog.missing` names everything.
    ``only``: read these tables and no others (see :func:`audit_keys`).
    """
    reader = DumpReader(
        source, audit_keys(tables, only), stop_early=True, name=name, transport_params=transport_params
    )
    collector = DumpLogCollector(name or describe(source), tables, only=only)
    for _db, table, row in reader:
        collector.add(reader, table, row)
    return collector.finish(reader).log(expected)


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


__all__ = ["DumpLog", "DumpLogCollector", "audit_keys", "has_audit_log", "newest_with_log", "read_dump_log"]
