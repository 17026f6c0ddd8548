"""Anonymization shared by machine and instance traces (SPEC §4).

Hashed fields go through a :class:`Masker`; the rack goes through :func:`rack_ranks`. The same key must
mask both traces or ``HOST_NAME (PHYSICAL)`` will not join them, so with no key given we use (and on
first use create) a per-user key file rather than a random per-run salt that would be lost.

Host names and node uuids are low-entropy: anyone holding the key can re-identify them by hashing
candidate names. Keep the key private and never publish it beside a trace.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .errors import ConfigError
from .events import InstanceEvent, MachineEvent

log = logging.getLogger(__name__)

METHODS = ("hmac-sha256", "sha2-salted", "sha1-raw", "none")
DEFAULT_METHOD = "hmac-sha256"
KEY_ENV = "STARCOMPACTOR_MASKING_KEY"


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/starcompactor/masking.key`` (``~/.config/…`` when XDG_CONFIG_HOME is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "starcompactor" / "masking.key"


@dataclass(frozen=True)
class MaskingKey:
    """A masking key and where it came from (for the log line and the manifest; never the key itself)."""

    secret: bytes
    source: str

    @property
    def fingerprint(self) -> str:
        """A public, non-reversible name of the key: two traces with equal fingerprints share a key."""
        return hmac.new(self.secret, b"starcompactor key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def _read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read masking key file: {exc.strerror or exc}") from exc
    secret = data.rstrip(b"\r\n")
    if not secret:
        raise ConfigError(f"{path}: masking key file is empty")
    return secret


def create_key_file(path: Path) -> bytes:
    """Write a new random key to ``path`` with mode 0600 (refusing to overwrite one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret + b"\n")
    return secret


def load_key(
    key_file: Optional[Union[str, Path]] = None,
    *,
    legacy_salt: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    default_path: Optional[Path] = None,
) -> MaskingKey:
    """Find the masking key: key file > ``$STARCOMPACTOR_MASKING_KEY`` > legacy salt > the user's key file.

    The user's key file is created (random, mode 0600) the first time; the caller should say which file
    was used so that a later run can reuse it.
    """
    env = os.environ if environ is None else environ
    if key_file:
        path = Path(key_file)
        return MaskingKey(_read_key_file(path), f"key file {path}")
    if env.get(KEY_ENV):
        return MaskingKey(env[KEY_ENV].encode("utf-8"), f"environment variable {KEY_ENV}")
    if legacy_salt is not None:
        return MaskingKey(legacy_salt.encode("utf-8"), "--hashed-masking-salt")
    path = default_path or default_key_path()
    if path.exists():
        return MaskingKey(_read_key_file(path), f"key file {path}")
    secret = create_key_file(path)
    return MaskingKey(secret, f"key file {path} (created now)")


class _MaskCache(Dict[Optional[str], str]):
    """value → masked value, computed on first sight and remembered.

    A dict subclass with ``__missing__``: a value seen before costs one subscript, which matters at five
    fields per event and millions of events. Missing and empty values map to "". When ``limit`` values
    are held the cache starts over, so memory stays bounded (~50 MB) however many instances a cloud had.
    """

    def __init__(self, hash_bytes: Optional[Callable[[bytes], str]], limit: int = 1 << 18) -> None:
        super().__init__({None: "", "": ""})
        self._hash_bytes = hash_bytes
        self._limit = limit

    def __missing__(self, value: str) -> str:
        hash_bytes = self._hash_bytes
        masked = value if hash_bytes is None else hash_bytes(value.encode("utf-8", "surrogateescape"))
        if len(self) >= self._limit:
            self.clear()
            self.update({None: "", "": ""})
        self[value] = masked
        return masked


