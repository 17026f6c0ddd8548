"""Anonymization shared by machine and instance traces (SPEC §4).

Hashed fields go through a :class:`Masker`; the rack goes through :func:`rack_ranks`. The same key must
mask both traces or ``HOST_NAME (PHYSICAL)`` will not join them, so with no key given we use (and on
first use create) a per-user key file rather than a random per-run salt that would be lost.

Host names and node uuids are low-entropy: anyone holding the key can re-identify them by hashing
candidate names. Keep the key private and never publish it beside a trace.

The manifest publishes a fingerprint of the key so that readers can tell whether two traces share one.
It is derived with scrypt (memory-hard, :data:`FINGERPRINT_SCRYPT`) under a fixed public salt: equal keys
still give equal fingerprints across traces, but testing a guessed key against a published fingerprint
costs a scrypt run (a tenth of a second, 32 MiB) instead of one HMAC (microseconds). A short key is still
weak: we warn about keys shorter than :data:`SHORT_KEY` bytes and key files that others can read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .errors import ConfigError, unescape_surrogates
from .events import InstanceEvent, MachineEvent

log = logging.getLogger(__name__)

METHODS = ("hmac-sha256", "sha2-salted", "sha1-raw", "none")
DEFAULT_METHOD = "hmac-sha256"
KEY_ENV = "STARCOMPACTOR_MASKING_KEY"

#: The fingerprint's KDF: scrypt's cost parameters and its fixed, public salt (fixed so that equal keys
#: give equal fingerprints in every trace). Changing any of them changes every fingerprint.
FINGERPRINT_SALT = b"starcompactor key fingerprint v2"
FINGERPRINT_SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}

#: Keys shorter than this many bytes are warned about (the key file made for you has 64).
SHORT_KEY = 16


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/starcompactor/masking.key`` (``~/.config/…`` when XDG_CONFIG_HOME is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "starcompactor" / "masking.key"


@dataclass(frozen=True)
class MaskingKey:
    """A masking key and where it came from (for the log line and the manifest; never the key itself)."""

    secret: bytes
    source: str

    @cached_property
    def fingerprint(self) -> str:
        """A public name of the key, slow to test guesses against: equal fingerprints, equal keys."""
        derived = hashlib.scrypt(
            self.secret, salt=FINGERPRINT_SALT, maxmem=1 << 26, dklen=32, **FINGERPRINT_SCRYPT
        )
        return derived.hex()[:16]


def _read_key_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read masking key file: {exc.strerror or exc}") from exc
    if stat.S_ISREG(mode) and mode & 0o077:
        log.warning(
            "%s: masking key file can be read by other users (mode %s): chmod 600 %s",
            path,
            oct(stat.S_IMODE(mode))[2:].zfill(4),
            path,
        )
    secret = data.rstrip(b"\r\n")
    if not secret:
        raise ConfigError(f"{path}: masking key file is empty")
    return secret


def create_key_file(path: Path) -> bytes:
    """A new random key in ``path`` (mode 0600), or the key already there: never a half-written file.

    The key is written to a temporary file beside ``path`` and linked to ``path`` only when whole; the
    link fails if ``path`` exists, so of two first runs at once one creates the key and the other
    reads it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot create the masking key file: {exc.strerror or exc} "
            f"(give --hashed-masking-key-file or set ${KEY_ENV})"
        ) from exc
    secret = secrets.token_hex(32).encode("ascii")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key_file(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the masking key file: {exc.strerror or exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return secret


def _checked(key: MaskingKey) -> MaskingKey:
    if len(key.secret) < SHORT_KEY:
        log.warning(
            "the masking key from %s is only %d bytes: a short key can be guessed, and with it the "
            "masked names; use a random key of at least %d bytes",
            key.source,
            len(key.secret),
            SHORT_KEY,
        )
    return key


def load_key(
    key_file: Optional[Union[str, Path]] = None,
    *,
    legacy_salt: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    default_path: Optional[Path] = None,
) -> MaskingKey:
    """Find the masking key: key file > ``$STARCOMPACTOR_MASKING_KEY`` > legacy salt > the user's key file.

    The user's key file is created (random, mode 0600) the first time; the caller should say which file
    was used so that a later run can reuse it. Short keys and key files others can read are warned about.
    """
    env = os.environ if environ is None else environ
    if key_file:
        path = Path(key_file)
        return _checked(MaskingKey(_read_key_file(path), f"key file {path}"))
    if env.get(KEY_ENV):
        return _checked(
            MaskingKey(env[KEY_ENV].encode("utf-8", "surrogateescape"), f"environment variable {KEY_ENV}")
        )
    if legacy_salt is not None:
        return _checked(MaskingKey(legacy_salt.encode("utf-8", "surrogateescape"), "--hashed-masking-salt"))
    path = default_path or default_key_path()
    if path.exists():
        return _checked(MaskingKey(_read_key_file(path), f"key file {path}"))
    secret = create_key_file(path)
    return MaskingKey(secret, f"key file {path} (created now)")


def _shown(value: str) -> str:
    """A value written in clear (method ``none``): bytes of it that were not UTF-8 in the input (surrogate
    escapes) become ``\\xNN``, so that every output format can hold it."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return unescape_surrogates(value)
    return value


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
        masked = _shown(value) if hash_bytes is None else hash_bytes(value.encode("utf-8", "surrogateescape"))
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
        return _shown(value) if hash_bytes is None else hash_bytes(value.encode("utf-8", "surrogateescape"))

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
