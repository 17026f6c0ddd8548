"""Walk a mysqldump stream statement by statement, keeping only the rows of the requested tables.

The dump is read in large decompressed chunks. Only the few lines that are not table data are looked at
one by one (comments, ``USE``, ``CREATE TABLE``, ``LOCK TABLES`` …: a few dozen per table). Table data is
where the bytes are, and it is skipped with a single ``bytes.find``:

* the data of a table we do not want sits between ``LOCK TABLES `t` WRITE;`` and ``UNLOCK TABLES;``, so
  the reader jumps straight to ``\\nUNLOCK TABLES;`` (strings never hold a raw newline in a dump, so that
  needle cannot occur inside a value);
* without locks (``--compact``, ``--skip-add-locks``) each unwanted INSERT is skipped to its end, the
  first ``;`` + newline after it.

The reader stops as soon as every requested table has been read completely (the next statement belongs
to something else), so ``nova.compute_nodes`` does not cost the decompression of what follows it.

Three parts: :class:`TableRequest` (which tables are wanted, which are complete), the byte window
(:class:`~starcompactor.dump.buffer.DumpBuffer`) and :class:`DumpReader`, which dispatches on the first
bytes of each line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)

from ..errors import (
    DumpSyntaxError,
    LineTooLongError,
    NotADumpError,
    TokenizeError,
    TruncatedDumpError,
    UnknownColumnsError,
)
from ..times import parse_time_zone
from .buffer import DumpBuffer
from .prefetch import PrefetchStream
from .schema import UNKNOWN_TYPE, Column, TableSchema, parse_create_table, row_builder
from .stream import DecompressedStream, PathOrFile
from .values import iter_rows

log = logging.getLogger(__name__)

TableKey = Tuple[Optional[str], str]
Row = Dict[str, Any]

CHUNK_SIZE = 4 << 20
#: Largest single statement (or line) we hold in memory. mysqldump's extended INSERTs are bounded by
#: net_buffer_length (1 MB by default, 16 MB at most); one-row INSERTs of large blobs can be bigger.
MAX_STATEMENT_BYTES = 256 << 20
#: How far an INSERT's head (``INSERT INTO `t` (`a`, …) VALUES``) may reach; column lists are short.
_HEAD_WINDOW = 64 << 10
#: How much of the first line is looked at to tell a dump from something else.
_START_WINDOW = 4096

_IDENT = rb"`((?:[^`]|``)+)`"
_INSERT_HEAD = re.compile(
    rb"(?:INSERT(?:[ ]+(?:IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*|REPLACE(?:[ ]+(?:LOW_PRIORITY|DELAYED))*)"
    rb"[ ]+INTO[ ]+(?:"
    + _IDENT
    + rb"\.)?"
    + _IDENT
    + rb"[ ]*(?:\((?P<cols>(?:`(?:[^`]|``)*`|[^)`])*)\))?[ \t\r\n]*VALUES[ \t\r\n]*",
    re.IGNORECASE,
)
_COLUMN_NAME = re.compile(rb"`((?:[^`]|``)*)`")
_CREATE_TABLE = re.compile(rb"CREATE[ ]+(?:TEMPORARY[ ]+)?TABLE[ ]+(?:IF[ ]+NOT[ ]+EXISTS[ ]+)?" + _IDENT)
_USE = re.compile(rb"USE[ ]+" + _IDENT)
_LOCK = re.compile(rb"LOCK TABLES[ ]+" + _IDENT)
_CURRENT_DB = re.compile(rb"-- Current Database: " + _IDENT)
_HOST_DB = re.compile(rb"-- Host: .*?Database: (\S+)")
_TABLE_COMMENT = re.compile(
    rb"-- (?:Table structure|Dumping data|Temporary table structure) for (?:table|view) " + _IDENT
)
_HEADER = re.compile(rb"-- (MySQL|MariaDB) dump ([\d.]+)\s+Distrib ([^\s,]+)")
_SERVER_VERSION = re.compile(rb"-- Server version\s+(\S+)")
_COMPLETED = re.compile(rb"-- Dump completed(?: on (\d{4}-\d{2}-\d{2})\s+(\d{1,2}):(\d{2}):(\d{2}))?")
_TIME_ZONE = re.compile(rb"SET TIME_ZONE='([^']*)'")
_FIRST_LINE_OK = (
    b"--",
    b"/*",
    b"CREATE",
    b"DROP",
    b"INSERT",
    b"REPLACE",
    b"USE",
    b"SET",
    b"LOCK",
    b"UNLOCK",
    b"DELIMITER",
    b"ALTER",
    b"SELECT",
    b"START",
    b"BEGIN",
    b"COMMIT",
    b"#",
)


def _ident(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", "surrogateescape")


@dataclass
class DumpInfo:
    """What a dump says about itself; filled in while it is read."""

    path: str
    compression: str = "plain"
    flavor: Optional[str] = None  #: "MySQL" or "MariaDB", from the header
    dump_version: Optional[str] = None  #: the mysqldump program's version
    distribution: Optional[str] = None  #: e.g. "10.11.6-MariaDB" or "8.0.36"
    server_version: Optional[str] = None
    completed_at: Optional[dt.datetime] = None  #: the ``-- Dump completed on`` time (naive, as written)
    has_header: bool = False
    has_trailer: bool = False
    stopped_early: bool = False  #: reading stopped once the requested tables were read
    time_zone: Optional[str] = None  #: the dump's ``SET TIME_ZONE`` value
    crlf: bool = False
    databases: List[str] = field(default_factory=list)
    tables: List[TableKey] = field(default_factory=list)
    bytes_read: int = 0  #: decompressed bytes consumed

    @property
    def ended_cleanly(self) -> Optional[bool]:
        """True when the trailer was seen; None when reading stopped early or the dump has no comments."""
        if self.has_trailer:
            return True
        if self.stopped_early or not self.has_header:
            return None
        return False


class TableRequest:
    """The tables a read wants, and which of them are complete (so reading can stop).

    A database of ``None`` matches the table in any database, and a table of a database the dump never
    names (a single-database dump without ``USE``, e.g. ``--compact``) answers a request for that table
    in any database.
    """

    def __init__(self, tables: Iterable[TableKey]) -> None:
        self.wanted: Set[TableKey] = set(tables)
        self.by_table: Dict[str, Set[TableKey]] = {}
        for key in self.wanted:
            self.by_table.setdefault(key[1], set()).add(key)
        self.done: Set[TableKey] = set()
        #: reading can stop once all are done: not when a table is wanted in any database
        self.can_stop = bool(self.wanted) and all(db is not None for db, _ in self.wanted)

    def answers(self, key: TableKey) -> Optional[TableKey]:
        """The requested key that ``key`` answers, or None."""
        if key in self.wanted:
            return key
        if (None, key[1]) in self.wanted:
            return (None, key[1])
        if key[0] is None and key[1] in self.by_table:
            return next(iter(self.by_table[key[1]]))
        return None

    def database_left(self, database: str) -> None:
        """mysqldump writes each database in one piece: the wanted tables of a database left behind are
        complete now, present or not (a Blazar layout lacks some of them)."""
        self.done.update(key for key in self.wanted if key[0] == database)

    def table_left(self, key: TableKey) -> None:
        if self.answers(key) is None:
            return
        db, table = key
        if db is None:
            self.done.update(self.by_table.get(table, ()))
        else:
            self.done.add((db, table))
            self.done.add((None, table))

    def complete(self) -> bool:
        return self.can_stop and self.done >= self.wanted


class DumpReader:
    """Iterate ``(database, table, row)`` for the requested tables of one dump.

    ``tables`` holds ``(database, table)`` pairs; a database of ``None`` matches the table in any database
    (and in a single-database dump that never says which database it is). Rows are dicts keyed by column
    name, typed by column type (see :mod:`starcompactor.dump.schema`).

    ``columns`` limits the rows of a requested key to the named columns (absent ones are simply missing).
    After iteration, :attr:`info` describes the dump and :attr:`schemas` the requested tables found.
    Iterating again reads the dump again from the start (a path or URI is opened anew); a reader over a
    file object can be iterated once, and a second iteration raises :class:`RuntimeError`.
    """

    def __init__(
        self,
        source: PathOrFile,
        tables: Iterable[TableKey],
        *,
        stop_early: bool = True,
        name: Optional[str] = None,
        chunk_size: int = CHUNK_SIZE,
        max_statement_bytes: int = MAX_STATEMENT_BYTES,
        on_progress: Optional[Callable[[int], None]] = None,
        time_zone: Optional[dt.tzinfo] = dt.timezone.utc,
        transport_params: Optional[Dict[str, Any]] = None,
        columns: Optional[Mapping[TableKey, Collection[str]]] = None,
        prefetch: bool = False,
    ) -> None:
        self.source = source
        #: decompress ahead in a thread (:mod:`starcompactor.dump.prefetch`): for a core that would be idle
        self.prefetch = prefetch
        self.tables = tuple(tables)
        #: per requested key, the only columns its rows keep (the others are tokenized, not converted)
        self.columns: Dict[TableKey, FrozenSet[str]] = {k: frozenset(v) for k, v in (columns or {}).items()}
        #: zone of TIMESTAMP values in a dump that does not say (``--skip-tz-utc``, or ``SET TIME_ZONE``
        #: naming a zone we cannot resolve); None leaves them as written
        self.default_time_zone = time_zone
        self.transport_params = transport_params
        self._builders: Dict[Any, Callable[[List[Any]], Row]] = {}
        self.stop_early = stop_early
        self.chunk_size = chunk_size
        self.max_statement_bytes = max_statement_bytes
        self.on_progress = on_progress
        self._name = name
        self._started = False
        self._reset()

    def _reset(self) -> None:
        self.request = TableRequest(self.tables)
        self.info = DumpInfo(path=self._name or "")
        self.schemas: Dict[TableKey, TableSchema] = {}

    @property
    def wanted(self) -> Set[TableKey]:
        return self.request.wanted

    # -- public -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Tuple[Optional[str], str, Row]]:
        if self._started:
            if not isinstance(self.source, (str, os.PathLike)):
                raise RuntimeError(
                    f"{self.info.path or 'dump'}: a DumpReader over a file object reads it once; "
                    "give a path or URI to read it again"
                )
            self._reset()
        self._started = True
        with DecompressedStream(self.source, self._name, transport_params=self.transport_params) as stream:
            self.info.path = stream.name
            self.info.compression = stream.compression
            ahead = PrefetchStream(stream, self.chunk_size) if self.prefetch else None
            self._b = DumpBuffer(
                ahead or stream,  # type: ignore[arg-type]
                stream.name,
                chunk_size=self.chunk_size,
                max_statement_bytes=self.max_statement_bytes,
                on_progress=self.on_progress,
            )
            try:
                yield from self._run()
            except TokenizeError as exc:
                raise DumpSyntaxError(stream.name, str(exc)) from exc
            finally:
                if ahead is not None:
                    ahead.close()

    # -- main loop --------------------------------------------------------------------------------

    def _run(self) -> Iterator[Tuple[Optional[str], str, Row]]:
        self._db: Optional[str] = None
        self._table: Optional[TableKey] = None  # the table whose structure/data we are in
        self._zone: Optional[dt.tzinfo] = self.default_time_zone
        self._nl = b"\n"
        info = self.info
        b = self._b
        self._check_start()
        while True:
            if b.pos >= len(b.buf) and not b.fill():
                break
            start = b.pos
            first = b.buf[start : start + 1]
            if first == b"I" or first == b"R" or first == b"i" or first == b"r":
                if len(b.buf) - start < _HEAD_WINDOW:
                    b.ensure(_HEAD_WINDOW)
                    start = b.pos
                m = _INSERT_HEAD.match(b.buf, start, start + _HEAD_WINDOW)
                if m is not None:
                    yield from self._insert(m)
                    if self._finished():
                        break
                    continue
            line_end = b.line_end()
            start = b.pos
            line = b.buf[start:line_end].rstrip(b"\r")
            b.pos = line_end + 1
            if not line:
                continue
            if first == b"-":
                self._comment(line)
            elif first == b"C" and line.startswith(b"CREATE"):
                self._create(line, start)
            elif first == b"U" and line.startswith(b"USE "):
                m = _USE.match(line)
                if m:
                    self._set_database(_ident(m.group(1)))
            elif first == b"L" and line.startswith(b"LOCK TABLES"):
                m = _LOCK.match(line)
                if m:
                    key = self._key(_ident(m.group(1)))
                    self._enter_table(key)
                    if self.request.answers(key) is None:
                        self._skip_locked_data()
            elif first == b"U" and line.startswith(b"UNLOCK TABLES"):
                self._leave_table()
            elif first == b"/":
                if line.startswith(b"/*!40000 ALTER TABLE") and b"ENABLE KEYS" in line:
                    self._leave_table()
                elif b"SET TIME_ZONE=" in line:
                    m = _TIME_ZONE.search(line)
                    if m and not m.group(1).startswith(b"@"):
                        info.time_zone = m.group(1).decode("ascii", "replace")
                        zone = parse_time_zone(info.time_zone)
                        self._zone = zone if zone is not None else self.default_time_zone
            elif first == b"D" and line.startswith(b"DELIMITER") and line.split()[1:2] != [b";"]:
                self._leave_table()
                delimiter = line.split()[1] if len(line.split()) > 1 else b";;"
                self._skip_delimited_block(delimiter)
            if self._finished():
                break
        if info.stopped_early:
            return
        info.bytes_read = b.offset
        if b.eof:
            self._leave_table()
            if info.has_header and not info.has_trailer:
                raise TruncatedDumpError(
                    info.path, "the dump ends without its '-- Dump completed' trailer", info.bytes_read
                )

    def _finished(self) -> bool:
        if self.stop_early and self.request.complete():
            self.info.stopped_early = True
            self.info.bytes_read = self._b.offset
            return True
        return False

    def _check_start(self) -> None:
        """Refuse what is plainly not a dump before reading gigabytes of it (looks at the first line)."""
        self._b.ensure(_START_WINDOW)
        if not self._b.buf and self._b.read_error is not None:
            raise self._b.read_error
        if not self._b.buf:
            raise NotADumpError(self.info.path, "the file is empty")
        if self._b.buf.startswith(b"\xef\xbb\xbf"):  # a byte-order mark some editors add
            self._b.pos = 3
        end = self._b.buf.find(b"\n", self._b.pos, self._b.pos + _START_WINDOW)
        first_line = self._b.buf[self._b.pos : end if end >= 0 else self._b.pos + _START_WINDOW]
        if first_line.endswith(b"\r"):
            self.info.crlf = True
            self._nl = b"\r\n"
        stripped = first_line.lstrip(b" \t\r")
        if b"\x00" in first_line or not stripped.startswith(_FIRST_LINE_OK):
            preview = first_line[:40].decode("utf-8", "replace")
            raise NotADumpError(self.info.path, f"first line is not SQL: {preview!r}")

    # -- tables and context -----------------------------------------------------------------------

    def _key(self, table: str) -> TableKey:
        return (self._db, table)

    def _set_database(self, name: str) -> None:
        if name != self._db:
            self._leave_table()
            if self._db is not None:
                self.request.database_left(self._db)
        self._db = name
        if name not in self.info.databases:
            self.info.databases.append(name)

    def _enter_table(self, key: TableKey) -> None:
        if self._table != key:
            self._leave_table()
            self._table = key
            if key not in self.info.tables:
                self.info.tables.append(key)

    def _leave_table(self) -> None:
        if self._table is not None:
            self.request.table_left(self._table)
            self._table = None

    def _comment(self, line: bytes) -> None:
        info = self.info
        if line.startswith(b"-- Current Database:"):
            m = _CURRENT_DB.match(line)
            if m:
                self._set_database(_ident(m.group(1)))
        elif line.startswith(b"-- Dump completed"):
            info.has_trailer = True
            self._leave_table()
            m = _COMPLETED.match(line)
            if m and m.group(1):
                day = dt.date.fromisoformat(m.group(1).decode())
                info.completed_at = dt.datetime.combine(
                    day, dt.time(int(m.group(2)), int(m.group(3)), int(m.group(4)))
                )
        elif line.startswith((b"-- Table structure", b"-- Dumping data", b"-- Temporary table")):
            m = _TABLE_COMMENT.match(line)
            if m:
                self._enter_table(self._key(_ident(m.group(1))))
        elif not info.has_header and (
            line.startswith(b"-- MySQL dump") or line.startswith(b"-- MariaDB dump")
        ):
            m = _HEADER.match(line)
            info.has_header = True
            if m:
                info.flavor = m.group(1).decode()
                info.dump_version = m.group(2).decode()
                info.distribution = m.group(3).decode()
                if "mariadb" in info.distribution.lower():
                    info.flavor = "MariaDB"
        elif line.startswith(b"-- Server version"):
            m = _SERVER_VERSION.match(line)
            if m:
                info.server_version = m.group(1).decode("utf-8", "replace")
                if "mariadb" in info.server_version.lower():
                    info.flavor = "MariaDB"
        elif line.startswith(b"-- Host:") and self._db is None:
            m = _HOST_DB.match(line)
            if m:
                self._set_database(m.group(1).decode("utf-8", "surrogateescape"))

    def _create(self, line: bytes, start: int) -> None:
        m = _CREATE_TABLE.match(line)
        if m is None:
            return  # CREATE DATABASE, views and the like: single statements we do not need
        key = self._key(_ident(m.group(1)))
        self._enter_table(key)
        self._b.pos = start
        if self.request.answers(key) is None:
            self._skip_statement()
            return
        end, _ = self._statement_end()
        start = self._b.pos
        sql = self._b.buf[start:end].decode("utf-8", "surrogateescape")
        try:
            schema = parse_create_table(sql, key[0])
        except ValueError as exc:
            raise DumpSyntaxError(
                self.info.path, f"CREATE TABLE `{key[1]}`: {exc}", self._b.base + start
            ) from exc
        self.schemas[key] = schema
        self._b.pos = end

    def _statement_end(self) -> Tuple[int, bool]:
        """Offset just past the ``;`` + newline ending the statement that starts at ``self._b.pos``.

        The flag is True when the stream ended without that newline (the statement may be cut short).
        """
        terminator = b";" + self._nl
        i = self._b.find(terminator, self._b.pos)
        if i < 0:
            if self._b.buf.rstrip().endswith(b";"):
                return len(self._b.buf), True
            raise TruncatedDumpError(self.info.path, "the dump ends inside a statement", self._b.offset)
        if i - self._b.pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.info.path,
                f"a statement of {i - self._b.pos} bytes (bound {self.max_statement_bytes})",
                self._b.offset,
            )
        return i + len(terminator), False

    def _skip_statement(self) -> None:
        """Jump past the statement at ``self._b.pos`` without holding it (unwanted table data)."""
        terminator = b";" + self._nl
        if self._b.skip_to(terminator) < 0:
            if self._b.buf.rstrip().endswith(b";"):
                self._b.pos = len(self._b.buf)
                return
            raise TruncatedDumpError(
                self.info.path,
                f"the dump ends inside the data of table `{self._table[1] if self._table else '?'}`",
                self._b.offset,
            )
        self._b.pos += len(terminator)

    def _skip_locked_data(self) -> None:
        """Jump over an unwanted table's data to its ``UNLOCK TABLES``."""
        if self._b.buf.startswith(b"UNLOCK TABLES;", self._b.pos):
            return
        if self._b.skip_to(b"\nUNLOCK TABLES;") < 0:
            raise TruncatedDumpError(
                self.info.path,
                f"the dump ends inside the data of table `{self._table[1] if self._table else '?'}`",
                self._b.offset,
            )
        self._b.pos += 1

    def _skip_delimited_block(self, delimiter: bytes) -> None:
        """Skip a ``DELIMITER ;;`` block (routines, triggers), whose bodies may hold anything.

        The block ends with its last statement's delimiter at a line end, then ``DELIMITER ;``: a body
        may hold a ``DELIMITER ;`` line of its own (in a string), but not right after the delimiter.
        """
        needle = delimiter + self._nl + b"DELIMITER ;" + self._nl
        if self._b.skip_to(needle) < 0:
            raise TruncatedDumpError(
                self.info.path,
                f"the dump ends inside a DELIMITER {delimiter.decode()} block",
                self._b.offset,
            )
        self._b.pos += len(delimiter) + len(self._nl)

    # -- data -------------------------------------------------------------------------------------

    def _insert(self, head: re.Match) -> Iterator[Tuple[Optional[str], str, Row]]:
        db = _ident(head.group(1)) if head.group(1) else self._db
        table = _ident(head.group(2))
        key = (db, table)
        if key != self._table:
            self._enter_table(key)
        if self.request.answers(key) is None:
            self._skip_statement()
            return
        values_offset = head.end() - self._b.pos
        end, unterminated = self._statement_end()
        start = self._b.pos
        statement = self._b.buf[start:end]
        self._b.pos = end
        cols = head.group("cols")
        build = self._builder(key, cols)
        if build is None:
            raise UnknownColumnsError(self.info.path, db, table, self._b.base + start)
        try:
            for tokens in iter_rows(statement, values_offset):
                try:
                    row = build(tokens)
                except ValueError as exc:
                    raise DumpSyntaxError(self.info.path, f"`{table}`: {exc}", self._b.base + start) from exc
                yield db, table, row
        except TokenizeError as exc:
            if unterminated:
                raise TruncatedDumpError(
                    self.info.path, f"the dump ends inside an INSERT into `{table}`", self._b.base + start
                ) from exc
            raise DumpSyntaxError(
                self.info.path, f"INSERT INTO `{table}`: {exc}", self._b.base + start + exc.position
            ) from exc

    def _builder(self, key: TableKey, cols: Optional[bytes]) -> Optional[Callable[[List[Any]], Row]]:
        """The (cached) row builder for an INSERT into ``key`` with column list ``cols``; None: unknown."""
        cache_key = (key, cols, self._zone)
        build = self._builders.get(cache_key)
        if build is not None:
            return build
        schema = (
            self.schemas.get(key) or self.schemas.get((self._db, key[1])) or self.schemas.get((None, key[1]))
        )
        if cols is not None:
            names = [_ident(n) for n in _COLUMN_NAME.findall(cols)]
            types = {c.name: c.type for c in schema.columns} if schema else {}
            columns = [Column(n, types.get(n, UNKNOWN_TYPE)) for n in names]
        elif schema is not None:
            columns = list(schema.columns)
        else:
            return None
        answered = self.request.answers(key)
        keep = self.columns.get(answered) if answered is not None else None
        build = row_builder(columns, self._zone, keep)
        self._builders[cache_key] = build
        return build


def read_rows(
    source: PathOrFile,
    tables: Iterable[TableKey],
    *,
    stop_early: bool = True,
    name: Optional[str] = None,
    **options: Any,
) -> Iterator[Tuple[Optional[str], str, Row]]:
    """Shorthand for ``iter(DumpReader(source, tables, …))`` (``options`` as :class:`DumpReader` takes)."""
    return iter(DumpReader(source, tables, stop_early=stop_early, name=name, **options))


def read_info(source: PathOrFile, *, name: Optional[str] = None) -> DumpInfo:
    """Read a whole dump (no rows kept) for its metadata: flavour, trailer, databases and tables."""
    reader = DumpReader(source, (), stop_early=False, name=name)
    for _ in reader:
        pass
    return reader.info


__all__ = ["DumpInfo", "DumpReader", "Row", "TableKey", "TableRequest", "read_info", "read_rows"]
