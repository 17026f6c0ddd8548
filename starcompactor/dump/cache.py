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
from contextlib import contextmanager
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
        return _records(self.batch_lines(kind, key, count=count))

    def batch_lines(self, kind: str, key: str, *, count: bool = True, check: bool = True) -> Iterator[bytes]:
        """The lines of an entry (one JSON array of records each), checked as :meth:`records` checks
        them, left undecoded: a reader that needs a few records decodes only their lines.
        ``check=False``: an entry this run checked (:meth:`check`) or wrote, read without a second pass."""
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
        if not check:
            handle.readline()
            return self._lines(handle, path, None)
        try:
            records = self._check(handle, path, key)
        except CacheMiss:
            handle.close()
            self.misses += count
            raise
        self.hits += count
        return self._lines(handle, path, records)

    def check(self, kind: str, key: str) -> bool:
        """Whether the entry is there and whole (counted as a hit or a miss; an unusable one is said)."""
        try:
            lines = self.batch_lines(kind, key)
        except CacheMiss:
            return False
        lines.close()  # type: ignore[attr-defined]
        return True

    def record_count(self, kind: str, key: str) -> Optional[int]:
        """The number of records an entry's trailer gives (not checked), or None."""
        try:
            with open(self.path(kind, key), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - 256))
                trailer = orjson.loads(handle.read().rsplit(b"\n", 2)[-2])
                return int(trailer["end"])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def exists(self, kind: str, key: str) -> bool:
        """Whether an entry file is there (not checked: :meth:`records` checks it when it is read)."""
        return self.path(kind, key).is_file()

    def _check(self, handle: IO[bytes], path: Path, key: str) -> int:
        """Verify header, trailer and CRC (read in large blocks); returns the number of records."""
        header = handle.readline()
        try:
            head = orjson.loads(header)
            if head != {"format": _MAGIC, "version": FILE_FORMAT, "key": key}:
                raise ValueError("written for another key or format")
        except ValueError as exc:
            self._unusable(path, f"bad header ({exc})")
            raise CacheMiss(key) from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            tail_at = max(len(header), size - 65536)
            handle.seek(tail_at)
            tail = handle.read()
            newline = tail.rfind(b"\n", 0, len(tail) - 1)
            last = tail[newline + 1 :]
            if (
                not tail.endswith(b"\n")
                or not last.startswith(b'{"end":')
                or (newline < 0 and tail_at > len(header))
            ):
                raise ValueError("no trailer: the file is truncated")
            trailer_at = tail_at + newline + 1
            trailer = orjson.loads(last)
            segments = trailer.get("segments") or [[trailer_at, trailer.get("crc")]]
            if sum(length for length, _crc in segments) != trailer_at:
                raise ValueError("its checksum does not match")
            handle.seek(0)
            for length, expected in segments:
                crc = 0
                while length > 0:
                    block = handle.read(min(length, 1 << 20))
                    if not block:
                        raise ValueError("no trailer: the file is truncated")
                    crc = zlib.crc32(block, crc)
                    length -= len(block)
                if crc != expected:
                    raise ValueError("its checksum does not match")
            count = int(trailer["end"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._unusable(path, str(exc))
            raise CacheMiss(key) from exc
        handle.seek(len(header))
        return count

    def _lines(self, handle: IO[bytes], path: Path, count: Optional[int]) -> Iterator[bytes]:
        with handle:
            seen = 0
            for line in handle:
                if line.startswith(b'{"end":'):
                    break
                seen += 1
                yield line
            if count is not None and seen > count:  # pragma: no cover - the CRC matched: a changed file
                raise ConfigError(f"{path}: cache entry changed while being read")

    def write_records(self, kind: str, key: str, batches: Iterable[Sequence[Any]]) -> int:
        """Store the records of ``batches`` under ``key`` (atomically); returns how many."""
        with self.writer(kind, key) as entry:
            for batch in batches:
                entry.add(batch)
        return entry.count

    @contextmanager
    def writer(self, kind: str, key: str) -> Iterator[EntryWriter]:
        """An entry written batch by batch (:class:`EntryWriter`): renamed into place when the block
        ends, removed if it raises."""
        path = self.path(kind, key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as out:
                entry = EntryWriter(out, key)
                yield entry
                entry.close()
            os.replace(temp, path)
            self._written.add((kind, key))
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    def _unusable(self, path: Path, why: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            log.warning("cache entry %s is unusable (%s): ignored, rebuilt", path, why)


class EntryWriter:
    """Writes an entry's header, then its lines (:meth:`add` a batch, or :meth:`add_part`: lines other
    processes wrote, with their CRC), then at :meth:`close` its trailer: the record count and a CRC of all
    before it, or, when parts were added, the length and CRC of each stretch (parts are copied by the
    kernel, not read again)."""

    def __init__(self, out: IO[bytes], key: str) -> None:
        header = orjson.dumps({"format": _MAGIC, "version": FILE_FORMAT, "key": key}) + b"\n"
        out.write(header)
        self.out = out
        self.crc = zlib.crc32(header)
        self.length = len(header)
        self.segments: List[List[int]] = []  #: [length, crc] of each stretch before the current one
        self.count = 0

    def add(self, batch: Sequence[Any]) -> None:
        if batch:
            line = orjson.dumps(batch if isinstance(batch, list) else list(batch)) + b"\n"
            self.out.write(line)
            self.crc = zlib.crc32(line, self.crc)
            self.length += len(line)
            self.count += len(batch)

    def add_part(self, path: str, count: int, length: int, crc: int) -> None:
        """Append the file ``path``: lines made elsewhere (one JSON array and a newline each), ``count``
        records, ``length`` bytes whose CRC is ``crc`` (as :class:`PartWriter` gives them)."""
        if not length:
            return
        self.segments.append([self.length, self.crc])
        self.out.flush()
        with open(path, "rb") as part:
            _copy(part, self.out, length)
        self.segments.append([length, crc])
        self.crc, self.length = 0, 0
        self.count += count

    def close(self) -> None:
        if not self.segments:
            trailer: Dict[str, Any] = {"end": self.count, "crc": self.crc}
        else:
            segments = [s for s in [*self.segments, [self.length, self.crc]] if s[0]]
            trailer = {"end": self.count, "segments": segments}
        self.out.write(orjson.dumps(trailer) + b"\n")


class PartWriter:
    """Lines of records for :meth:`EntryWriter.add_part`, with what it needs (count, length, CRC)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = self.length = self.crc = 0
        self._out = open(path, "wb")  # noqa: SIM115 - closed in close()

    def add(self, batch: List[Any]) -> None:
        if batch:
            line = orjson.dumps(batch) + b"\n"
            self._out.write(line)
            self.crc = zlib.crc32(line, self.crc)
            self.length += len(line)
            self.count += len(batch)

    def close(self) -> None:
        self._out.close()

    @property
    def totals(self) -> Tuple[int, int, int]:
        return self.count, self.length, self.crc


def _copy(source: IO[bytes], target: IO[bytes], length: int) -> None:
    """``length`` bytes from ``source`` to ``target`` (file descriptors: in the kernel where it can)."""
    done = 0
    try:
        while done < length:
            sent = os.sendfile(target.fileno(), source.fileno(), done, length - done)
            if not sent:
                break
            done += sent
    except (OSError, AttributeError):
        source.seek(done)
        target.seek(0, os.SEEK_END)
        while done < length:
            block = source.read(min(1 << 20, length - done))
            if not block:
                break
            target.write(block)
            done += len(block)
    if done != length:
        raise OSError(f"{source.name}: shorter than its {length} bytes")


def write_entry(out: IO[bytes], key: str, batches: Iterable[Sequence[Any]]) -> int:
    """Write an entry (header, one JSON array per batch, trailer) to ``out``; returns the record count."""
    entry = EntryWriter(out, key)
    for batch in batches:
        entry.add(batch)
    entry.close()
    return entry.count


def _records(lines: Iterator[bytes]) -> Iterator[Any]:
    for line in lines:
        yield from orjson.loads(line)


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
    "EntryWriter",
    "PartWriter",
    "code_version",
    "dump_identity",
    "entry_key",
    "read_entry",
    "write_entry",
]
