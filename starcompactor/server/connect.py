"""Connections to a live server with PyMySQL, and PyMySQL's errors as one-line :class:`DatabaseError`s.

PyMySQL is imported when a connection is made, not with this module.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from ..errors import ConfigError, DatabaseError
from ..times import datetime_or_none
from .settings import DbSettings

log = logging.getLogger(__name__)


def _conversions() -> Dict[Any, Any]:
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import conversions

    conv = dict(conversions)
    conv[FIELD_TYPE.DATETIME] = datetime_or_none
    conv[FIELD_TYPE.TIMESTAMP] = datetime_or_none
    return conv


def database_error(settings: DbSettings, database: Optional[str], exc: BaseException) -> DatabaseError:
    """One line for any PyMySQL error: ``MySQL server …: database nova: Access denied … (MySQL error 1045)``."""
    args: Tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        detail = f"{str(args[1]).splitlines()[0] if args[1] else type(exc).__name__} (MySQL error {args[0]})"
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseError(settings.server, database, detail)


def connect(settings: DbSettings, database: str, *, unbuffered: bool = True) -> Any:
    """A PyMySQL connection to ``database`` with a server-side cursor class; errors → DatabaseError."""
    import pymysql
    import pymysql.cursors

    socket, host, port = settings.address()
    kwargs: Dict[str, Any] = {
        "user": settings.user,
        "password": settings.password or "",
        "database": database,
        "charset": "utf8mb4",
        "conv": _conversions(),
        "connect_timeout": settings.connect_timeout,
        "autocommit": True,
        "cursorclass": pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor,
    }
    if socket:
        kwargs["unix_socket"] = socket
    else:
        kwargs["host"] = host
        kwargs["port"] = port
    if settings.ssl:
        kwargs["ssl"] = dict(settings.ssl)
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc) from None


def quote_identifier(name: str) -> str:
    """A MySQL identifier in backquotes (a backquote inside is doubled)."""
    if not name or "\x00" in name:
        raise ConfigError(f"bad database name {name!r}")
    return "`" + name.replace("`", "``") + "`"
