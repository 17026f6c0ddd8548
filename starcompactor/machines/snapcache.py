"""Snapshots in the dump cache (``machines --cache``): what a dump yielded, as JSON, under its identity.

A snapshot is a few hundred small host records: stored as JSON (:mod:`starcompactor.dump.cache`), keyed
by the dump's identity, its name (the snapshot time may come from it), the settings that change what a
snapshot holds (:class:`~starcompactor.machines.state.SnapshotSettings`: instance type, cell databases,
rack regex and group, bare-metal properties) and the source of the code that makes snapshots. A record
whose values are not plain JSON values is not cached (the dump is read again next time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Dict, List, Optional

from ..audit.dumps import DumpLog
from ..dump.cache import DumpCache, code_version, dump_identity, entry_key
from .backups import BackupFile
from .state import HostState, Snapshot, SnapshotSettings

KIND = "snapshot"
_PLAIN = (str, int, float, bool, type(None))
_code = ""


def _code_version() -> str:
    global _code
    if not _code:
        from ..dump import cache, reader, schema, stream, values
        from . import blazar, snapshot, state

        _code = code_version(snapshot, blazar, state, reader, schema, values, stream, cache)
    return _code


def snapshot_key(
    backup: BackupFile, settings: SnapshotSettings, transport_params: Optional[Dict[str, Any]] = None
) -> str:
    """The cache key of ``backup``'s snapshot (reads the dump's first and last MiB)."""
    stamp = backup.etag or (backup.mtime.isoformat() if backup.mtime else None)
    identity = dump_identity(backup.uri, backup.size, stamp, transport_params=transport_params)
    return entry_key(
        KIND,
        identity,
        backup.name,
        backup.name_time.isoformat() if backup.name_time else None,
        dataclasses.asdict(settings),
        _code_version(),
    )


def _time(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _parse(value: Optional[str]) -> Optional[dt.datetime]:
    return dt.datetime.fromisoformat(value) if value is not None else None


def snapshot_to_json(snapshot: Snapshot) -> Optional[Dict[str, Any]]:
    """The JSON form of a snapshot, or None when a value is not plain JSON (then it is not cached)."""
    hosts: List[List[Any]] = []
    for h in snapshot.hosts:
        if not all(isinstance(v, _PLAIN) for _, v in h.properties) or not isinstance(
            h.enabled, (bool, type(None))
        ):
            return None
        if h.identity is not None and not isinstance(h.identity[0], (str, type(None))):
            return None
        hosts.append(
            [
                h.host,
                _time(h.created_at),
                _time(h.updated_at),
                [[k, v] for k, v in h.properties],
                h.enabled,
                _time(h.status_at),
                _time(h.deleted_at),
                None if h.identity is None else [h.identity[0], _time(h.identity[1])],
                h.link,
            ]
        )
    detail = snapshot.detail
    if not all(isinstance(v, (*_PLAIN, list)) for v in detail.values()):
        return None
    return {
        "time": _time(snapshot.time),
        "time_source": snapshot.time_source,
        "hosts": hosts,
        "detail": detail,
        # whether the dump holds an openstack_audit log (None: not looked for): a dump read for its log
        # and found to hold none need not be read again for it
        "audit_log": None if snapshot.audit is None else snapshot.audit.present,
    }


def snapshot_from_json(data: Dict[str, Any], backup: BackupFile) -> Snapshot:
    hosts = tuple(
        HostState(
            host=host,
            created_at=_parse(created),
            updated_at=_parse(updated),
            properties=tuple((k, v) for k, v in properties),
            enabled=enabled,
            status_at=_parse(status),
            deleted_at=_parse(deleted),
            identity=None if identity is None else (identity[0], _parse(identity[1])),
            link=link,
        )
        for host, created, updated, properties, enabled, status, deleted, identity, link in data["hosts"]
    )
    time = _parse(data["time"])
    assert time is not None
    audit = DumpLog(backup.uri) if data.get("audit_log") is False else None
    return Snapshot(
        backup.uri, backup.name, time, data["time_source"], hosts, backup.size, dict(data["detail"]), audit
    )


def cached_snapshot(
    cache: DumpCache, key: str, backup: BackupFile, *, audit_log: bool = False
) -> Optional[Snapshot]:
    """The snapshot stored under ``key``, or None (absent or unusable). ``audit_log``: the dump's
    ``openstack_audit`` log is wanted too, which a cached snapshot does not hold: only an entry saying the
    dump holds no log will do."""
    data = cache.get(KIND, key, count=False)
    snapshot = None
    # with the log wanted, an entry serves only when it says the dump holds none
    if isinstance(data, dict) and not (audit_log and data.get("audit_log") is not False):
        try:
            snapshot = snapshot_from_json(data, backup)
        except (KeyError, TypeError, ValueError, AssertionError):
            pass
    cache.tally(snapshot is not None)
    return snapshot


def store_snapshot(cache: DumpCache, key: str, snapshot: Snapshot) -> None:
    data = snapshot_to_json(snapshot)
    if data is not None:
        cache.put(KIND, key, data)


__all__ = ["cached_snapshot", "snapshot_from_json", "snapshot_key", "snapshot_to_json", "store_snapshot"]
