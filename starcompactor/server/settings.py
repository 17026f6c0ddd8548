"""How to reach a live MySQL/MariaDB server: option files, then explicit values, then a prompt.

Used by every source that reads a live server (Nova's cell databases, the audit log). Settings are read
the way the ``mysql`` client reads them (:mod:`starcompactor.server.mycnf`); the password never appears in
repr, logs or messages.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import ConfigError
from .mycnf import default_files, read_option_files

#: Where the client looks for the server's socket when host is ``localhost`` (Debian/RHEL/macOS builds).
DEFAULT_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock")  # noqa: S108 - the client's own default


@dataclass
class DbSettings:
    """How to reach the server. ``password`` never appears in repr, logs or messages."""

    host: Optional[str] = None
    port: int = 3306
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    socket: Optional[str] = None
    protocol: Optional[str] = None
    ssl: Dict[str, Any] = field(default_factory=dict)
    connect_timeout: int = 10

    def address(self) -> Tuple[Optional[str], Optional[str], int]:
        """(socket, host, port) actually used: like the client, ``localhost`` means the local socket."""
        if self.socket:
            return self.socket, None, self.port
        if (self.protocol or "").lower() != "tcp" and self.host in (None, "", "localhost"):
            for candidate in DEFAULT_SOCKETS:
                if os.path.exists(candidate):
                    return candidate, None, self.port
        return None, self.host or "localhost", self.port

    @property
    def server(self) -> str:
        """The server as named in messages: ``MySQL server localhost:3306`` or ``… socket /path``."""
        socket, host, port = self.address()
        where = f"socket {socket}" if socket else f"{host}:{port}"
        return f"MySQL server {where}"


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
    for name, key in (("ssl-ca", "ca"), ("ssl-cert", "cert"), ("ssl-key", "key")):
        if opt(name):
            settings.ssl[key] = opt(name)
    if "ssl-verify-server-cert" in options and settings.ssl:
        settings.ssl["check_hostname"] = True
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
