"""Find the nightly dumps in a backup directory (local or any smart_open URI) and date each one.

The snapshot time orders the snapshots and dates synthesized DELETE events, so it must survive copies
and ``rsync`` (which the original's mtime did not). First that exists (SPEC §1.1):

1. a time in the file name: the selection regex's named groups (``year month day hour minute second``,
   or ``date``/``time``, or ``timestamp``), else a recognised stamp anywhere in the name
   (``2024-01-05T03:00:00Z``, ``2024-01-05_03-00-00``, ``20240105-030000``);
2. the dump's own ``-- Dump completed on …`` trailer (found while reading the dump);
3. the file's modification time.

File selection: a regex given on the command line or set in a config file is matched against each
file name (``re.match``, as the original did). With no regex set anywhere, every file whose name ends
in a common dump suffix is taken (:func:`default_name_pattern`: ``.sql``, ``.mysql``, ``.dump``, each
optionally with the suffix of a registered compression), which finds both Chameleon's
``mysqldump-2024-01-05T03:00:00Z.mysql.gz`` and the original's ``mysql_backup_20240105-030000.sql.bz2``.

Listing backends live in :data:`LISTERS`, keyed by URI scheme; ``s3://`` lists with boto3 (which honours
``AWS_ENDPOINT_URL``, as smart_open does when opening).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from ..config import DEFAULTS
from ..dump import compressed_suffixes
from ..errors import ConfigError, MissingDependencyError, NoBackupsError, OutputError, StarCompactorError
from ..registry import Registry
from ..times import to_utc

#: Suffixes of a dump before any compression suffix.
DUMP_SUFFIXES = ("sql", "mysql", "dump")


def default_name_pattern() -> str:
    """The file names taken when no regex is configured: a dump suffix, optionally compressed."""
    dumps = "|".join(DUMP_SUFFIXES)
    compressed = "|".join(re.escape(s) for s in compressed_suffixes())
    return rf".*\.(?:{dumps})(?:\.(?:{compressed}))?$"


_STAMPS = (
    # 2024-01-05T03:00:00Z, 2024-01-05 03:00:00, 2024-01-05_03-00-00, with optional fraction and zone
    re.compile(
        r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T_ ](?P<h>\d{2})[:\-.]?(?P<mi>\d{2})[:\-.]?(?P<s>\d{2})"
        r"(?:\.\d+)?(?P<z>Z|[+-]\d{2}:?\d{2})?"
    ),
    # 20240105-030000, 20240105T030000Z, 20240105_030000
    re.compile(
        r"(?<!\d)(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})[-_T](?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})(?P<z>Z)?(?!\d)"
    ),
)


@dataclass(frozen=True)
class BackupFile:
    """One dump in the backup directory, before it is read."""

    uri: str  #: local path or URI, as handed to the reader
    name: str  #: the file name the regex was matched against
    size: Optional[int] = None
    mtime: Optional[dt.datetime] = None  #: naive UTC
    name_time: Optional[dt.datetime] = None  #: naive UTC, from the file name
    etag: Optional[str] = None  #: the object store's ETag, when the listing gives one (a cache key)


def _zone(text: Optional[str]) -> dt.timezone:
    if not text or text in ("Z", "z"):
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _from_groups(groups: Dict[str, Optional[str]]) -> Optional[dt.datetime]:
    """A time from a regex's named groups, when it has enough of them."""
    g = {k: v for k, v in groups.items() if v}
    try:
        if "timestamp" in g:
            return time_from_name(g["timestamp"])
        if "date" in g:
            date = re.sub(r"\D", "", g["date"])
            clock = re.sub(r"\D", "", g.get("time", "")) or "000000"
            return dt.datetime.strptime(date[:8] + clock[:6].ljust(6, "0"), "%Y%m%d%H%M%S")
        if {"year", "month", "day"} <= g.keys():
            return dt.datetime(
                int(g["year"]),
                int(g["month"]),
                int(g["day"]),
                int(g.get("hour", 0)),
                int(g.get("minute", 0)),
                int(g.get("second", 0)),
            )
    except ValueError:
        return None
    return None


def time_from_name(name: str, match: Optional["re.Match[str]"] = None) -> Optional[dt.datetime]:
    """The snapshot time written in a file name (naive UTC), or None."""
    if match is not None and match.re.groupindex:
        found = _from_groups(match.groupdict())
        if found is not None:
            return found
    for pattern in _STAMPS:
        for m in pattern.finditer(name):
            try:
                value = dt.datetime(
                    int(m["y"]),
                    int(m["mo"]),
                    int(m["d"]),
                    int(m["h"]),
                    int(m["mi"]),
                    int(m["s"]),
                    tzinfo=_zone(m["z"]),
                )
            except ValueError:
                continue
            return to_utc(value)
    return None


# -- listing ------------------------------------------------------------------------------------------

Entry = Tuple[str, str, Optional[int], Optional[dt.datetime]]  # uri, name, size, mtime
#: An object store's entry may add the object's ETag (the dumps' cache identity uses it).
TaggedEntry = Tuple[str, str, Optional[int], Optional[dt.datetime], Optional[str]]


