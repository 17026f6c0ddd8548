"""openrc files (``admin-openrc.sh``), read without a shell: the ``OS_*`` variables they set.

Horizon's and kolla's openrc files are shell scripts; executing one to read it would run whatever it
holds. This understands the assignments they make and nothing else.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any, Callable, Dict, List, Optional, Set

from ..errors import ConfigError

_ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_READ = re.compile(r"^read\b(?:\s+-[A-Za-z]+)*\s+([A-Za-z_][A-Za-z0-9_]*)\s*$")
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def parse_openrc(
    path: str, environ: Optional[Dict[str, str]] = None, prompt: Callable[[str], str] = getpass.getpass
) -> Dict[str, str]:
    """The variables an openrc file sets, read without a shell.

    Understands ``export NAME=value`` and ``NAME=value``; single quotes (literal), double quotes and bare
    words (``$VAR`` / ``${VAR}`` expanded from earlier lines, else the environment; backslash escapes);
    ``# comments``; and Horizon's ``read -sr OS_PASSWORD_INPUT``, which becomes a password prompt when
    the variable is used. Anything else (``echo``, ``unset``, ``if`` …) is ignored.
    """
    env = dict(os.environ if environ is None else environ)
    values: Dict[str, str] = {}
    prompted: Set[str] = set()
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read openrc file: {exc.strerror or exc}") from exc

    def lookup(name: str) -> str:
        if name in values:
            return values[name]
        if name in prompted:
            values[name] = prompt(f"{name} (from {path}): ")
            return values[name]
        return env.get(name, "")

    def expand(text: str) -> str:
        return _REF.sub(lambda m: lookup(m.group(1) or m.group(2)), text)

    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        read = _READ.match(line)
        if read:
            prompted.add(read.group(1))
            continue
        match = _ASSIGN.match(line)
        if not match:
            continue
        name, rest = match.groups()
        try:
            values[name] = _shell_word(rest, expand)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
    return values


def _shell_word(text: str, expand: Callable[[str], str]) -> str:
    """One shell word (the value of an assignment): quotes, escapes, expansion; stops at a comment."""
    out: List[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated single quote")
            out.append(text[i + 1 : end])
            i = end + 1
        elif char == '"':
            j = i + 1
            part: List[str] = []
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text) and text[j + 1] in '"\\$`':
                    part.append(text[j + 1])
                    j += 2
                    continue
                part.append(text[j])
                j += 1
            if j >= len(text):
                raise ValueError("unterminated double quote")
            out.append(expand("".join(part)))
            i = j + 1
        elif char.isspace() or char == ";" or (char == "#" and not out):
            break
        else:
            j = i
            while j < len(text) and text[j] not in "'\" \t;":
                j += 1
            word = text[i:j]
            out.append(expand(word.replace("\\", "")))
            i = j
    return "".join(out)


#: OS_* variables that belong in the ``auth`` section of a cloud config.
_AUTH_KEYS = {
    "auth_url",
    "username",
    "user_id",
    "password",
    "project_name",
    "project_id",
    "tenant_name",
    "tenant_id",
    "user_domain_name",
    "user_domain_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "token",
    "application_credential_id",
    "application_credential_secret",
    "application_credential_name",
    "system_scope",
    "default_domain_id",
    "default_domain_name",
}


def openrc_to_cloud(variables: Dict[str, str]) -> Dict[str, Any]:
    """``OS_*`` variables → keyword arguments of :func:`openstack.connect` (``auth`` dict + the rest)."""
    auth: Dict[str, Any] = {}
    other: Dict[str, Any] = {}
    for name, value in variables.items():
        if not name.startswith("OS_") or value == "":
            continue
        key = name[3:].lower()
        if key == "tenant_name":
            key = "project_name"
        elif key == "tenant_id":
            key = "project_id"
        elif key == "endpoint_type":
            key = "interface"
        if key in _AUTH_KEYS:
            auth[key] = value
        elif key in ("insecure",):
            other["verify"] = value.lower() not in ("1", "true", "yes")
        elif key not in ("password_input", "cloud"):
            other[key] = value
    if not auth.get("auth_url"):
        raise ConfigError("openrc file sets no OS_AUTH_URL")
    return {"auth": auth, **other}
