"""How to reach a live MySQL/MariaDB server: option files, then explicit values, then a prompt.

Used by every source that reads a live server (Nova's cell databases, the audit log). Settings are read
the way the ``mysql`` client reads them (:mod:`starcompactor.server.mycnf`); the password never appears in
repr, logs or messages.

TLS is asked for as the ``mysql``/``mariadb`` clients ask for it (:func:`tls_mode`): ``ssl-mode``
(DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY), else what the other options imply:
``skip-ssl``/``ssl=0`` → DISABLED, ``ssl-verify-server-cert`` → VERIFY_IDENTITY, a CA (``ssl-ca``,
``ssl-capath``) → VERIFY_CA, ``ssl`` or a client certificate → REQUIRED, nothing → PREFERRED.
"""

from __future__ import annotations

import getpass
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import ConfigError
from .mycnf import default_files, read_option_files

#: Where the client looks for the server's socket when host is ``localhost``: the paths Debian/Ubuntu
#: and RHEL/Fedora builds of the client are compiled with. Never a world-writable directory such as
#: ``/tmp``, where any local user could create the socket and receive the password.
DEFAULT_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock")

#: TLS modes, weakest first (MySQL's ``--ssl-mode`` values).
TLS_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")

#: Seconds to wait for a connection (and the server's greeting), and for any data once connected.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 600.0


@dataclass
class DbSettings:
    """How to reach the server. ``password`` never appears in repr, logs or messages.

    ``ssl`` holds the option files' TLS files (``ca``, ``capath``, ``cert``, ``key``, ``cipher``);
    ``ssl_mode`` one of :data:`TLS_MODES` (None: PREFERRED).
    """

    host: Optional[str] = None
    port: int = 3306
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    socket: Optional[str] = None
    protocol: Optional[str] = None
    ssl: Dict[str, Any] = field(default_factory=dict)
    connect_timeout: float = CONNECT_TIMEOUT
    ssl_mode: Optional[str] = None
    read_timeout: Optional[float] = READ_TIMEOUT

    def address(self) -> Tuple[Optional[str], Optional[str], int]:
        """(socket, host, port) actually used: like the client, ``localhost`` means the local socket."""
        if self.socket:
            return self.socket, None, self.port
        if (self.protocol or "").lower() != "tcp" and self.host in (None, "", "localhost"):
            for candidate in DEFAULT_SOCKETS:
                if os.path.exists(candidate) and not _in_world_writable_directory(candidate):
                    return candidate, None, self.port
        return None, self.host or "localhost", self.port

    @property
    def server(self) -> str:
        """The server as named in messages: ``MySQL server localhost:3306`` or ``… socket /path``."""
        socket, host, port = self.address()
        where = f"socket {socket}" if socket else f"{host}:{port}"
        return f"MySQL server {where}"


def _in_world_writable_directory(path: str) -> bool:
    """True when any directory on the way to ``path`` lets every user create files (``/tmp``)."""
    directory = os.path.dirname(os.path.realpath(path))
    while True:
        try:
            if os.stat(directory).st_mode & stat.S_IWOTH:
                return True
        except OSError:
            return True
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


_TRUE = {"", "1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no"}


def _flag(options: Mapping[str, Optional[str]], name: str) -> Optional[bool]:
    """A boolean option as the client reads it: ``name`` or ``name=1`` on, ``name=0`` off, absent None."""
    if name not in options:
        return None
    value = (options[name] or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"option file: {name} must be 0 or 1, not {options[name]!r}")