class Masker:
    """Hash one field value with the chosen method; empty and missing values stay empty."""

    def __init__(self, method: str = DEFAULT_METHOD, key: Optional[MaskingKey] = None) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown masking method {method!r} (choose from {', '.join(METHODS)})")
        if method != "none" and key is None:
            raise ConfigError(f"masking method {method} needs a key")
        self.method = method
        self.key = key
        secret = key.secret if key else b""
        hash_bytes: Optional[Callable[[bytes], str]] = None
        if method == "hmac-sha256":
            keyed = hmac.new(secret, digestmod=hashlib.sha256)  # key schedule once, copied per value

            def hash_bytes(value: bytes) -> str:
                digest = keyed.copy()
                digest.update(value)
                return digest.hexdigest()[:32]

        elif method == "sha2-salted":

            def hash_bytes(value: bytes) -> str:
                return hashlib.sha256(secret + value).hexdigest()[:32]

        elif method == "sha1-raw":

            def hash_bytes(value: bytes) -> str:
                return hashlib.sha1(secret + value).hexdigest()  # noqa: S324 - legacy format

        self._hash = hash_bytes
        self._cache = _MaskCache(hash_bytes)

    @property
    def fingerprint(self) -> Optional[str]:
        return self.key.fingerprint if self.key and self.method != "none" else None

    def __call__(self, value: Optional[str]) -> str:
        return self._cache[value]

    def uncached(self, value: Optional[str]) -> str:
        """``self(value)`` without remembering it: for values a caller keeps itself (an instance's
        uuid and name, read once per instance), which would only fill the cache."""
        if not value:
            return ""
        hash_bytes = self._hash
        return value if hash_bytes is None else hash_bytes(value.encode("utf-8", "surrogateescape"))

    @property
    def table(self) -> Dict[Optional[str], str]:
        """The masked value of any value by subscript (``table[value]``, computed on first sight): the
        fastest way to mask millions of fields. Read only."""
        return self._cache


_NATURAL = re.compile(r"(\d+)")


def natural_key(value: str) -> Tuple:
    """Sort key that orders numbers numerically: ``r2 < r10`` (the original sorted ``'10' < '2'``)."""
    parts: List[Tuple[int, Union[int, str]]] = []
    for i, part in enumerate(_NATURAL.split(str(value))):
        if i % 2:
            parts.append((0, int(part)))
        elif part:
            parts.append((1, part))
    return tuple(parts)


def rack_ranks(values: Iterable[object]) -> Dict[object, int]:
    """Map each distinct observed rack value to its rank 0, 1, 2 … in natural order; None is skipped."""
    distinct = {v for v in values if v is not None and v != ""}
    return {v: i for i, v in enumerate(sorted(distinct, key=lambda v: natural_key(str(v))))}


def mask_machine_events(
    events: Iterable[MachineEvent], masker: Masker, rack_key: Optional[str]
) -> List[MachineEvent]:
    """Hash host names and replace the rack by its rank among all racks observed in ``events``."""
    events = list(events)
    ranks = rack_ranks(e.properties.get(rack_key) for e in events) if rack_key else {}
    masked = []
    mask = masker.table
    for event in events:
        properties = event.properties
        if rack_key and rack_key in properties:
            properties = dict(properties)
            properties[rack_key] = ranks.get(properties[rack_key])
        masked.append(MachineEvent(event.time, mask[event.host], event.event, properties))
    return masked


def mask_instance_event(event: InstanceEvent, masker: Masker) -> InstanceEvent:
    """Hash the five identifying fields of an instance event."""
    return event._replace(
        instance_uuid=masker(event.instance_uuid),
        instance_name=masker(event.instance_name),
        user_id=masker(event.user_id),
        project_id=masker(event.project_id),
        host=masker(event.host),
    )


def mask_instance_batch(events: Iterable[InstanceEvent], masker: Masker) -> List[InstanceEvent]:
    """:func:`mask_instance_event` over many events, for the paths of millions.

    One comprehension, one cache subscript per field: a fifth of the cost of a call per field and
    ``_replace`` per event.
    """
    mask = masker.table
    make = tuple.__new__
    cls = InstanceEvent
    return [
        make(cls, (mask[e[0]], e[1], e[2], e[3], e[4], mask[e[5]], mask[e[6]], mask[e[7]], mask[e[8]], e[9]))
        for e in events
    ]
