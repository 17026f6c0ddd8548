"""Exceptions raised by StarCompactor.

Every error the library raises on bad input is a :class:`StarCompactorError`; its ``str()`` is one line
that names the file (or server) and what is wrong, so the command line can print it as it is.
"""

from __future__ import annotations

from typing import Optional


class StarCompactorError(Exception):
    """Base class of every error StarCompactor raises on purpose."""


class ConfigError(StarCompactorError):
    """The configuration file or a command-line value is unusable."""


class MissingDependencyError(StarCompactorError):
    """An optional dependency is needed for the requested feature."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        self.feature = feature
        super().__init__(package, extra, feature)  # args as the signature: it survives pickling

    def __str__(self) -> str:
        return f"{self.feature} needs the '{self.package}' package: pip install 'starcompactor[{self.extra}]'"


class DumpError(StarCompactorError):
    """Something is wrong with one mysqldump archive.

    ``path`` names the archive, ``offset`` (when known) is the position in the *decompressed* stream.
    """

    what = "cannot read dump"

    def __init__(self, path: str, detail: str = "", offset: Optional[int] = None) -> None:
        self.path = path
        self.detail = detail
        self.offset = offset
        super().__init__(path, detail, offset)

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
        self.database = database
        self.table = table
        name = f"{database}.{table}" if database else table
        super().__init__(
            path,
            f"rows of `{name}` come without CREATE TABLE and without a column list "
            "(dump with --complete-insert, or without --no-create-info)",
            offset,
        )
        self.args = (path, database, table, offset)  # so it survives pickling (process pools)


class MissingTableError(DumpError):
    """A table that a snapshot needs is not in the dump."""

    what = "missing table"


class DatabaseError(StarCompactorError):
    """A live database could not be queried (connection lost, access denied, unknown database)."""

    def __init__(self, server: str, database: Optional[str], detail: str) -> None:
        self.server = server
        self.database = database
        self.detail = detail
        super().__init__(server, database, detail)

    def __str__(self) -> str:
        db = f" database {self.database}" if self.database else ""
        return f"{self.server}{db}: {self.detail}"


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
        table = f" table openstack_audit.{self.table}" if self.table else ""
        return f"{self.source}:{table}: {self.detail}"