def tls_mode(options: Mapping[str, Optional[str]]) -> str:
    """The TLS mode an option file asks for (see the module's docstring)."""
    verify = _flag(options, "ssl-verify-server-cert")
    explicit = (options.get("ssl-mode") or "").strip().upper().replace("-", "_")
    if explicit:
        if explicit not in TLS_MODES:
            raise ConfigError(
                f"option file: ssl-mode {options['ssl-mode']!r} is not one of {', '.join(TLS_MODES)}"
            )
        if verify and explicit == "DISABLED":
            raise ConfigError("option file: ssl-mode=DISABLED contradicts ssl-verify-server-cert")
        if verify and TLS_MODES.index(explicit) < TLS_MODES.index("VERIFY_IDENTITY"):
            return "VERIFY_IDENTITY"  # the file asks for verification too: the stricter reading wins
        return explicit
    if _flag(options, "skip-ssl") or _flag(options, "disable-ssl") or _flag(options, "ssl") is False:
        if verify:
            raise ConfigError("option file: skip-ssl contradicts ssl-verify-server-cert")
        return "DISABLED"
    if verify:
        return "VERIFY_IDENTITY"
    if options.get("ssl-ca") or options.get("ssl-capath"):
        return "VERIFY_CA"
    if _flag(options, "ssl") or options.get("ssl-cert") or options.get("ssl-key"):
        return "REQUIRED"
    return "PREFERRED"


def _seconds(options: Mapping[str, Optional[str]], name: str) -> Optional[float]:
    text = options.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"option file: {name} must be a number of seconds, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"option file: {name} must be more than 0 seconds")
    return value


def resolve_settings(
    *,
    defaults_file: Optional[str] = None,
    defaults_extra_file: Optional[str] = None,
    no_defaults: bool = False,
    host: Optional[str] = None,
    port: Optional[int] = None,
    user: Optional[str] = None,
    socket: Optional[str] = None,
    password: Optional[str] = None,
    prompt: bool = False,
    default_user: Optional[str] = None,
    connect_timeout: Optional[float] = None,
    read_timeout: Optional[float] = None,
) -> DbSettings:
    """Option files, then explicit values (which win), then a password prompt if asked for.

    ``prompt`` (``-p`` with no value) asks on the terminal with :func:`getpass.getpass`, as does a bare
    ``password`` line in an option file; a password is never taken from the command line here.
    """
    if no_defaults:
        options: Dict[str, Optional[str]] = {}
    elif defaults_file:
        path = Path(defaults_file)
        options = read_option_files([path], required=[path])
    else:
        extra = [Path(defaults_extra_file)] if defaults_extra_file else []
        options = read_option_files(default_files(defaults_extra_file), required=extra)

    def opt(name: str) -> Optional[str]:
        value = options.get(name)
        return value if value else None

    port_text = opt("port")
    try:
        file_port = int(port_text) if port_text else None
    except ValueError:
        raise ConfigError(f"option file: port must be a number, not {port_text!r}") from None
    settings = DbSettings(
        host=host or opt("host"),
        port=port or file_port or 3306,
        user=user or opt("user") or default_user or _login_name(),
        socket=socket or opt("socket"),
        protocol=opt("protocol"),
    )
    for name, key in (
        ("ssl-ca", "ca"),
        ("ssl-capath", "capath"),
        ("ssl-cert", "cert"),
        ("ssl-key", "key"),
        ("ssl-cipher", "cipher"),
    ):
        value = opt(name)
        if value:
            settings.ssl[key] = os.path.expanduser(value) if key != "cipher" else value
    settings.ssl_mode = tls_mode(options)
    for seconds, flag in ((connect_timeout, "--connect-timeout"), (read_timeout, "--read-timeout")):
        if seconds is not None and seconds <= 0:
            raise ConfigError(f"{flag} must be more than 0 seconds")
    settings.connect_timeout = connect_timeout or _seconds(options, "connect-timeout") or CONNECT_TIMEOUT
    settings.read_timeout = read_timeout or READ_TIMEOUT
    if password is not None:
        settings.password = password
    elif prompt or ("password" in options and options["password"] is None):
        settings.password = getpass.getpass(f"Password for {settings.user} at {settings.server}: ")
    else:
        settings.password = options.get("password") or ""
    return settings


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "root"
