"""What a dump yielded, kept on disk under the dump's identity, so that a re-run reads only new dumps.

A dump's **identity** is its size, its modification time or ETag, and a hash of its first and last MiB
(:func:`dump_identity`): a nightly dump is written once and never changed, so these tell a changed or
replaced file without reading it whole (a gigabyte of gzip costs seconds; two MiB, milliseconds).

A **cache entry** is one file under ``DIR/<kind>/``, named by a hash of everything its content depends
on: the dump's identity, the settings that change what is read (instance type, databases, regexes …)
and the code that produces it (:func:`code_version`: a hash of those modules' source, so a changed rule
never meets an old entry). Entries are JSON (orjson), never pickle: a cache directory may be shared, and
loading one must not run anything. Each file starts with a header naming its format and key, and ends
with a trailer holding the number of records and a CRC of everything before it; a file that is
truncated, corrupt or written for another key is ignored (said once) and rebuilt. Files are written to a
temporary name and renamed into place, so two runs at once each see a whole entry or none.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import orjson

from ..errors import ConfigError
from .stream import open_raw

log = logging.getLogger(__name__)

#: Bytes hashed at each end of a dump for its identity.
EDGE_BYTES = 1 << 20
#: Version of the entry files' layout (header, batches, trailer).
FILE_FORMAT = 1
_MAGIC = "starcompactor-cache"


def dump_identity(
    uri: str,
    size: Optional[int],
    stamp: Optional[str],
    *,
    transport_params: Optional[Dict[str, Any]] = None,
) -> str:
    """The identity of the dump at ``uri``: a hex digest of its size, ``stamp`` (an ETag, else the
    modification time) and its first and last :data:`EDGE_BYTES` (never the whole file)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(orjson.dumps([size, stamp]))
    with open_raw(uri, transport_params) as raw:
        head = _read_exactly(raw, EDGE_BYTES)
        digest.update(head)
        if size is not None and size > 2 * EDGE_BYTES:
            raw.seek(size - EDGE_BYTES)
            digest.update(_read_exactly(raw, EDGE_BYTES))
        elif len(head) == EDGE_BYTES:
            digest.update(raw.read())
    return digest.hexdigest()


def _read_exactly(raw: IO[bytes], n: int) -> bytes:
    parts = []
    while n > 0:
        piece = raw.read(n)
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b"".join(parts)


def code_version(*modules: Any) -> str:
    """A hash of the source of ``modules``: part of every key, so an entry made by other code is unused."""
    digest = hashlib.blake2b(digest_size=12)
    for module in modules:
        path = getattr(module, "__file__", None)
        if path:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def entry_key(*parts: Any) -> str:
    """The file name of an entry from the JSON-able ``parts`` its content depends on."""
    return hashlib.sha256(orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)).hexdigest()


class CacheMiss(Exception):
    """An entry that is absent or unusable (internal: the caller reads the dump instead)."""