def _list_local(directory: str) -> Iterator[Entry]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        raise ConfigError(f"{directory}: backup directory does not exist") from None
    except NotADirectoryError:
        raise ConfigError(f"{directory}: not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot list backup directory: {exc.strerror or exc}") from exc
    for entry in entries:
        try:
            if not entry.is_file():
                if entry.is_symlink() and not os.path.exists(entry.path):
                    yield entry.path, entry.name, None, None  # dangling: reading it says so, by name
                continue
            st = entry.stat()
        except OSError:
            # a symbolic link loop, a file that vanished or cannot be looked at: listed without size or
            # time, so that reading it fails with one line naming it (or skips it, with --skip-bad-files)
            yield entry.path, entry.name, None, None
            continue
        mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).replace(tzinfo=None)
        yield entry.path, entry.name, st.st_size, mtime


def _list_s3(uri: str) -> Iterator[TaggedEntry]:
    try:
        import boto3
    except ImportError as exc:
        raise MissingDependencyError("boto3", "s3", "an s3:// backup directory") from exc
    rest = uri[len("s3://") :]
    credentials: Dict[str, str] = {}
    auth = ""
    head, at, tail = rest.partition("@")
    if at and ":" in head and "/" not in head.split(":", 1)[0]:
        # s3://ID:SECRET@bucket/prefix, as smart_open reads it: list with those credentials, and hand
        # them on in each file's URI (messages and the manifest show them redacted)
        key_id, secret = head.split(":", 1)
        credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        auth, rest = head + "@", tail
    bucket, _, prefix = rest.partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = boto3.client("s3", **credentials)
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                name = key[len(prefix) :]
                if not name:
                    continue
                yield (
                    f"s3://{auth}{bucket}/{key}",
                    name,
                    obj.get("Size"),
                    to_utc(obj["LastModified"]),
                    obj.get("ETag"),
                )
    except Exception as exc:  # botocore errors: no such bucket, access denied, no endpoint
        if isinstance(exc, StarCompactorError):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{uri}: cannot list backup directory: {detail}") from exc


#: URI scheme -> lister of a directory's files. Local paths (no scheme, or ``file://``) are listed with
#: os.scandir; other stores are one registration (smart_open then opens what was listed).
LISTERS: Registry[Callable[[str], Iterator[Union[Entry, TaggedEntry]]]] = Registry(
    "backup store", "or a local directory"
)
LISTERS.register("s3", _list_s3)


def supported_stores() -> Tuple[str, ...]:
    """URI schemes a backup directory may have, besides a local path."""
    return LISTERS.names()


def list_entries(backup_dir: str) -> List[Union[Entry, TaggedEntry]]:
    if backup_dir.startswith("file://"):
        backup_dir = backup_dir[len("file://") :]
    scheme = backup_dir.split("://", 1)[0] if "://" in backup_dir else ""
    if not scheme:
        return list(_list_local(backup_dir))
    lister = LISTERS.find(scheme)
    if lister is None:
        stores = ", ".join(f"{name}://" for name in supported_stores())
        raise ConfigError(
            f"{backup_dir}: cannot list a {scheme}:// backup directory (listable: local, {stores})"
        )
    return list(lister(backup_dir))


def refuse_output_among_inputs(output: str, backup_dir: str) -> None:
    """Refuse an output (or its manifest) inside a local backup directory: a trace must never replace a
    dump, nor land where the next run would list it."""
    if output == "-":
        return
    if backup_dir.startswith("file://"):
        backup_dir = backup_dir[len("file://") :]
    if "://" in backup_dir:
        return  # a remote store: a local output cannot be one of its files
    directory = os.path.realpath(backup_dir)
    for path in (output, output + ".manifest.json"):
        real = os.path.realpath(path)
        if real == directory or real.startswith(directory.rstrip(os.sep) + os.sep):
            raise OutputError(
                output,
                f"is inside the backup directory {backup_dir} being read: write the trace somewhere else",
            )


def effective_regex(regex: Optional[str]) -> str:
    """The selection regex: ``regex`` unless it is empty or the built-in default, else the dump suffixes."""
    if not regex or regex == DEFAULTS["backup"]["backup_file_regex"]:
        return default_name_pattern()
    return regex


def list_backups(backup_dir: str, regex: Optional[str] = None) -> List[BackupFile]:
    """The dumps of ``backup_dir`` selected by ``regex`` (see :func:`effective_regex`), sorted by name.

    Raises :class:`NoBackupsError` when nothing is selected (the original crashed on an empty pool).
    """
    pattern_text = effective_regex(regex)
    try:
        pattern = re.compile(pattern_text)
    except re.error as exc:
        raise ConfigError(f"backup file regex {pattern_text!r}: {exc}") from exc
    found: List[BackupFile] = []
    entries = list_entries(backup_dir)
    for uri, name, size, mtime, *etag in entries:
        m = pattern.match(name)
        if m is None:
            continue
        found.append(BackupFile(uri, name, size, mtime, time_from_name(name, m), etag[0] if etag else None))
    if not found:
        what = f"{len(entries)} file(s), none matching" if entries else "no files; wanted names matching"
        raise NoBackupsError(f"{backup_dir}: no backup files ({what} {pattern_text!r})")
    found.sort(key=lambda b: b.name)
    return found
