"""MySQL option files (``~/.my.cnf``) read the way the ``mysql`` client reads them.

Why not :mod:`configparser` (as PyMySQL's ``read_default_file`` does): option files are not INI files.
A value may be quoted (``password = "a#b"``), ``#`` outside quotes starts a comment anywhere on a line,
backslash escapes (``\\n``, ``\\s`` …) are decoded, ``-`` and ``_`` in option names are the same,
``loose-`` prefixes are dropped, a name without ``=`` is a boolean, and ``!include FILE`` /
``!includedir DIR`` pull in other files. Later values override earlier ones across all the groups read.

The client reads, in order: ``/etc/my.cnf``, ``/etc/mysql/my.cnf``, ``$MYSQL_HOME/my.cnf``, the
``--defaults-extra-file``, ``~/.my.cnf`` — or only the ``--defaults-file``. World-writable files are
ignored (as the client does), with a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from ..errors import ConfigError

log = logging.getLogger(__name__)

#: Groups the ``mysql``/``mariadb`` client reads (MariaDB's client adds the last three).
CLIENT_GROUPS = ("client", "mysql", "client-server", "client-mariadb", "mariadb-client")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}

#: Include depth limit, so that a file including itself ends with an error, not a recursion crash.
_MAX_DEPTH = 10


def default_files(extra_file: Optional[str] = None, environ: Optional[Dict[str, str]] = None) -> List[Path]:
    """The files the client reads when no ``--defaults-file`` is given (missing ones are skipped)."""
    env = os.environ if environ is None else environ
    files = [Path("/etc/my.cnf"), Path("/etc/mysql/my.cnf")]
    if env.get("MYSQL_HOME"):
        files.append(Path(env["MYSQL_HOME"]) / "my.cnf")
    if extra_file:
        files.append(Path(extra_file))
    files.append(Path(os.path.expanduser("~/.my.cnf")))
    return files


def _strip_comment(line: str) -> str:
    """Cut the line at the first ``#`` outside quotes (the client's rule, escapes honoured in quotes)."""
    quote = ""
    escape = False
    for i, char in enumerate(line):
        if char in "'\"" and not escape:
            if not quote:
                quote = char
            elif quote == char:
                quote = ""
        if not quote and char == "#":
            return line[:i]
        escape = bool(quote) and char == "\\" and not escape
    return line


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    if "\\" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def normalize_name(name: str) -> str:
    """``skip_ssl`` == ``skip-ssl``; ``loose-`` only makes unknown options harmless, so drop it."""
    name = name.strip().lower().replace("_", "-")
    if name.startswith("loose-"):
        name = name[len("loose-") :]
    return name


def read_option_files(
    files: Iterable[Path], groups: Sequence[str] = CLIENT_GROUPS, *, required: Sequence[Path] = ()
) -> Dict[str, Optional[str]]:
    """Options of ``groups`` from ``files`` in order (later wins). Files in ``required`` must exist.

    A name given without ``=`` maps to None (for ``password`` the client then prompts).
    """
    wanted = {g.lower() for g in groups}
    options: Dict[str, Optional[str]] = {}
    required_set = {str(p) for p in required}
    for path in files:
        if not path.exists():
            if str(path) in required_set:
                raise ConfigError(f"{path}: option file does not exist")
            continue
        _read_file(path, wanted, options, depth=0)
    return options


def _usable(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if mode & stat.S_IWOTH:
        log.warning("%s: world-writable option file ignored (as the mysql client does)", path)
        return False
    return True


def _read_file(path: Path, wanted: set, options: Dict[str, Optional[str]], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ConfigError(f"{path}: option files include each other more than {_MAX_DEPTH} deep")
    if not _usable(path):
        return
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read option file: {exc.strerror or exc}") from exc
    group: Optional[str] = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "!":
            directive, _, argument = line[1:].partition(" ")
            argument = _strip_comment(argument).strip()
            target = Path(os.path.expanduser(argument))
            if not target.is_absolute():
                target = path.parent / target
            if directive == "include":
                if target.exists():
                    _read_file(target, wanted, options, depth + 1)
                else:
                    log.warning("%s:%d: included file %s does not exist", path, number, target)
            elif directive == "includedir":
                if target.is_dir():
                    for child in sorted(target.iterdir()):
                        if child.suffix == ".cnf" and child.is_file():
                            _read_file(child, wanted, options, depth + 1)
            else:
                raise ConfigError(f"{path}:{number}: unknown directive !{directive}")
            continue
        if line[0] == "[":
            if not line.rstrip().endswith("]"):
                cut = _strip_comment(line).strip()
                if not cut.endswith("]"):
                    raise ConfigError(f"{path}:{number}: bad group header {line!r}")
                line = cut
            group = line.strip()[1:-1].strip().lower()
            continue
        if group is None:
            raise ConfigError(f"{path}:{number}: option outside of any [group]")
        if group not in wanted:
            continue
        line = _strip_comment(line)
        name, sep, value = line.partition("=")
        name = normalize_name(name)
        if not name:
            continue
        options[name] = _unquote(value) if sep else None