class DumpCache:
    """A directory of entries (see the module's doc). ``kind`` separates what different commands store."""

    def __init__(self, directory: str) -> None:
        if "://" in directory:
            raise ConfigError(f"--cache {directory}: the cache must be a local directory")
        self.directory = Path(directory)
        try:
            # what is stored is not masked (host and instance names as the dumps hold them): private
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"--cache {directory}: cannot create the directory: {exc.strerror or exc}"
            ) from exc
        self.hits = 0
        self.misses = 0
        self._warned: Set[str] = set()
        self._written: Set[Tuple[str, str]] = set()  #: entries this run wrote (reading them is no hit)

    def path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.json"

    # -- whole values -------------------------------------------------------------------------------

    def get(self, kind: str, key: str, *, count: bool = True) -> Optional[Any]:
        """The value stored under ``key``, or None (absent, or unusable: then said once, and rebuilt).
        ``count=False``: the caller decides whether it was of use, and says so with :meth:`tally`."""
        try:
            records = list(self.records(kind, key, count=count))
        except CacheMiss:
            return None
        return records[0] if len(records) == 1 else None

    def tally(self, hit: bool) -> None:
        """Count one lookup made with ``count=False``."""
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def put(self, kind: str, key: str, value: Any) -> None:
        self.write_records(kind, key, [[value]])

    # -- streams of records -------------------------------------------------------------------------

    def records(self, kind: str, key: str, *, count: bool = True) -> Iterator[Any]:
        """The records of an entry, checked whole before the first is handed out (raises
        :class:`CacheMiss` when the entry is absent or unusable). ``count=False``: reading back what
        this run wrote (not a hit)."""
        path = self.path(kind, key)
        count = count and (kind, key) not in self._written
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except FileNotFoundError:
            self.misses += count
            raise CacheMiss(key) from None
        except OSError as exc:
            self._unusable(path, f"cannot open it: {exc.strerror or exc}")
            raise CacheMiss(key) from exc
        try:
            records = self._check(handle, path, key)
        except CacheMiss:
            handle.close()
            self.misses += count
            raise
        self.hits += count
        return self._iterate(handle, path, records)

    def _check(self, handle: IO[bytes], path: Path, key: str) -> int:
        """Verify header, trailer and CRC; returns the number of records."""
        header = handle.readline()
        try:
            head = orjson.loads(header)
            if head != {"format": _MAGIC, "version": FILE_FORMAT, "key": key}:
                raise ValueError("written for another key or format")
        except ValueError as exc:
            self._unusable(path, f"bad header ({exc})")
            raise CacheMiss(key) from exc
        crc = zlib.crc32(header)
        size = os.fstat(handle.fileno()).st_size
        remaining = size - len(header)
        trailer_at = None
        while True:
            line = handle.readline()
            if not line:
                break
            if line.startswith(b'{"end":'):
                trailer_at = line
                break
            crc = zlib.crc32(line, crc)
            remaining -= len(line)
        try:
            if trailer_at is None or handle.read(1):
                raise ValueError("no trailer: the file is truncated")
            trailer = orjson.loads(trailer_at)
            if trailer.get("crc") != crc:
                raise ValueError("its checksum does not match")
            count = int(trailer["end"])
        except (ValueError, KeyError, TypeError) as exc:
            self._unusable(path, str(exc))
            raise CacheMiss(key) from exc
        handle.seek(len(header))
        return count

    def _iterate(self, handle: IO[bytes], path: Path, count: int) -> Iterator[Any]:
        with handle:
            seen = 0
            for line in handle:
                if line.startswith(b'{"end":'):
                    break
                batch = orjson.loads(line)
                seen += len(batch)
                yield from batch
            if seen != count:  # pragma: no cover - the CRC matched, so only a changed file gets here
                raise ConfigError(f"{path}: cache entry changed while being read")

    def write_records(self, kind: str, key: str, batches: Iterable[Sequence[Any]]) -> int:
        """Store the records of ``batches`` under ``key`` (atomically); returns how many."""
        path = self.path(kind, key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as out:
                count = write_entry(out, key, batches)
            os.replace(temp, path)
            self._written.add((kind, key))
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        return count

    def _unusable(self, path: Path, why: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            log.warning("cache entry %s is unusable (%s): ignored, rebuilt", path, why)


def write_entry(out: IO[bytes], key: str, batches: Iterable[Sequence[Any]]) -> int:
    """Write an entry (header, one JSON array per batch, trailer) to ``out``; returns the record count."""
    header = orjson.dumps({"format": _MAGIC, "version": FILE_FORMAT, "key": key}) + b"\n"
    out.write(header)
    crc = zlib.crc32(header)
    count = 0
    for batch in batches:
        if not batch:
            continue
        line = orjson.dumps(list(batch) if not isinstance(batch, list) else batch) + b"\n"
        out.write(line)
        crc = zlib.crc32(line, crc)
        count += len(batch)
    out.write(orjson.dumps({"end": count, "crc": crc}) + b"\n")
    return count


def read_entry(handle: IO[bytes]) -> Iterator[List[Any]]:
    """The batches of an entry written by :func:`write_entry` to a private file (no checks)."""
    handle.readline()
    for line in handle:
        if line.startswith(b'{"end":'):
            return
        yield orjson.loads(line)


__all__ = [
    "CacheMiss",
    "DumpCache",
    "code_version",
    "dump_identity",
    "entry_key",
    "read_entry",
    "write_entry",
]
