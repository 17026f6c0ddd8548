"""Typed rows of the ``openstack_audit`` log, the same whichever way the log was read.

The log is written by MySQL triggers that Chameleon's Ansible role ``roles/audit_tables``
(ChameleonCloud/chi-in-a-box) installs. What a reader needs to know about it:

* One table ``openstack_audit.audit_<name>`` per audited table (``audit_nova_compute_nodes`` for
  ``nova.compute_nodes`` …); the role's ``source_db`` for Nova is ``nova``, so a second cell is not audited.
* Columns: ``audit_id`` (auto increment: the order rows were written, with gaps), ``id`` (the source row's
  id: INT for Nova and Ironic tables, VARCHAR(36) for Blazar's; text here), ``audit_event_type``
  (INSERT/UPDATE/DELETE), ``audit_event_time`` (when the change happened), ``audit_changed_by`` (the
  client's ``USER()``, or ``'backfill'``), ``audit_changed_at`` (when the row was written) and ``data``
  (a JSON object of the role's configured columns: NEW values for INSERT/UPDATE, OLD for DELETE).
* Triggers never set ``audit_event_time``: it takes its default, the statement's ``CURRENT_TIMESTAMP``,
  like ``audit_changed_at``. Only the backfill sets it apart: ``created_at`` on its INSERT rows,
  ``deleted_at`` on its DELETE rows, with ``data`` the state *when the backfill ran*.
* A table made before ``audit_event_time`` existed got it by ``ALTER … ADD COLUMN … DEFAULT
  CURRENT_TIMESTAMP``, which fills the old rows with the ALTER's time: a non-backfill row whose event time
  is after its ``audit_changed_at`` predates the column (both are returned as stored).
* The time columns were TIMESTAMP in the role's first versions and are DATETIME since (a task migrates
  them). DATETIME defaults hold the writing session's local time: UTC on a server kept in UTC.
* An UPDATE row is written only when a watched column changes; heartbeats and Nova's soft delete leave
  none (``deleted``/``deleted_at`` are not watched for compute nodes and services); archiving a
  soft-deleted row is a DELETE whose ``data`` keeps the true ``deleted_at``.
* The role's first table (``files/audit_blazar_computehosts.sql``) was column-wise: the captured columns
  were real columns, with no ``data`` and no ``audit_event_time``. Such a table reads the same here:
  ``data`` is built from its captured columns, the event time is ``audit_changed_at``.

``data`` holds JSON values as the server wrote them: times are text (``"2024-03-01 10:00:00"``; see
:func:`json_time`), booleans are 0/1, a DOUBLE like 1.0 may come back as 1.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

import orjson

from ..errors import AuditLogError

log = logging.getLogger(__name__)

AUDIT_DATABASE = "openstack_audit"
TABLE_PREFIX = "audit_"
BACKFILL_USER = "backfill"

#: Tables named by every version of the role's defaults (the reader asks a dump for these; a site may add
#: more: pass their names).
KNOWN_TABLES = (
    "nova_compute_nodes",
    "nova_services",
    "nova_instances",
    "nova_instance_actions",
    "nova_instance_actions_events",
    "ironic_nodes",
    "blazar_computehosts",
    "blazar_computehost_extra_capabilities",
    "blazar_resource_properties",
    "blazar_extra_capabilities",
    "blazar_devices",
    "blazar_device_extra_capabilities",
    "zun_containers",
    "zun_container_actions",
    "zun_container_actions_events",
    "zun_compute_nodes",
    "zun_services",
)
#: The tables SPEC §1.4 names; :attr:`AuditLog.missing` says which of these a log lacks.
EXPECTED_TABLES = (
    "nova_compute_nodes",
    "nova_services",
    "nova_instances",
    "ironic_nodes",
    "blazar_computehosts",
    "blazar_computehost_extra_capabilities",
    "blazar_resource_properties",
    "nova_instance_actions",
    "nova_instance_actions_events",
)

#: The bookkeeping columns; every other column of a column-wise table is captured data.
AUDIT_COLUMNS = (
    "audit_id",
    "id",
    "audit_event_type",
    "audit_event_time",
    "audit_changed_by",
    "audit_changed_at",
)
#: Without these a table is not an audit table.
REQUIRED_COLUMNS = ("audit_id", "id", "audit_event_type", "audit_changed_at")

#: Backfill rows whose ``audit_changed_at`` are at most this far apart belong to one run of the role.
RUN_GAP = dt.timedelta(hours=1)


class AuditRow(NamedTuple):
    """One row of one audit table. Times are naive UTC; ``data`` is read-only by convention."""

    table: str  #: the audit table's name without ``audit_``: ``nova_compute_nodes``
    audit_id: int
    id: Optional[str]  #: the source row's id, as text
    event_type: str  #: INSERT, UPDATE or DELETE
    event_time: Optional[dt.datetime]  #: ``audit_event_time`` (``audit_changed_at`` in the early form)
    changed_by: Optional[str]
    changed_at: Optional[dt.datetime]
    data: Dict[str, Any]

    @property
    def is_backfill(self) -> bool:
        return self.changed_by == BACKFILL_USER


@dataclass(frozen=True)
class TableLayout:
    """How one audit table stores its rows: with a ``data`` JSON column, or column-wise (the early form)."""

    name: str  #: without ``audit_``
    columns: Tuple[str, ...]  #: as the source has them
    has_data: bool
    has_event_time: bool
    has_changed_by: bool
    captured: Tuple[str, ...] = ()  #: the data columns of a column-wise table

    @classmethod
    def of(cls, source: str, name: str, columns: Sequence[str]) -> TableLayout:
        """The layout of ``audit_<name>`` with these columns; an :class:`AuditLogError` if it is none."""
        present = set(columns)
        lacking = [c for c in REQUIRED_COLUMNS if c not in present]
        if lacking:
            raise AuditLogError(
                source,
                TABLE_PREFIX + name,
                f"not an audit table: no column {', '.join(lacking)} (has {', '.join(columns) or 'none'})",
            )
        # the early form captured ``id`` as well: it belongs in ``data`` as the role's JSON has it
        captured = tuple(c for c in columns if c == "id" or (c not in AUDIT_COLUMNS and c != "data"))
        if "data" not in present and captured == ("id",):
            raise AuditLogError(source, TABLE_PREFIX + name, "no data column and no captured columns")
        return cls(
            name=name,
            columns=tuple(columns),
            has_data="data" in present,
            has_event_time="audit_event_time" in present,
            has_changed_by="audit_changed_by" in present,
            captured=() if "data" in present else captured,
        )

    @property
    def select(self) -> Tuple[str, ...]:
        """The columns a reader fetches, in the order :func:`row_maker` takes them."""
        head = tuple(c for c in AUDIT_COLUMNS if c in self.columns)
        return head + (("data",) if self.has_data else self.captured)


# -- values -----------------------------------------------------------------------------------------


def json_time(value: Any) -> Optional[dt.datetime]:
    """A time inside ``data`` (``"2024-03-01 10:00:00"``, MySQL 8's ``"….000000"``, ISO with ``T`` or a
    zone) → naive UTC datetime; None for null or text that is not a time."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        return None
    return parse_time_text(value)


