"""Connections to a live server with PyMySQL, and PyMySQL's errors as one-line :class:`DatabaseError`s.

Two rules a trusted client (the ``mariadb`` client, libpq with ``sslmode``) keeps and PyMySQL alone does
not:

* **TLS as the option file says** (:func:`tls_context`): REQUIRED and stricter modes fail with one line,
  before the password or any query is sent, when the server does not offer TLS; VERIFY_CA and
  VERIFY_IDENTITY check the server's certificate (and name).
* **The password never leaves in a form the peer can read** unless the peer is known: a server may ask
  for ``mysql_clear_password`` or ``dialog`` (the password itself), ``sha256_password`` or the full
  ``caching_sha2_password`` exchange (the password, or the password encrypted with a key the server
  chose). Those are answered only over TLS with a verified certificate, or over a Unix socket whose
  server runs as root, the ``mysql`` user or the user running this program (asked of the kernel:
  ``SO_PEERCRED``); otherwise the connection fails with one line. Challenge-response exchanges
  (``mysql_native_password``, the fast ``caching_sha2_password`` path, ``client_ed25519``) are unchanged.

PyMySQL is imported when a connection is made, not with this module.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket as socket_module
import ssl
import struct
from typing import Any, Dict, Optional, Set, Tuple

from ..errors import ConfigError, DatabaseError
from ..times import datetime_or_none
from .settings import DbSettings

log = logging.getLogger(__name__)

#: PyMySQL's client error for an authentication plugin that failed (CR_AUTH_PLUGIN_ERR).
_CR_AUTH_PLUGIN_ERR = 2061

#: What to do about it, in every refusal.
_TRUST_HINT = (
    "use TLS with a verified certificate (ssl-ca, ssl-mode=VERIFY_IDENTITY in the option file) "
    "or the server's own Unix socket"
)


def _conversions() -> Dict[Any, Any]:
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import conversions

    conv = dict(conversions)
    conv[FIELD_TYPE.DATETIME] = datetime_or_none
    conv[FIELD_TYPE.TIMESTAMP] = datetime_or_none
    return conv


def database_error(
    settings: DbSettings, database: Optional[str], exc: BaseException, *, connecting: bool = False
) -> DatabaseError:
    """One line for any PyMySQL error: ``MySQL server …: database nova: Access denied … (MySQL error 1045)``.

    ``connecting``: the error came before the login was done (a timeout then is the connect timeout's).
    """
    args: Tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        detail = f"{str(args[1]).splitlines()[0] if args[1] else type(exc).__name__} (MySQL error {args[0]})"
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "timed out" in detail:
        detail += (
            f": no answer within {settings.connect_timeout:g} s (--connect-timeout)"
            if connecting
            else f": the server sent nothing for {settings.read_timeout:g} s (--read-timeout)"
        )
    return DatabaseError(settings.server, database, detail)


def tls_context(settings: DbSettings) -> Optional[ssl.SSLContext]:
    """The TLS context of REQUIRED, VERIFY_CA and VERIFY_IDENTITY (None for DISABLED and PREFERRED)."""
    mode = settings.ssl_mode or "PREFERRED"
    if mode in ("DISABLED", "PREFERRED"):
        return None
    files = settings.ssl
    try:
        context = ssl.create_default_context(cafile=files.get("ca"), capath=files.get("capath"))
        if files.get("cert"):
            context.load_cert_chain(files["cert"], keyfile=files.get("key"))
        if files.get("cipher"):
            context.set_ciphers(files["cipher"])
    except (OSError, ssl.SSLError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__
        names = ", ".join(f"ssl-{k} {v}" for k, v in files.items() if k != "cipher")
        raise ConfigError(
            f"option file: cannot use the TLS files ({names or 'system defaults'}): {detail}"
        ) from None
    # certificates that MySQL generates for itself lack extensions a strict check wants (as PyMySQL does)
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    context.check_hostname = mode == "VERIFY_IDENTITY"
    context.verify_mode = ssl.CERT_NONE if mode == "REQUIRED" else ssl.CERT_REQUIRED
    return context


def _trusted_uids() -> Set[int]:
    uids = {0, os.getuid()}
    try:
        uids.add(pwd.getpwnam("mysql").pw_uid)
    except KeyError:
        pass
    return uids


def _peer_uid(sock: Any, path: Optional[str]) -> Optional[int]:
    """The user id of the process serving a Unix socket: the kernel's answer, else the socket's owner."""
    peercred = getattr(socket_module, "SO_PEERCRED", None)
    if peercred is not None:
        try:
            raw = sock.getsockopt(socket_module.SOL_SOCKET, peercred, struct.calcsize("3i"))
            return int(struct.unpack("3i", raw)[1])
        except (OSError, AttributeError, struct.error):
            pass
    if path:
        try:
            return os.stat(path).st_uid
        except OSError:
            return None
    return None


def _peer_is_known(connection: Any) -> bool:
    """TLS with a verified certificate, or a Unix socket served by a trusted user."""
    sock = getattr(connection, "_sock", None)
    if isinstance(sock, ssl.SSLSocket):
        return sock.context.verify_mode == ssl.CERT_REQUIRED
    if getattr(connection, "unix_socket", None):
        return _peer_uid(sock, connection.unix_socket) in _trusted_uids()
    return False


def _refuse(plugin: str) -> Exception:
    import pymysql.err

    return pymysql.err.OperationalError(
        _CR_AUTH_PLUGIN_ERR,
        f"refused to send the password: the server asked for it by {plugin}, readable by the server "
        f"and anyone in between, and the server is not verified; {_TRUST_HINT}",
    )


class _RevealsPassword:
    """Answers an exchange that hands the password over (clear text, or encrypted with a key the server
    chose) only to a known peer; PyMySQL's own code answers it then."""

    plugin = b""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def authenticate(self, packet: Any) -> Any:
        conn = self.connection
        if conn.password and not _peer_is_known(conn):
            raise _refuse(self.plugin.decode())
        return conn._process_auth(self.plugin, packet, None)


class _ClearPassword(_RevealsPassword):
    plugin = b"mysql_clear_password"


class _Dialog(_RevealsPassword):
    plugin = b"dialog"


class _Sha256Password(_RevealsPassword):
    plugin = b"sha256_password"


class _CachingSha2Password(_RevealsPassword):
    """The fast path (a scramble) for anyone; the full exchange (the password itself) for a known peer."""

    plugin = b"caching_sha2_password"

    def authenticate(self, packet: Any) -> Any:
        from pymysql import _auth

        conn = self.connection
        if not conn.password or _peer_is_known(conn):
            return conn._process_auth(self.plugin, packet, None)
        if packet.is_auth_switch_request():
            salt = packet.read_all()
            conn.salt = salt[:-1] if salt.endswith(b"\0") else salt
            conn.write_packet(_auth.scramble_caching_sha2(conn.password, conn.salt))
            packet = conn._read_packet()
            packet.check_error()
        data = bytes(packet._data)
        if packet.is_extra_auth_data() and len(data) >= 2 and data[1] == 4:  # 4: full authentication
            raise _refuse("caching_sha2_password (full authentication)")
        return conn._process_auth(self.plugin, packet, None)


_GUARDS = {
    "mysql_clear_password": _ClearPassword,
    "dialog": _Dialog,
    "sha256_password": _Sha256Password,
    "caching_sha2_password": _CachingSha2Password,
}


def _connection_class() -> Any:
    import pymysql.connections

    class Connection(pymysql.connections.Connection):
        """PyMySQL's connection, except that a greeting naming ``sha256_password`` is not answered with
        the password at once (PyMySQL does so over any TLS): the server must ask by an auth switch,
        which the guards answer."""

        def _get_server_information(self) -> None:
            super()._get_server_information()
            if getattr(self, "_auth_plugin_name", "") == "sha256_password" and not _verified_tls(self):
                self._auth_plugin_name = "mysql_native_password"

    return Connection


def _verified_tls(connection: Any) -> bool:
    context = getattr(connection, "ctx", None)
    return (
        bool(getattr(connection, "_ssl_required", False))
        and getattr(context, "verify_mode", None) == ssl.CERT_REQUIRED
    )


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
        # the greeting and login are bounded by the connect timeout; the read timeout follows
        "read_timeout": settings.connect_timeout,
        "write_timeout": settings.read_timeout,
        "autocommit": True,
        "cursorclass": pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor,
        "auth_plugin_map": dict(_GUARDS),
    }
    if socket:
        kwargs["unix_socket"] = socket
    else:
        kwargs["host"] = host
        kwargs["port"] = port
    context = tls_context(settings)
    if context is not None:
        kwargs["ssl"] = context
    elif settings.ssl_mode == "DISABLED":
        kwargs["ssl_disabled"] = True
    try:
        connection = _connection_class()(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise database_error(settings, database, exc, connecting=True) from None
    connection._read_timeout = settings.read_timeout  # PyMySQL applies it to the socket on the next read
    return connection


def quote_identifier(name: str) -> str:
    """A MySQL identifier in backquotes (a backquote inside is doubled)."""
    if not name or "\x00" in name:
        raise ConfigError(f"bad database name {name!r}")
    return "`" + name.replace("`", "``") + "`"
