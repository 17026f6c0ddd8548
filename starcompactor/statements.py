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
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from .errors import (
    DumpError,
    DumpSyntaxError,
    LineTooLongError,
    NotADumpError,
    TruncatedDumpError,
    UnknownColumnsError,
)
from .schema import UNKNOWN_TYPE, Column, TableSchema, parse_create_table, parse_time_zone, row_builder
from .source import DecompressedStream, PathOrFile
from .tokenize import TokenizeError, iter_rows

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
_ALTER_KEYS = re.compile(rb"/\*!40000 ALTER TABLE " + _IDENT + rb" ENABLE KEYS")
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
    b"--", b"/*", b"CREATE", b"DROP", b"INSERT", b"REPLACE", b"USE", b"SET", b"LOCK", b"UNLOCK", b"DELIMITER",
    b"ALTER", b"SELECT", b"START", b"BEGIN", b"COMMIT", b"#",
)  # fmt: skip


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


class DumpReader:
    """Iterate ``(database, table, row)`` for the requested tables of one dump.

    ``tables`` holds ``(database, table)`` pairs; a database of ``None`` matches the table in any database
    (and in a single-database dump that never says which database it is). Rows are dicts keyed by column
    name, typed by column type (see :mod:`starcompactor.schema`).

    After iteration, :attr:`info` describes the dump and :attr:`schemas` the requested tables found.
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
    ) -> None:
        self.source = source
        self.wanted: Set[TableKey] = set(tables)
        self._by_table: Dict[str, Set[TableKey]] = {}
        for key in self.wanted:
            self._by_table.setdefault(key[1], set()).add(key)
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
        self.info = DumpInfo(path=name or "")
        self.schemas: Dict[TableKey, TableSchema] = {}
        self._done: Set[TableKey] = set()

    # -- public -----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Tuple[Optional[str], str, Row]]:
        with DecompressedStream(self.source, self._name, transport_params=self.transport_params) as stream:
            self.info.path = stream.name
            self.info.compression = stream.compression
            self._stream = stream
            self._last_compressed = 0
            try:
                yield from self._run()
            except TokenizeError as exc:
                raise DumpSyntaxError(stream.name, str(exc)) from exc

    def read_all(self) -> List[Tuple[Optional[str], str, Row]]:
        return list(self)

    # -- buffer -----------------------------------------------------------------------------------

    def _fill(self, bounded: bool = True) -> bool:
        """Append one chunk to the buffer, dropping what was consumed. False at end of stream.

        Called when the thing starting at ``self._pos`` needs more bytes, so (when ``bounded``) holding
        more than ``max_statement_bytes`` unconsumed means a statement (or line) over the bound.
        ``bounded=False`` is a read-ahead: a damaged stream only stops it; the error is raised when the
        bytes are really needed.
        """
        if self._eof:
            return False
        if self._read_error is not None:
            if not bounded:
                return False
            raise self._read_error
        if bounded and len(self._buf) - self._pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.info.path,
                f"more than {self.max_statement_bytes} bytes without an end",
                self._base + self._pos,
            )
        try:
            chunk = self._read_chunk()
        except DumpError as exc:
            if bounded:
                raise
            # reading ahead (``_ensure``) met a damaged stream: what is buffered may be all we need
            self._read_error = exc
            return False
        if not chunk:
            return False
        if self._pos:
            self._base += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        else:
            self._buf += chunk
        return True

    def _find(self, needle: bytes, start: int) -> int:
        """Index of ``needle`` at or after ``start`` in the buffer, reading more as needed; -1 at EOF.

        Reading more may drop the consumed part of the buffer: indexes held by the caller are only
        valid relative to ``self._pos``.
        """
        while True:
            i = self._buf.find(needle, start)
            if i >= 0:
                return i
            start = max(start, len(self._buf) - len(needle) + 1)
            old_pos = self._pos
            if not self._fill():
                return -1
            start -= old_pos

    def _read_chunk(self) -> bytes:
        """The next piece of decompressed data (empty at the end of the stream, setting ``_eof``)."""
        chunk = self._stream.read1(self.chunk_size)
        if self.on_progress is not None:
            position = self._stream.compressed_position()
            if position is not None:
                self.on_progress(position - self._last_compressed)
                self._last_compressed = position
        if not chunk:
            self._eof = True
        return chunk

    def _skip_to(self, needle: bytes) -> int:
        """Discard everything up to ``needle`` (which stays in the buffer at ``self._pos``). -1 at EOF.

        This is where the bytes of unwanted tables go: each decompressed piece is searched where it
        lands and dropped, never appended to the buffer (only the last ``len(needle) - 1`` bytes are
        carried over, for a needle split across two pieces).
        """
        i = self._buf.find(needle, self._pos)
        if i >= 0:
            self._pos = i
            return i
        keep = len(needle) - 1
        tail_start = max(self._pos, len(self._buf) - keep)
        self._base += tail_start
        tail = self._buf[tail_start:]
        self._buf, self._pos = tail, 0
        if self._eof:
            return -1
        if self._read_error is not None:
            raise self._read_error
        while True:
            chunk = self._read_chunk()
            if not chunk:
                return -1
            if tail:
                j = (tail + chunk[:keep]).find(needle)
                if j >= 0:
                    self._buf, self._pos = tail + chunk, j
                    return j
            j = chunk.find(needle)
            if j >= 0:
                self._base += len(tail)
                self._buf, self._pos = chunk, j
                return j
            joined = len(tail) + len(chunk)
            tail = chunk[-keep:] if len(chunk) >= keep else (tail + chunk)[-keep:]
            self._base += joined - len(tail)
            self._buf = tail

    def _line_end(self) -> int:
        """Index of the newline ending the line at ``self._pos`` (the buffer's end at EOF)."""
        i = self._find(b"\n", self._pos)
        if i < 0:
            return len(self._buf)
        if i - self._pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.info.path, f"a line of {i - self._pos} bytes (bound {self.max_statement_bytes})",
                self._base + self._pos,
            )  # fmt: skip
        return i

    def _ensure(self, n: int) -> None:
        """Have at least ``n`` bytes after ``self._pos`` in the buffer, unless the stream ends first."""
        while len(self._buf) - self._pos < n and self._fill(bounded=False):
            pass

    # -- main loop --------------------------------------------------------------------------------

    def _run(self) -> Iterator[Tuple[Optional[str], str, Row]]:
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False
        self._read_error: Optional[DumpError] = None
        self._db: Optional[str] = None
        self._table: Optional[TableKey] = None  # the table whose structure/data we are in
        self._zone: Optional[dt.tzinfo] = self.default_time_zone
        self._nl = b"\n"
        info = self.info
        self._check_start()
        while True:
            if self._pos >= len(self._buf) and not self._fill():
                break
            start = self._pos
            first = self._buf[start : start + 1]
            if first == b"I" or first == b"R" or first == b"i" or first == b"r":
                if len(self._buf) - start < _HEAD_WINDOW:
                    self._ensure(_HEAD_WINDOW)
                    start = self._pos
                m = _INSERT_HEAD.match(self._buf, start, start + _HEAD_WINDOW)
                if m is not None:
                    yield from self._insert(m)
                    if self._finished():
                        break
                    continue
            line_end = self._line_end()
            start = self._pos
            line = self._buf[start:line_end].rstrip(b"\r")
            self._pos = line_end + 1
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
                    if self._wanted_as(key) is None:
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
        info.bytes_read = self._base + self._pos
        if self._eof:
            self._leave_table()
            if info.has_header and not info.has_trailer:
                raise TruncatedDumpError(
                    info.path, "the dump ends without its '-- Dump completed' trailer", info.bytes_read
                )

    def _finished(self) -> bool:
        if not self.stop_early or not self.wanted:
            return False
        if any(db is None for db, _ in self.wanted):
            return False
        if self._done >= self.wanted:
            self.info.stopped_early = True
            self.info.bytes_read = self._base + self._pos
            return True
        return False

    def _check_start(self) -> None:
        """Refuse what is plainly not a dump before reading gigabytes of it (looks at the first line)."""
        self._ensure(_START_WINDOW)
        if not self._buf and self._read_error is not None:
            raise self._read_error
        if not self._buf:
            raise NotADumpError(self.info.path, "the file is empty")
        if self._buf.startswith(b"\xef\xbb\xbf"):  # a byte-order mark some editors add
            self._pos = 3
        end = self._buf.find(b"\n", self._pos, self._pos + _START_WINDOW)
        first_line = self._buf[self._pos : end if end >= 0 else self._pos + _START_WINDOW]
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

    def _wanted_as(self, key: TableKey) -> Optional[TableKey]:
        """The requested key that ``key`` answers, or None.

        A table of a database the dump never names (a single-database dump without ``USE``, e.g.
        ``--compact``) answers a request for that table in any database.
        """
        if key in self.wanted:
            return key
        if (None, key[1]) in self.wanted:
            return (None, key[1])
        if key[0] is None and key[1] in self._by_table:
            return next(iter(self._by_table[key[1]]))
        return None

    def _set_database(self, name: str) -> None:
        if name != self._db:
            self._leave_table()
            if self._db is not None:
                # mysqldump writes each database in one piece: the wanted tables of the database we
                # leave are complete now, present or not (a Blazar layout lacks some of them).
                self._done.update(key for key in self.wanted if key[0] == self._db)
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
            db, table = self._table
            if self._wanted_as(self._table) is not None:
                if db is None:
                    self._done.update(self._by_table.get(table, ()))
                else:
                    self._done.add((db, table))
                    self._done.add((None, table))
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
        self._pos = start
        if self._wanted_as(key) is None:
            self._skip_statement()
            return
        end, _ = self._statement_end()
        start = self._pos
        sql = self._buf[start:end].decode("utf-8", "surrogateescape")
        try:
            schema = parse_create_table(sql, key[0])
        except ValueError as exc:
            raise DumpSyntaxError(
                self.info.path, f"CREATE TABLE `{key[1]}`: {exc}", self._base + start
            ) from exc
        self.schemas[key] = schema
        self._pos = end

    def _statement_end(self) -> Tuple[int, bool]:
        """Offset just past the ``;`` + newline ending the statement that starts at ``self._pos``.

        The flag is True when the stream ended without that newline (the statement may be cut short).
        """
        terminator = b";" + self._nl
        i = self._find(terminator, self._pos)
        if i < 0:
            if self._buf.rstrip().endswith(b";"):
                return len(self._buf), True
            raise TruncatedDumpError(
                self.info.path, "the dump ends inside a statement", self._base + self._pos
            )
        if i - self._pos > self.max_statement_bytes:
            raise LineTooLongError(
                self.info.path, f"a statement of {i - self._pos} bytes (bound {self.max_statement_bytes})",
                self._base + self._pos,
            )  # fmt: skip
        return i + len(terminator), False

    def _skip_statement(self) -> None:
        """Jump past the statement at ``self._pos`` without holding it (unwanted table data)."""
        terminator = b";" + self._nl
        if self._skip_to(terminator) < 0:
            if self._buf.rstrip().endswith(b";"):
                self._pos = len(self._buf)
                return
            raise TruncatedDumpError(
                self.info.path, f"the dump ends inside the data of table `{self._table[1] if self._table else '?'}`",
                self._base + self._pos,
            )  # fmt: skip
        self._pos += len(terminator)

    def _skip_locked_data(self) -> None:
        """Jump over an unwanted table's data to its ``UNLOCK TABLES``."""
        if self._buf.startswith(b"UNLOCK TABLES;", self._pos):
            return
        if self._skip_to(b"\nUNLOCK TABLES;") < 0:
            raise TruncatedDumpError(
                self.info.path, f"the dump ends inside the data of table `{self._table[1] if self._table else '?'}`",
                self._base + self._pos,
            )  # fmt: skip
        self._pos += 1

    def _skip_delimited_block(self, delimiter: bytes) -> None:
        """Skip a ``DELIMITER ;;`` block (routines, triggers), whose bodies may hold anything.

        The block ends with its last statement's delimiter at a line end, then ``DELIMITER ;``: a body
        may hold a ``DELIMITER ;`` line of its own (in a string), but not right after the delimiter.
        """
        needle = delimiter + self._nl + b"DELIMITER ;" + self._nl
        if self._skip_to(needle) < 0:
            raise TruncatedDumpError(
                self.info.path,
                f"the dump ends inside a DELIMITER {delimiter.decode()} block",
                self._base + self._pos,
            )
        self._pos += len(delimiter) + len(self._nl)

    # -- data -------------------------------------------------------------------------------------

    def _insert(self, head: re.Match) -> Iterator[Tuple[Optional[str], str, Row]]:
        db = _ident(head.group(1)) if head.group(1) else self._db
        table = _ident(head.group(2))
        key = (db, table)
        if key != self._table:
            self._enter_table(key)
        if self._wanted_as(key) is None:
            self._skip_statement()
            return
        values_offset = head.end() - self._pos
        end, unterminated = self._statement_end()
        start = self._pos
        statement = self._buf[start:end]
        self._pos = end
        cols = head.group("cols")
        build = self._builder(key, cols)
        if build is None:
            raise UnknownColumnsError(self.info.path, db, table, self._base + start)
        try:
            for tokens in iter_rows(statement, values_offset):
                try:
                    row = build(tokens)
                except ValueError as exc:
                    raise DumpSyntaxError(self.info.path, f"`{table}`: {exc}", self._base + start) from exc
                yield db, table, row
        except TokenizeError as exc:
            if unterminated:
                raise TruncatedDumpError(
                    self.info.path, f"the dump ends inside an INSERT into `{table}`", self._base + start
                ) from exc
            raise DumpSyntaxError(
                self.info.path, f"INSERT INTO `{table}`: {exc}", self._base + start + exc.position
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
        build = row_builder(columns, self._zone)
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


__all__ = ["DumpError", "DumpInfo", "DumpReader", "read_info", "read_rows"]