def parse_time_text(text: str) -> Optional[dt.datetime]:
    """``YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH:MM]`` → naive UTC; None when it is not a time."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def naive_utc(value: Any) -> Optional[dt.datetime]:
    """A time column's value → naive UTC (aware values are converted; text is parsed)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return parse_time_text(value)
    raise TypeError(f"not a time: {value!r}")


def json_value(value: Any) -> Any:
    """A column value as ``JSON_OBJECT`` would have put it in ``data`` (for the column-wise form)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return value


def id_text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_data(source: str, table: str, audit_id: Any, text: Any) -> Dict[str, Any]:
    """``data`` JSON text → dict; NULL → empty dict; anything else is an :class:`AuditLogError`."""
    if text is None:
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise AuditLogError(
            source, TABLE_PREFIX + table, f"audit_id {audit_id}: data is not JSON ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise AuditLogError(source, TABLE_PREFIX + table, f"audit_id {audit_id}: data is not a JSON object")
    return value


def row_maker(layout: TableLayout, source: str) -> Callable[[Sequence[Any]], AuditRow]:
    """A function turning values in :attr:`TableLayout.select` order into an :class:`AuditRow`.

    Times are expected as datetimes (naive UTC) or None, as the dump reader and PyMySQL give them.
    """
    name = layout.name
    has_time, has_by = layout.has_event_time, layout.has_changed_by
    new = tuple.__new__

    if layout.has_data:

        def data_of(audit_id: Any, values: Sequence[Any]) -> Dict[str, Any]:
            return parse_data(source, name, audit_id, values[-1])

    else:
        captured = layout.captured
        start = len(layout.select) - len(captured)

        def data_of(audit_id: Any, values: Sequence[Any]) -> Dict[str, Any]:
            return {c: json_value(v) for c, v in zip(captured, values[start:])}

    def make(values: Sequence[Any]) -> AuditRow:
        audit_id, ident, event_type = values[0], values[1], values[2]
        i = 3
        event_time = values[i] if has_time else None
        i += has_time
        changed_by = values[i] if has_by else None
        i += has_by
        changed_at = values[i]
        return new(
            AuditRow,
            (
                name,
                audit_id,
                id_text(ident),
                event_type,
                event_time if has_time else changed_at,
                changed_by,
                changed_at,
                data_of(audit_id, values),
            ),
        )

    return make


def dict_row_maker(layout: TableLayout, source: str) -> Callable[[Mapping[str, Any]], AuditRow]:
    """:func:`row_maker` for rows given as ``{column: value}`` (the dump reader's)."""
    make = row_maker(layout, source)
    pick = itemgetter(*layout.select)
    return lambda row: make(pick(row))


# -- the log ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillRun:
    """One run of the role's backfill, as its rows show it (``audit_changed_by = 'backfill'``).

    A run that found nothing missing writes no row and cannot be seen.
    """

    started: dt.datetime  #: the earliest ``audit_changed_at`` of the run's rows
    ended: dt.datetime
    rows: int
    tables: Tuple[str, ...]


@dataclass
class TableStats:
    """What the log's summary needs from one table (a cheap pass: two columns only)."""

    rows: int = 0
    first_changed_at: Optional[dt.datetime] = None
    last_changed_at: Optional[dt.datetime] = None
    backfill: Counter = field(default_factory=Counter)  #: audit_changed_at -> backfill rows written then

    def add(self, changed_by: Optional[str], changed_at: Optional[dt.datetime], count: int = 1) -> None:
        self.rows += count
        if changed_at is not None:
            if self.first_changed_at is None or changed_at < self.first_changed_at:
                self.first_changed_at = changed_at
            if self.last_changed_at is None or changed_at > self.last_changed_at:
                self.last_changed_at = changed_at
            if changed_by == BACKFILL_USER:
                self.backfill[changed_at] += count


BatchReader = Callable[[TableLayout], Iterator[List[AuditRow]]]
StatsReader = Callable[[TableLayout], TableStats]


class AuditLog:
    """The ``openstack_audit`` tables of one source: which are there, which are not, and their rows.

    Rows are read when asked for, table by table (:meth:`batches` streams in lists; a dump's rows are
    already in memory), so a log of millions of rows never has to fit in memory at once. ``source`` is
    the dump, export location or server as named in messages; ``form`` is ``dump``, ``parquet`` or
    ``server``. :attr:`unread` lists audit tables the source holds that were not asked for.
    """

    def __init__(
        self,
        source: str,
        form: str,
        layouts: Mapping[str, TableLayout],
        read_batches: BatchReader,
        *,
        read_stats: Optional[StatsReader] = None,
        expected: Iterable[str] = EXPECTED_TABLES,
        unread: Iterable[str] = (),
    ) -> None:
        self.source = source
        self.form = form
        self.layouts = dict(sorted(layouts.items()))
        self._read_batches = read_batches
        self._read_stats = read_stats
        self.expected = tuple(expected)
        self.unread = tuple(sorted(unread))
        self._stats: Optional[Dict[str, TableStats]] = None

    def __repr__(self) -> str:
        return f"AuditLog({self.source!r}, form={self.form!r}, tables={list(self.layouts)})"

    @property
    def tables(self) -> Tuple[str, ...]:
        """The audit tables present (names without ``audit_``), sorted."""
        return tuple(self.layouts)

    @property
    def missing(self) -> Tuple[str, ...]:
        """The expected tables (SPEC §1.4's, unless told otherwise) that this log lacks."""
        return tuple(name for name in self.expected if name not in self.layouts)

    def lacks(self, *names: str) -> Tuple[str, ...]:
        """Which of ``names`` this log does not have (what a consumer checks before relying on it)."""
        return tuple(name for name in names if name not in self.layouts)

    def __contains__(self, name: object) -> bool:
        return name in self.layouts

    def batches(self, name: str) -> Iterator[List[AuditRow]]:
        """The rows of ``audit_<name>`` in lists; nothing for a table the log does not have."""
        layout = self.layouts.get(name)
        if layout is None:
            return iter(())
        return self._read_batches(layout)

    def rows(self, name: str) -> Iterator[AuditRow]:
        for batch in self.batches(name):
            yield from batch

    def read(self, name: str) -> List[AuditRow]:
        return [row for batch in self.batches(name) for row in batch]

    def read_all(self) -> Dict[str, List[AuditRow]]:
        """Every table's rows in memory: for small logs and tests."""
        return {name: self.read(name) for name in self.layouts}

    # -- summary ------------------------------------------------------------------------------------

    def stats(self) -> Dict[str, TableStats]:
        """Rows, first/last write and backfill writes per table (read once, then kept)."""
        if self._stats is None:
            stats = {}
            for name, layout in self.layouts.items():
                if self._read_stats is not None:
                    stats[name] = self._read_stats(layout)
                else:
                    stats[name] = stats_from_batches(self._read_batches(layout))
            self._stats = stats
        return self._stats

    def backfill_runs(self, gap: dt.timedelta = RUN_GAP) -> List[BackfillRun]:
        """The role's backfill runs, oldest first: backfill writes of all tables grouped in time."""
        stamps: List[Tuple[dt.datetime, str, int]] = sorted(
            (at, name, count) for name, s in self.stats().items() for at, count in s.backfill.items()
        )
        runs: List[BackfillRun] = []
        group: List[Tuple[dt.datetime, str, int]] = []
        for stamp in stamps:
            if group and stamp[0] - group[-1][0] > gap:
                runs.append(_run(group))
                group = []
            group.append(stamp)
        if group:
            runs.append(_run(group))
        return runs

    @property
    def coverage_start(self) -> Optional[dt.datetime]:
        """From when the log covers history: its installation, i.e. the first backfill run; failing that
        (no backfill row: empty tables at install, or the early form) its first write; None when empty."""
        runs = self.backfill_runs()
        if runs:
            return runs[0].started
        firsts = [s.first_changed_at for s in self.stats().values() if s.first_changed_at is not None]
        return min(firsts) if firsts else None

    def table_coverage(self, name: str) -> Optional[dt.datetime]:
        """From when one table covers history (tables can be enabled by later runs of the role)."""
        s = self.stats().get(name)
        if s is None:
            return None
        if s.backfill:
            return min(s.backfill)
        return s.first_changed_at

    def summary(self) -> Dict[str, Any]:
        """What a manifest says about the log (JSON-ready)."""
        stats = self.stats()
        return {
            "source": self.source,
            "form": self.form,
            "tables": {name: stats[name].rows for name in self.layouts},
            "missing": list(self.missing),
            "unread": list(self.unread),
            "coverage_start": _iso(self.coverage_start),
            "backfill_runs": [
                {"started": _iso(r.started), "ended": _iso(r.ended), "rows": r.rows, "tables": list(r.tables)}
                for r in self.backfill_runs()
            ],
        }


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _run(group: List[Tuple[dt.datetime, str, int]]) -> BackfillRun:
    return BackfillRun(
        started=group[0][0],
        ended=group[-1][0],
        rows=sum(count for _, _, count in group),
        tables=tuple(sorted({name for _, name, _ in group})),
    )


def stats_from_batches(batches: Iterable[List[AuditRow]]) -> TableStats:
    stats = TableStats()
    for batch in batches:
        for row in batch:
            stats.add(row.changed_by, row.changed_at)
    return stats


def in_batches(rows: List[AuditRow], size: int) -> Iterator[List[AuditRow]]:
    """A list already in memory, handed out as :meth:`AuditLog.batches` does."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def table_name(audit_table: str) -> Optional[str]:
    """``audit_nova_services`` → ``nova_services``; None for a table that is not an audit table."""
    if audit_table.startswith(TABLE_PREFIX) and len(audit_table) > len(TABLE_PREFIX):
        return audit_table[len(TABLE_PREFIX) :]
    return None


def rows_of(table: str, columns: Iterable[Sequence[Any]]) -> List[AuditRow]:
    """Rows from parallel column lists (audit_id, id, type, event time, by, at, data) — the columnar
    readers' last step: one tuple per row, no per-field Python work."""
    new = tuple.__new__
    return [new(AuditRow, values) for values in zip(repeat(table), *columns)]
