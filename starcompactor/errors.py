"""Every exception StarCompactor raises, in one place.

Every error the library raises on bad input is a :class:`StarCompactorError`; its ``str()`` is one line
that names the file (or server) and what is wrong, so the command line can print it as it is.

Errors cross process boundaries (process pools, Dask), so they pickle by one rule: ``self.args`` holds
exactly the constructor's arguments (each ``__init__`` passes them on to ``super().__init__``), and
:meth:`StarCompactorError.__reduce__` rebuilds the error from them.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple


class StarCompactorError(Exception):
    """Base class of every error StarCompactor raises on purpose."""

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), tuple(self.args))


class ConfigError(StarCompactorError):
    """The configuration file or a command-line value is unusable."""


class OutputError(StarCompactorError):
    """A trace or its manifest cannot be written (missing directory, disk full, refused name …)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, detail)
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


class MissingDependencyError(StarCompactorError):
    """An optional dependency is needed for the requested feature."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(package, extra, feature)
        self.package = package
        self.extra = extra
        self.feature = feature

    def __str__(self) -> str:
        return f"{self.feature} needs the '{self.package}' package: pip install 'starcompactor[{self.extra}]'"


class TraceReadError(StarCompactorError):
    """A trace (or its manifest) cannot be read back: missing, not a trace, or a bad row."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, detail)
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


class NoBackupsError(StarCompactorError):
    """The backup directory holds no file the selection accepts."""


# -- dumps --------------------------------------------------------------------------------------------


class DumpError(StarCompactorError):
    """Something is wrong with one mysqldump archive.

    ``path`` names the archive, ``offset`` (when known) is the position in the *decompressed* stream.
    """

    what = "cannot read dump"

    def __init__(self, path: str, detail: str = "", offset: Optional[int] = None) -> None:
        super().__init__(path, detail, offset)
        self.path = path
        self.detail = detail
        self.offset = offset

    def __str__(self) -> str:
        where = f" (at decompressed byte {self.offset})" if self.offset is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.path}: {self.what}{detail}{where}"


class UnknownCompressionError(DumpError):
    what = "unknown compression"


class CorruptArchiveError(DumpError):
    what = "corrupt archive"


class TruncatedDumpError(DumpError):
    what = "truncated dump"


class NotADumpError(DumpError):
    what = "not a mysqldump file"


class DumpSyntaxError(DumpError):
    what = "cannot parse dump"


class LineTooLongError(DumpError):
    what = "statement longer than the size bound"


class UnknownColumnsError(DumpError):
    """Rows of a requested table were found, but neither a CREATE TABLE nor a column list names them."""

    what = "columns unknown"

    def __init__(self, path: str, database: Optional[str], table: str, offset: Optional[int] = None) -> None:
        name = f"{database}.{table}" if database else table
        super().__init__(
            path,
            f"rows of `{name}` come without CREATE TABLE and without a column list "
            "(dump with --complete-insert, or without --no-create-info)",
            offset,
        )
        self.args = (path, database, table, offset)
        self.database = database
        self.table = table


class MissingTableError(DumpError):
    """A table that a snapshot needs is not in the dump."""

    what = "missing table"


class BadDumpError(DumpError):
    """A dump failed in a worker: carries the worker's one-line message (and the error's class name)."""

    def __init__(self, path: str, message: str, kind: str = "DumpError") -> None:
        super().__init__(path, message)
        self.args = (path, message, kind)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        return self.message


class SnapshotTimeError(StarCompactorError):
    """Two dumps have the same snapshot time but different hosts: neither can be ordered before the other."""

    def __init__(self, first: str, second: str, time: str) -> None:
        super().__init__(first, second, time)
        self.first = first
        self.second = second
        self.time = time

    def __str__(self) -> str:
        return (
            f"{self.first} and {self.second} have the same snapshot time ({self.time}) but different hosts: "
            "remove one, or give them times in their names"
        )


class TokenizeError(ValueError):
    """A VALUES list is malformed at ``position`` (an offset into the statement).

    Internal to the reader, which turns it into a :class:`DumpSyntaxError` naming the file.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} at statement byte {self.position}"


# -- live sources -------------------------------------------------------------------------------------


class DatabaseError(StarCompactorError):
    """A live database could not be queried (connection lost, access denied, unknown database)."""

    def __init__(self, server: str, database: Optional[str], detail: str) -> None:
        super().__init__(server, database, detail)
        self.server = server
        self.database = database
        self.detail = detail

    def __str__(self) -> str:
        db = f" database {self.database}" if self.database else ""
        return f"{self.server}{db}: {self.detail}"


class ProtocolError(Exception):
    """The bytes on the wire are not a row packet (sequence or framing): the connection is unusable.

    Internal to bulk row reading, which reports it as a :class:`DatabaseError`.
    """


class ApiError(StarCompactorError):
    """The OpenStack API could not be used."""


class AuditLogError(StarCompactorError):
    """The ``openstack_audit`` log cannot be read as it is: a table with the wrong columns, a file that is
    not Parquet, a ``data`` value that is not JSON. ``source`` names the dump, export file or server."""

    def __init__(self, source: str, table: Optional[str], detail: str) -> None:
        self.source = source
        self.table = table
        self.detail = detail
        super().__init__(source, table, detail)

    def __str__(self) -> str:
        table = f" table openstack_audit.{self.table}:" if self.table else ""
        return f"{self.source}:{table} {self.detail}"


# -- what may be shown ----------------------------------------------------------------------------------

#: ``scheme://userinfo@`` in a URI: the part that may hold an access key and its secret. As smart_open
#: reads ``s3://ID:SECRET@bucket/key``, the secret runs to the first ``@`` and may hold ``/``.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^/@\s:'\"]*:[^@\s'\"]*|[^/@\s'\"]*)@")

#: Characters that would break a message into lines or steer a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def redact(text: str) -> str:
    """``text`` with the credentials of every URI in it replaced: ``s3://KEY:SECRET@b/k`` → ``s3://***@b/k``."""
    return _USERINFO.sub(r"\1***@", text)


def _escape_control(match: "re.Match[str]") -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    """``text`` made safe to print as one line of a message: credentials in URIs redacted, control
    characters escaped (a file name holding a newline cannot forge another line), bytes that are not
    UTF-8 (surrogate escapes from file names) shown as ``\\xNN``."""
    text = _CONTROL.sub(_escape_control, redact(text))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = unescape_surrogates(text)
    return text


def unescape_surrogates(text: str) -> str:
    """Surrogate escapes (the bytes of a name that were not UTF-8) as ``\\xNN``: valid UTF-8 text."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name made
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
