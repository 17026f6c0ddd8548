"""What a dump is before it is trusted: one streamed pass over the whole file.

It names the dumper and the server, the dump time (the ``-- Dump completed`` trailer), whether it ended
cleanly, and every database and table with its row count. Rows are counted without tokenizing a value
(:func:`starcompactor.dump.values.count_rows`), in the reader's bounded memory; only the tables asked for
in ``read`` are tokenized, and handed to ``on_row`` (the command line asks for the Blazar capability
table, whose columns tell the Blazar schema, and for the audit log's tables).

A dump that stops short (cut, damaged archive, a statement that cannot be read) still gives what was
read before, with the error that stopped it in :attr:`DumpSummary.error`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Tuple

from ..errors import DumpError, NotADumpError, UnknownCompressionError
from .reader import DumpInfo, DumpReader, Row, TableKey
from .schema import TableSchema
from .stream import PathOrFile


@dataclass(frozen=True)
class TableSummary:
    """One table of a dump: where it is, and how many rows its INSERTs hold."""

    database: Optional[str]
    table: str
    rows: int


@dataclass
class DumpSummary:
    """A dump as :func:`summarize` found it."""

    info: DumpInfo
    tables: List[TableSummary] = field(default_factory=list)
    #: the ``CREATE TABLE`` of each table asked for in ``read`` that the dump has
    schemas: Dict[TableKey, TableSchema] = field(default_factory=dict)
    #: what stopped the reading before the end of the dump (None: read to its end)
    error: Optional[DumpError] = None

    @property
    def ended_cleanly(self) -> Optional[bool]:
        """True: read to its trailer; False: truncated or unreadable; None: no header or trailer to tell
        (``--compact``, ``--skip-comments``) and nothing wrong met."""
        if self.error is not None:
            return False
        return self.info.ended_cleanly

    @property
    def completed_at(self) -> Optional[dt.datetime]:
        return self.info.completed_at

    @property
    def row_count(self) -> int:
        return sum(t.rows for t in self.tables)


def summarize(
    source: PathOrFile,
    *,
    read: Iterable[TableKey] = (),
    columns: Optional[Mapping[TableKey, Collection[str]]] = None,
    on_row: Optional[Callable[[Optional[str], str, Row], Any]] = None,
    name: Optional[str] = None,
    transport_params: Optional[Dict[str, Any]] = None,
    chunk_size: Optional[int] = None,
) -> DumpSummary:
    """Read a whole dump for its :class:`DumpSummary`.

    ``read`` names tables whose rows go to ``on_row`` (``(database, "*")``: every table of a database),
    keeping ``columns`` of them. Raises :class:`~starcompactor.errors.DumpError` only when nothing could be
    read (not a dump, unknown compression); any later failure ends the summary instead.
    """
    options: Dict[str, Any] = {}
    if chunk_size is not None:
        options["chunk_size"] = chunk_size
    reader = DumpReader(
        source,
        read,
        stop_early=False,
        count_rows=True,
        columns=columns,
        name=name,
        transport_params=transport_params,
        **options,
    )
    error: Optional[DumpError] = None
    try:
        for db, table, row in reader:
            if on_row is not None:
                on_row(db, table, row)
    except (NotADumpError, UnknownCompressionError):
        raise
    except DumpError as exc:
        if not reader.info.has_header and not reader.info.tables:
            raise
        error = exc
    info = reader.info
    return DumpSummary(
        info=info,
        tables=[TableSummary(db, table, info.row_counts.get((db, table), 0)) for db, table in info.tables],
        schemas=dict(reader.schemas),
        error=error,
    )


def database_tables(summary: DumpSummary) -> Dict[Optional[str], List[Tuple[str, int]]]:
    """``{database: [(table, rows), …]}`` in dump order."""
    out: Dict[Optional[str], List[Tuple[str, int]]] = {}
    for t in summary.tables:
        out.setdefault(t.database, []).append((t.table, t.rows))
    return out


__all__ = ["DumpSummary", "TableSummary", "database_tables", "summarize"]
