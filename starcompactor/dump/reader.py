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

A dump is read right or refused in one line, never read as empty: names may be in backquotes, in double
quotes (where the dump's SQL_MODE has ANSI_QUOTES) or bare, and a statement that starts like an INSERT
but names no table it can read is an error; plain ``/* … */`` comments are skipped whole (``/*!…*/``
ones are run by the server, so what they hold is read); text is decoded as the dump's ``SET NAMES`` says.

Three parts: :class:`TableRequest` (which tables are wanted, which are complete), the byte window
(:class:`~starcompactor.dump.buffer.DumpBuffer`) and :class:`DumpReader`, which dispatches on the first
bytes of each line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from array import array
from bisect import bisect_left
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
from .schema import (
    UNKNOWN_TYPE,
    Column,
    TableSchema,
    codec_for,
    converter_for,
    parse_create_table,
    row_builder,
)
from .stream import DecompressedStream, PathOrFile
from .values import NumberLiteral, count_rows, iter_rows

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

#: A name: in backquotes, in double quotes (the dump's SQL_MODE has ANSI_QUOTES: ``--compatible=ansi``)
#: or bare (``--skip-quote-names``, and mariadb-dump's ``row_start, row_end`` of ``--dump-history``).
_NAME = rb'(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[0-9A-Za-z_$\x80-\xff]+)'
_IDENT = rb"(" + _NAME + rb")"
_INSERT_INTO = re.compile(
    rb"(?:INSERT(?:[ ]+(?:IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*|(?P<replace>REPLACE)(?:[ ]+(?:LOW_PRIORITY|DELAYED))*)"
    rb"[ ]+INTO[ ]+(?:(?P<db>" + _NAME + rb")[ ]*\.[ ]*)?(?P<table>" + _NAME + rb")",
    re.IGNORECASE,
)
_INSERT_REST = re.compile(
    rb"[ \t\r\n]*(?:\((?P<cols>[ \t\r\n]*"
    + _NAME
    + rb"(?:[ \t\r\n]*,[ \t\r\n]*"
    + _NAME
    + rb")*[ \t\r\n]*)\))?"
    rb"[ \t\r\n]*VALUES?[ \t\r\n]*",
    re.IGNORECASE,
)
_INSERT_WORD = re.compile(rb"(?:INSERT|REPLACE)\b", re.IGNORECASE)
_COLUMN_NAME = re.compile(_NAME)
_CREATE_TABLE = re.compile(
    rb"CREATE[ ]+(?:OR[ ]+REPLACE[ ]+)?(?:TEMPORARY[ ]+)?TABLE[ ]+(?:IF[ ]+NOT[ ]+EXISTS[ ]+)?"
    rb"(?:" + _NAME + rb"[ ]*\.[ ]*)?" + _IDENT,
    re.IGNORECASE,
)
_CREATE_OTHER = re.compile(
    rb"CREATE[ ]+(?:DATABASE|SCHEMA|(?:OR[ ]+REPLACE[ ]+)?(?:TEMPORARY[ ]+)?TABLE)\b", re.I
)
_USE = re.compile(rb"USE[ ]+" + _IDENT)
_LOCK = re.compile(rb"LOCK TABLES[ ]+(?:" + _NAME + rb"[ ]*\.[ ]*)?" + _IDENT)
_CURRENT_DB = re.compile(rb"-- Current Database: " + _IDENT)
_HOST_DB = re.compile(rb"-- Host: .*?Database: (\S+)")
_TABLE_COMMENT = re.compile(
    rb"-- (?:Table structure|Dumping data|Temporary table structure|Temporary view structure) for "
    rb"(?:table|view) " + _IDENT
)
_HEADER = re.compile(rb"-- (MySQL|MariaDB) dump ([\d.]+)\s+Distrib ([^\s,]+)")
_SERVER_VERSION = re.compile(rb"-- Server version\s+(\S+)")
_COMPLETED = re.compile(rb"-- Dump completed(?: on (\d{4}-\d{2}-\d{2})\s+(\d{1,2}):(\d{2}):(\d{2}))?")
_TIME_ZONE = re.compile(rb"SET TIME_ZONE='([^']*)'")
#: ``@saved = @@SQL_MODE`` (saves the mode), ``SQL_MODE = '…'`` (sets it), ``SQL_MODE = @saved`` (restores).
_SQL_MODE = re.compile(
    rb"@(?P<save>\w+)[ ]*=[ ]*@@(?:SESSION\.)?SQL_MODE\b"
    rb"|(?<![@\w.])SQL_MODE[ ]*=[ ]*(?:'(?P<mode>[^']*)'|@(?P<restore>\w+))",
    re.IGNORECASE,
)
_SET_NAMES = re.compile(rb"SET[ ]+NAMES[ ]+'?(\w+)", re.IGNORECASE)
#: SQL modes under which a double-quoted word is a name, not a string (ANSI and the combinations with it).
_ANSI_QUOTES_MODES = frozenset({"ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"})
#: A MariaDB ``row_end`` at or after this is the current version of a row (its maximum is 2038-01-19
#: 03:14:07.999999 UTC, or 2106-02-07 with 64-bit timestamps); a day of slack for a zone written as is.
_CURRENT_ROW_END = dt.datetime(2038, 1, 18)
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
    """The name a quoted or bare identifier stands for."""
    if raw[:1] == b"`":
        raw = raw[1:-1].replace(b"``", b"`")
    elif raw[:1] == b'"':
        raw = raw[1:-1].replace(b'""', b'"')
    return raw.decode("utf-8", "surrogateescape")


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
    sql_mode: Optional[str] = None  #: the dump's ``SET SQL_MODE`` (the first one that sets it)
    character_set: Optional[str] = None  #: the dump's ``SET NAMES`` (how its text is encoded)
    databases: List[str] = field(default_factory=list)
    tables: List[TableKey] = field(default_factory=list)
    #: rows per table, when the reader counts them (``count_rows=True``)
    row_counts: Dict[TableKey, int] = field(default_factory=dict)
    #: rows of requested tables left out because their primary key repeats an earlier row's
    duplicate_rows: Dict[TableKey, int] = field(default_factory=dict)
    #: past versions left out of requested system-versioned tables (``--dump-history``)
    history_rows: Dict[TableKey, int] = field(default_factory=dict)
    bytes_read: int = 0  #: decompressed bytes consumed

    @property
    def ended_cleanly(self) -> Optional[bool]:
        """True when the trailer was seen; None when reading stopped early or the dump has no comments."""
        if self.has_trailer:
            return True
        if self.stopped_early or not self.has_header:
            return None
        return False


#: The table of a request for every table of a database: ``(database, ALL_TABLES)``.
ALL_TABLES = "*"


class TableRequest:
    """The tables a read wants, and which of them are complete (so reading can stop).

    A database of ``None`` matches the table in any database, and a table of a database the dump never
    names (a single-database dump without ``USE``, e.g. ``--compact``) answers a request for that table
    in any database. A table of :data:`ALL_TABLES` (``"*"``) matches every table of its database.
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
        if ALL_TABLES in self.by_table and (key[0], ALL_TABLES) in self.wanted:
            return (key[0], ALL_TABLES)
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


class _SeenKeys:
    """The primary keys of a table met so far, to tell a repeated one.

    mysqldump writes an InnoDB table in key order, so integer keys come ascending: those are kept in an
    array (8 bytes each, searched by bisection), anything else in a set (~60 bytes each).
    """

    __slots__ = ("ascending", "others")

    def __init__(self) -> None:
        self.ascending = array("q")
        self.others: Set[Any] = set()

    def add(self, key: Any) -> bool:
        """Remember ``key``; False when it was met before."""
        if type(key) is NumberLiteral:
            try:
                k = int(key)
                ascending = self.ascending
                if not ascending or k > ascending[-1]:
                    ascending.append(k)  # others are all below the last, so k is new
                    return True
                i = bisect_left(ascending, k)
                if i < len(ascending) and ascending[i] == k:
                    return False
                key = k
            except (ValueError, OverflowError):
                pass
        if key in self.others:
            return False
        self.others.add(key)
        return True


class _Plan:
    """How the rows of one INSERT become rows: the builder, and what filters them (cached per column list).

    ``key`` holds the token indexes of the primary key (empty: rows are not checked for repeats);
    ``row_end`` the index and converter of a system-versioned table's ``row_end`` (past versions are
    left out).
    """

    __slots__ = ("build", "key", "row_end")

    def __init__(
        self,
        build: Callable[[List[Any]], Row],
        key: Tuple[int, ...] = (),
        row_end: Optional[Tuple[int, Callable[[Any], Any]]] = None,
    ) -> None:
        self.build = build
        self.key = key
        self.row_end = row_end


@dataclass(frozen=True)
class _Insert:
    """One wanted INSERT statement, cut out of the window: its rows start at ``values_offset``."""

    db: Optional[str]
    table: str
    statement: bytes
    values_offset: int
    start: int  #: the statement's offset in the window (errors add the window's base)
    unterminated: bool  #: the stream ended without the statement's ``;`` + newline
    replace: bool  #: REPLACE INTO (a repeated key is refused, not left out)


#: Magic numbers of files a backup directory might hold by mistake (said by name, never quoted).
_KNOWN_KINDS = (
    (b"\x7fELF", "an executable (ELF)"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"SQLite format 3", "an SQLite database"),
    (b"-----BEGIN", "a PEM key or certificate"),
    (b"PGDMP", "a PostgreSQL custom-format dump"),
)


def _kind_of(first_line: bytes) -> str:
    """What a file that is not a dump looks like, in words: its content is never quoted, since it may be
    anything (a secrets file, ``/proc/self/environ`` through a symbolic link)."""
    for magic, kind in _KNOWN_KINDS:
        if first_line.startswith(magic):
            return kind
    if b"\x00" in first_line:
        return "binary data"
    stripped = first_line.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "text starting like JSON"
    if stripped[:1] == b"<":
        return "text starting like HTML or XML"
    return f"text, a first line of {len(first_line)} bytes"


class DumpReader:
    """Iterate ``(database, table, row)`` for the requested tables of one dump.

    ``tables`` holds ``(database, table)`` pairs; a database of ``None`` matches the table in any database
    (and in a single-database dump that never says which database it is). Rows are dicts keyed by column
    name, typed by column type (see :mod:`starcompactor.dump.schema`).

    ``columns`` limits the rows of a requested key to the named columns (absent ones are simply missing).
    After iteration, :attr:`info` describes the dump and :attr:`schemas` the requested tables found.
    Iterating again reads the dump again from the start (a path or URI is opened anew); a reader over a
    file object can be iterated once, and a second iteration raises :class:`RuntimeError`.

    Rows are what a restore of the dump holds: a row whose primary key repeats an earlier row's of the
    same table is left out with a warning (the restore keeps the first and fails the later INSERT), and
    of a system-versioned table dumped with its history only the current version of each row is given.
    With ``count_rows``, every INSERT of every table is counted (without tokenizing its values) into
    ``info.row_counts``, for :mod:`starcompactor.dump.inspect`.
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
        count_rows: bool = False,
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
        self._plans: Dict[Any, _Plan] = {}
        self.stop_early = stop_early and not count_rows
        self.count_rows = count_rows
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
        self._seen_keys: Dict[TableKey, _SeenKeys] = {}

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
                self._warn_dropped()

    # -- main loop --------------------------------------------------------------------------------

    def _run(self) -> Iterator[Tuple[Optional[str], str, Row]]:
        self._db: Optional[str] = None
        self._table: Optional[TableKey] = None  # the table whose structure/data we are in
        self._zone: Optional[dt.tzinfo] = self.default_time_zone
        self._nl = b"\n"
        #: the SQL mode in force (None: the dump has not said), and the ones saved in variables
        self._mode: Optional[FrozenSet[str]] = None
        self._saved_modes: Dict[str, Optional[FrozenSet[str]]] = {}
        self._codec: Optional[str] = "utf-8"
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
                m = _INSERT_INTO.match(b.buf, start, start + _HEAD_WINDOW)
                if m is not None:
                    yield from self._insert(m)
                    if self._finished():
                        break
                    continue
                if _INSERT_WORD.match(b.buf, start):
                    self._unreadable_insert(start)
            elif first == b" " or first == b"\t":
                b.pos += 1  # an indented line: look at it from its first word
                continue
            line_end = b.line_end()
            start = b.pos
            line = b.buf[start:line_end].rstrip(b"\r")
            b.pos = line_end + 1
            if not line:
                continue
            if first == b"-":
                self._comment(line)
            elif first == b"C" or first == b"c":
                self._create(line, start)
            elif first == b"U" and line.startswith(b"USE "):
                m = _USE.match(line)
                if m is None:
                    raise DumpSyntaxError(info.path, f"cannot read the database name of {_preview(line)}")
                self._set_database(self._name_of(m.group(1), line))
            elif first == b"L" and line.startswith(b"LOCK TABLES"):
                m = _LOCK.match(line)
                if m is None:
                    raise DumpSyntaxError(info.path, f"cannot read the table name of {_preview(line)}")
                key = self._key(self._name_of(m.group(1), line))
                self._enter_table(key)
                if self.request.answers(key) is None and not self.count_rows:
                    self._skip_locked_data()
            elif first == b"U" and line.startswith(b"UNLOCK TABLES"):
                self._leave_table()
            elif first == b"/":
                if line.startswith(b"/*!") or line.startswith(b"/*M!"):
                    if line.startswith(b"/*!40000 ALTER TABLE") and b"ENABLE KEYS" in line:
                        self._leave_table()
                    else:
                        self._settings(line)
                elif line.startswith(b"/*"):
                    self._skip_comment(start, line)
            elif first == b"S" or first == b"s":
                self._settings(line)
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
            raise NotADumpError(self.info.path, f"first line is not SQL ({_kind_of(first_line)})")

    # -- names, modes and settings ----------------------------------------------------------------

    @property
    def _ansi_quotes(self) -> bool:
        """Double quotes enclose names: the SQL mode says so, or the dump never set one (``--compact``)."""
        return self._mode is None or not self._mode.isdisjoint(_ANSI_QUOTES_MODES)

    def _name_of(self, raw: bytes, statement: bytes) -> str:
        """The name ``raw`` stands for; a double-quoted one only where double quotes enclose names."""
        if raw[:1] == b'"' and not self._ansi_quotes:
            raise DumpSyntaxError(
                self.info.path,
                f"{_preview(statement)} names {_ident(raw)!r} in double quotes, but the dump's SQL_MODE "
                f"({','.join(sorted(self._mode or ())) or 'empty'}) has no ANSI_QUOTES: there it would be a string",
                self._b.offset,
            )
        return _ident(raw)

    def _settings(self, line: bytes) -> None:
        """``SET`` statements that change how what follows reads: SQL_MODE, NAMES, TIME_ZONE."""
        upper = line.upper()
        if b"SQL_MODE" in upper:
            for m in _SQL_MODE.finditer(line):
                if m.group("save"):
                    self._saved_modes[m.group("save").lower().decode()] = self._mode
                elif m.group("mode") is not None:
                    text = m.group("mode").decode("ascii", "replace")
                    self._mode = frozenset(w.strip().upper() for w in text.split(",") if w.strip())
                    if self.info.sql_mode is None:
                        self.info.sql_mode = text
                elif m.group("restore"):
                    self._mode = self._saved_modes.get(m.group("restore").lower().decode())
        if b"SET NAMES" in upper:
            names = _SET_NAMES.search(line)
            if names:
                charset = names.group(1).decode("ascii", "replace").lower()
                self.info.character_set = charset
                self._codec = codec_for(charset)
        if b"SET TIME_ZONE=" in upper:
            zone_set = _TIME_ZONE.search(line)
            if zone_set and not zone_set.group(1).startswith(b"@"):
                self.info.time_zone = zone_set.group(1).decode("ascii", "replace")
                zone = parse_time_zone(self.info.time_zone)
                self._zone = zone if zone is not None else self.default_time_zone

    def _skip_comment(self, start: int, line: bytes) -> None:
        """A plain ``/* … */`` comment (not ``/*!…*/``, which the server runs): nothing in it is read."""
        close = line.find(b"*/", 2)
        if close >= 0:
            self._b.pos = start + close + 2  # the rest of the line is looked at as a line of its own
            return
        self._b.pos = start + 2
        if self._b.skip_to(b"*/") < 0:
            raise TruncatedDumpError(self.info.path, "the dump ends inside a /* comment */", self._b.offset)
        self._b.pos += 2

    def _unreadable_insert(self, start: int) -> None:
        end = self._b.buf.find(b"\n", start, start + 200)
        head = self._b.buf[start : end if end >= 0 else start + 200]
        raise DumpSyntaxError(
            self.info.path,
            f'cannot read the table name of {_preview(head)} (a name is `…`, "…" with ANSI_QUOTES, or bare)',
            self._b.base + start,
        )

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
                if self.count_rows:
                    self.info.row_counts.setdefault(key, 0)

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
        elif line.startswith((b"-- Table structure", b"-- Dumping data", b"-- Temporary")):
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
            if _CREATE_OTHER.match(line) and not line.upper().startswith(
                (b"CREATE DATABASE", b"CREATE SCHEMA")
            ):
                raise DumpSyntaxError(
                    self.info.path, f"cannot read the table name of {_preview(line)}", self._b.base + start
                )
            return  # CREATE DATABASE, views and the like: single statements we do not need
        quoted_name = m.group(1)[:1] == b'"'
        key = self._key(self._name_of(m.group(1), line))
        self._enter_table(key)
        self._b.pos = start
        if self.request.answers(key) is None:
            self._skip_statement()
            return
        end, _ = self._statement_end()
        start = self._b.pos
        # double quotes in the definitions: names under ANSI_QUOTES (or a dump that never set the mode
        # but names its tables so), strings otherwise
        ansi = self._mode is not None and self._ansi_quotes or (self._mode is None and quoted_name)
        try:
            schema = parse_create_table(self._b.buf[start:end], key[0], ansi_quotes=ansi)
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
        b = self._b
        start = b.pos
        statement_head = b.buf[start : head.end()]
        db = self._name_of(head.group("db"), statement_head) if head.group("db") else self._db
        table = self._name_of(head.group("table"), statement_head)
        key = (db, table)
        if key != self._table:
            self._enter_table(key)
        wanted = self.request.answers(key) is not None
        if not wanted and not self.count_rows:
            self._skip_statement()
            return
        rest = _INSERT_REST.match(b.buf, head.end(), start + _HEAD_WINDOW)
        if rest is None:
            raise DumpSyntaxError(
                self.info.path,
                f"INSERT INTO `{table}`: cannot read its column list or VALUES",
                b.base + start,
            )
        values_offset = rest.end() - start
        end, unterminated = self._statement_end()
        start = b.pos
        statement = b.buf[start:end]
        b.pos = end
        if not wanted:
            try:
                self.info.row_counts[key] = self.info.row_counts.get(key, 0) + count_rows(
                    statement, values_offset
                )
            except TokenizeError as exc:
                self._bad_values(table, start, exc, unterminated)
            return
        if self._mode is not None and "NO_BACKSLASH_ESCAPES" in self._mode:
            raise DumpSyntaxError(
                self.info.path,
                "SQL_MODE NO_BACKSLASH_ESCAPES: strings are not escaped as this reader reads them",
            )
        cols = rest.group("cols")
        plan = self._plan(key, cols, statement_head)
        if plan is None:
            raise UnknownColumnsError(self.info.path, db, table, b.base + start)
        insert = _Insert(
            db, table, statement, values_offset, start, unterminated, head.group("replace") is not None
        )
        yield from self._rows(insert, plan)

    def _rows(self, insert: "_Insert", plan: _Plan) -> Iterator[Tuple[Optional[str], str, Any]]:
        """The rows of one wanted INSERT statement, as ``plan`` builds and filters them."""
        db, table, start = insert.db, insert.table, insert.start
        key = (db, table)
        build = plan.build
        counted = 0
        try:
            if not plan.key and plan.row_end is None:
                for tokens in iter_rows(insert.statement, insert.values_offset):
                    counted += 1
                    try:
                        row = build(tokens)
                    except ValueError as exc:
                        raise self._conversion_error(table, exc, start) from exc
                    yield db, table, row
            else:
                for tokens in iter_rows(insert.statement, insert.values_offset):
                    counted += 1
                    if not self._keep(key, plan, tokens, insert.replace, start):
                        continue
                    try:
                        row = build(tokens)
                    except ValueError as exc:
                        raise self._conversion_error(table, exc, start) from exc
                    yield db, table, row
        except TokenizeError as exc:
            self._bad_values(table, start, exc, insert.unterminated)
        finally:
            if self.count_rows:
                self.info.row_counts[key] = self.info.row_counts.get(key, 0) + counted

    def _conversion_error(self, table: str, exc: ValueError, start: int) -> DumpSyntaxError:
        detail = f"`{table}`: {exc}"
        if self.info.character_set is None and isinstance(exc.__cause__, UnicodeDecodeError):
            detail += (
                " (this dump has no SET NAMES, so its text is taken as UTF-8; mariadb-dump --compatible=… "
                "writes latin1 without saying so: dump again with --default-character-set=utf8mb4)"
            )
        return DumpSyntaxError(self.info.path, detail, self._b.base + start)

    def _bad_values(self, table: str, start: int, exc: TokenizeError, unterminated: bool) -> None:
        if unterminated:
            raise TruncatedDumpError(
                self.info.path, f"the dump ends inside an INSERT into `{table}`", self._b.base + start
            ) from exc
        raise DumpSyntaxError(
            self.info.path, f"INSERT INTO `{table}`: {exc}", self._b.base + start + exc.position
        ) from exc

    def _keep(self, key: TableKey, plan: _Plan, tokens: List[Any], replace: bool, start: int) -> bool:
        """Whether a row is one a restore keeps: the current version, and the first of its key."""
        if plan.row_end is not None:
            index, convert = plan.row_end
            try:
                row_end = convert(tokens[index]) if index < len(tokens) else None
            except ValueError:
                row_end = None
            if row_end is not None and row_end < _CURRENT_ROW_END:
                self.info.history_rows[key] = self.info.history_rows.get(key, 0) + 1
                return False
        if plan.key:
            if max(plan.key) >= len(tokens):
                return True  # the builder reports the short row
            pk = tokens[plan.key[0]] if len(plan.key) == 1 else tuple(tokens[i] for i in plan.key)
            if not self._seen(key).add(pk):
                return self._repeated(key, pk, replace, start)
        return True

    def _seen(self, key: TableKey) -> _SeenKeys:
        seen = self._seen_keys.get(key)
        if seen is None:
            seen = self._seen_keys[key] = _SeenKeys()
        return seen

    def _repeated(self, key: TableKey, pk: Any, replace: bool, start: int) -> bool:
        """A row repeats an earlier row's primary key ``pk``: left out and counted (False), or refused
        inside a REPLACE."""
        if replace:
            raise DumpSyntaxError(
                self.info.path,
                f"REPLACE INTO `{key[1]}` repeats the primary key {pk!r} of an earlier row, which it "
                "would replace: a reader that streams rows cannot take that back",
                self._b.base + start,
            )
        self.info.duplicate_rows[key] = self.info.duplicate_rows.get(key, 0) + 1
        return False

    def _warn_dropped(self) -> None:
        for key, n in self.info.duplicate_rows.items():
            schema = self.schemas.get(key)
            pk = ", ".join(schema.primary_key) if schema else "?"
            log.warning(
                "%s: %d row(s) of `%s` repeat the primary key (%s) of an earlier row: the first is kept, "
                "as a restore keeps it (the later INSERT fails)",
                self.info.path,
                n,
                ".".join(k for k in key if k),
                pk,
            )
        for key, n in self.info.history_rows.items():
            log.info(
                "%s: `%s` is system-versioned and dumped with its history: %d past version(s) left out",
                self.info.path,
                ".".join(k for k in key if k),
                n,
            )

    def _plan(self, key: TableKey, cols: Optional[bytes], head: bytes) -> Optional[_Plan]:
        """The (cached) plan for an INSERT into ``key`` with column list ``cols``; None: columns unknown."""
        cache_key = (key, cols, self._zone, self._codec)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        if self._codec is None:
            raise DumpSyntaxError(
                self.info.path,
                f"SET NAMES {self.info.character_set}: a character set this reader cannot decode",
            )
        schema = (
            self.schemas.get(key) or self.schemas.get((self._db, key[1])) or self.schemas.get((None, key[1]))
        )
        if cols is not None:
            names = [self._name_of(n, head) for n in _COLUMN_NAME.findall(cols)]
            types = {c.name: c.type for c in schema.columns} if schema else {}
            columns = [Column(n, types.get(n, UNKNOWN_TYPE)) for n in names]
        elif schema is not None:
            columns = list(schema.columns)
        else:
            return None
        index = {c.name: i for i, c in enumerate(columns)}
        pk: Tuple[int, ...] = ()
        row_end = None
        if schema is not None:
            if schema.primary_key and all(n in index for n in schema.primary_key):
                pk = tuple(index[n] for n in schema.primary_key)
            if schema.system_versioned and schema.row_end in index:
                row_end = (index[schema.row_end], converter_for("timestamp", self._zone, self._codec))
        plan = self._new_plan(key, columns, pk, row_end)
        self._plans[cache_key] = plan
        return plan

    def _new_plan(
        self,
        key: TableKey,
        columns: List[Column],
        pk: Tuple[int, ...],
        row_end: Optional[Tuple[int, Callable[[Any], Any]]],
    ) -> _Plan:
        """A plan building dict rows of the kept columns (a subclass may build other rows)."""
        answered = self.request.answers(key)
        keep = self.columns.get(answered) if answered is not None else None
        assert self._codec is not None  # checked by _plan
        return _Plan(row_builder(columns, self._zone, keep, self._codec), pk, row_end)


def _preview(line: bytes) -> str:
    text = line[:80].decode("utf-8", "replace").strip()
    return repr(text + ("…" if len(line) > 80 else ""))


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


__all__ = [
    "ALL_TABLES",
    "DumpInfo",
    "DumpReader",
    "Row",
    "TableKey",
    "TableRequest",
    "read_info",
    "read_rows",
]
