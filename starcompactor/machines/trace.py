"""Machine events end to end: list the dumps → read each into a snapshot → diff → mask → write.

:func:`make_machine_trace` is the library entry the command line calls. Each dump is read by a worker
(process pool, or a Dask cluster) that returns a compact :class:`~starcompactor.machines.state.Snapshot`;
the parent orders the snapshots (SPEC §1.1), diffs them (§2) — stitched with the ``openstack_audit`` log
when there is one (§1.4: the newest dump's, read with its snapshot; an export; a server) — masks (§4) and
writes the trace and its manifest (§3) atomically.

A dump that cannot be read stops the run with an error naming it — before anything is written — unless
``skip_bad_files`` is set: then it is left out as missing data (never as a snapshot without hosts), and
said once, as a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..audit.dumps import read_dump_log
from ..audit.records import AUDIT_DATABASE, AuditLog
from ..config import Config, check_instance_type
from ..dump.cache import DumpCache
from ..errors import BadDumpError, ConfigError, StarCompactorError
from ..events import MachineEvent
from ..mask import Masker, mask_machine_events
from ..parallel import default_workers, map_ordered, open_executor
from ..server.settings import DbSettings
from ..traces import Progress, ProgressCallback, TraceResult, base_manifest, open_writer, write_manifest
from ..traces.atomic import check_output
from .audit import LogCandidates, log_candidates
from .backups import BackupFile, list_backups, refuse_output_among_inputs
from .diff import LOG, one_per_time, order_snapshots, snapshot_gaps, sort_events, warn_gaps
from .snapcache import cached_snapshot, snapshot_key, store_snapshot
from .snapshot import read_snapshot
from .state import AUDIT_TABLES, Snapshot, SnapshotSettings
from .stitch import stitched_events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A dump a worker could not read (errors travel as values: nothing else need pickle)."""

    uri: str
    name: str
    message: str
    kind: str


def snapshot_or_failure(task: Tuple[Any, ...]) -> Union[Snapshot, Failure]:
    """Worker entry: read one dump (``(backup, settings[, prefetch])``); a :class:`StarCompactorError`
    comes back as a :class:`Failure`."""
    backup, settings, *rest = task
    try:
        return read_snapshot(backup, settings, prefetch=bool(rest and rest[0]))
    except StarCompactorError as exc:
        return Failure(backup.uri, backup.name, str(exc), type(exc).__name__)
    except OSError as exc:
        return Failure(
            backup.uri, backup.name, f"{backup.uri}: cannot read: {exc.strerror or exc}", "OSError"
        )
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with one dump is that dump's failure
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return Failure(
            backup.uri,
            backup.name,
            f"{backup.uri}: cannot read: {type(exc).__name__} {detail}".rstrip(),
            type(exc).__name__,
        )


@dataclass
class MachineTraceResult(TraceResult):
    """A written machine trace, plus what it was made of: its events, snapshots and skipped dumps."""

    events: List[MachineEvent] = field(default_factory=list)
    snapshots: List[Snapshot] = field(default_factory=list)
    skipped: List[Failure] = field(default_factory=list)


def read_snapshots(
    backups: Sequence[BackupFile],
    settings: SnapshotSettings,
    *,
    workers: Optional[int] = None,
    executor: Optional[str] = None,
    skip_bad_files: bool = False,
    on_progress: Optional[ProgressCallback] = None,
    audit_log_of: Optional[int] = None,
    cache: Optional[DumpCache] = None,
) -> Tuple[List[Snapshot], List[Failure]]:
    """Read every dump (in parallel) into snapshots in snapshot order, and the failures skipped.

    ``audit_log_of``: the index of the dump whose ``openstack_audit`` tables are read too (same pass;
    a cached snapshot serves it only when the dump holds no log). With ``cache``, a dump whose
    snapshot is stored under its identity is not read, and every snapshot read is stored (see
    :mod:`starcompactor.machines.snapcache`).
    """
    total_bytes = sum(b.size or 0 for b in backups) or None
    done = [0, 0]
    results: List[Union[Snapshot, Failure, None]] = [None] * len(backups)
    keys: List[Optional[str]] = [None] * len(backups)
    if cache is not None:
        for index, backup in enumerate(backups):
            key = snapshot_key(backup, settings)
            keys[index] = key
            results[index] = cached_snapshot(cache, key, backup, audit_log=index == audit_log_of)
    todo = [index for index, result in enumerate(results) if result is None]
    for index, result in enumerate(results):
        if result is not None:
            done[0] += 1
            done[1] += backups[index].size or 0
    if done[0] and on_progress is not None:
        on_progress(Progress("dump", done[0], len(backups), done[1], total_bytes))
    workers = _pool_size(executor, workers, [backups[index] for index in todo])
    ahead = _prefetch(len(todo), workers) if PREFETCH else [False] * len(todo)
    tasks = [
        (backups[index], replace(settings, audit_log=True) if index == audit_log_of else settings, prefetch)
        for index, prefetch in zip(todo, ahead)
    ]
    with open_executor(executor, workers) as pool:

        def finished(position: int, result: Union[Snapshot, Failure]) -> None:
            index = todo[position]
            done[0] += 1
            done[1] += backups[index].size or 0
            if on_progress is not None:
                on_progress(Progress("dump", done[0], len(backups), done[1], total_bytes))
            if isinstance(result, Failure) and not skip_bad_files:
                raise BadDumpError(result.uri, result.message, result.kind)

        # the dump read with the log takes longest: started first, the other workers share the rest meanwhile
        first = todo.index(audit_log_of) if audit_log_of in todo else None
        for index, result in zip(todo, map_ordered(snapshot_or_failure, tasks, pool, finished, first=first)):
            results[index] = result
            stored_key = keys[index]
            if cache is not None and stored_key is not None and isinstance(result, Snapshot):
                store_snapshot(cache, stored_key, result)
    snapshots = [r for r in results if isinstance(r, Snapshot)]
    failures = [r for r in results if isinstance(r, Failure)]
    for failure in failures:
        log.warning("skipped %s (treated as missing data)", failure.message)
    return order_snapshots(snapshots), failures


def newest_backup(backups: Sequence[BackupFile]) -> int:
    """The index of the dump most likely the newest before any is read (time in its name, else mtime):
    the one whose audit log is read with its snapshot."""
    floor = dt.datetime.min
    return max(
        range(len(backups)),
        key=lambda i: (backups[i].name_time or backups[i].mtime or floor, backups[i].name),
    )


def dumps_audit_log(snapshots: Sequence[Snapshot], instance_type: str = "vm") -> Optional[AuditLog]:
    """The log of the newest dump (SPEC §1.4 a: it holds the whole log to its time), read in the same
    pass as its snapshot — or now, when that dump turned out not to be the newest (names without times) or
    was skipped. None when the newest dump holds no log (once installed, every later dump holds it).
    Only the tables the ``instance_type``'s trace reads (:data:`~.state.AUDIT_TABLES`)."""
    tables = AUDIT_TABLES[instance_type]
    newest = snapshots[-1]
    found = newest.audit if newest.audit is not None else None
    if found is None:
        log.info("reading the audit log of %s", newest.uri)
        audit = read_dump_log(newest.uri, name=newest.uri, only=tables, expected=tables)
        return audit if audit.tables or audit.unread else None
    return found.log(tables) if found.present else None


@dataclass(frozen=True)
class AuditSource:
    """Where the ``openstack_audit`` log is read (SPEC §1.4): the dumps (``dumps``), a Parquet export
    (``directory``: a directory or ``s3://`` prefix) or a live server (``server``, ``database``)."""

    dumps: bool = True
    directory: Optional[str] = None
    server: Optional[DbSettings] = None
    database: str = AUDIT_DATABASE
    log: Optional[AuditLog] = None  #: a log already opened (any form)

    def open(self) -> Optional[AuditLog]:
        """The export's or the server's log (None for the dumps' own, which is read with them)."""
        if self.log is not None:
            return self.log
        if self.directory:
            from ..audit.parquet import read_parquet_log

            return read_parquet_log(self.directory)
        if self.server is not None:
            from ..audit.server import read_server_log

            return read_server_log(self.server, database=self.database)
        return None


#: Decompress the last round's dumps ahead in a thread (:func:`_prefetch`). Off: measured on the shared
#: 2-core machine (benchmarks/prefetch.py), one 1.1 GB gzip dump took 3.4 s with it against 3.0 s
#: without — the "idle" core was not idle, and the thread's hand-offs cost more than they saved.
PREFETCH = False

#: Below this many compressed bytes in all, dumps are read in this process: a pool's start-up (its
#: processes import the package) costs more than it saves.
SMALL_WORK_BYTES = 64 << 20


def _pool_size(
    executor: Optional[str], workers: Optional[int], backups: Sequence[BackupFile]
) -> Optional[int]:
    """The workers to start: none for one dump or small work (local process pool only)."""
    if executor not in (None, "process"):
        return workers
    if len(backups) <= 1:
        return 1
    sizes = [b.size for b in backups]
    if workers is None and all(size is not None for size in sizes) and sum(sizes) < SMALL_WORK_BYTES:  # type: ignore[arg-type]
        return 1
    return workers


def _prefetch(count: int, pool: Optional[int], cores: Optional[int] = None) -> List[bool]:
    """Which of ``count`` dumps to decompress ahead in a thread, so that a core that would be idle is
    not: every one when the pool has fewer processes than there are cores; else those of the last
    round, when fewer dumps than processes are left (3 dumps on 2 cores: the third)."""
    cores = cores or default_workers()
    pool = pool or cores
    if cores < 2 or count == 0:
        return [False] * count
    if pool < cores:
        return [True] * count
    tail = count % pool if count >= pool else count
    return [index >= count - tail for index in range(count)]


def make_machine_trace(
    backup_dir: Optional[str],
    output: str = "machine_events.csv",
    *,
    instance_type: str = "vm",
    config: Optional[Config] = None,
    fmt: str = "csv",
    masker: Optional[Masker] = None,
    backup_file_regex: Optional[str] = None,
    workers: Optional[int] = None,
    executor: Optional[str] = None,
    skip_bad_files: bool = False,
    on_progress: Optional[ProgressCallback] = None,
    audit: Optional[AuditSource] = None,
    cache: Optional[str] = None,
) -> MachineTraceResult:
    """Write the machine-event trace of the dumps in ``backup_dir`` to ``output`` (``-``: stdout).

    ``audit`` says where the ``openstack_audit`` log is (default: the dumps' own, when they hold it;
    ``AuditSource(dumps=False)``: no log). With a log the trace is stitched (SPEC §1.4): the log's exact
    times for every change it records, the snapshots for the rest. ``backup_dir`` None: the log alone
    (an export or a server), which gives its own period only.

    ``masker`` defaults to no masking (the command line always passes one); ``on_progress`` is called
    with a :class:`~starcompactor.traces.Progress` as each dump is read; ``cache``: a directory keeping
    each dump's snapshot, so that a re-run reads only new or changed dumps. Returns what was written.
    """
    config = config or Config()
    masker = masker or Masker("none")
    audit = audit or AuditSource()
    check_instance_type(instance_type)
    check_output(output)
    settings = SnapshotSettings.from_config(config, instance_type)
    external = audit.open()  # before the dumps: a wrong export or password fails at once
    if backup_dir is None and external is None:
        raise ConfigError("no input: give a backup directory, an audit export or an audit server")
    dump_cache = DumpCache(cache) if cache else None
    snapshots: List[Snapshot] = []
    failures: List[Failure] = []
    if backup_dir is not None:
        regex = backup_file_regex or config.backup_file_regex
        backups = list_backups(backup_dir, regex)
        refuse_output_among_inputs(output, backup_dir)
        log.info("%d dump(s) in %s", len(backups), backup_dir)
        snapshots, failures = read_snapshots(
            backups,
            settings,
            workers=workers,
            executor=executor,
            skip_bad_files=skip_bad_files,
            on_progress=on_progress,
            audit_log_of=newest_backup(backups) if audit.dumps and external is None else None,
            cache=dump_cache,
        )
        if not snapshots:
            raise StarCompactorError(f"{backup_dir}: none of the {len(backups)} dump(s) could be read")
        snapshots = one_per_time(snapshots)
    audit_log = external
    if audit_log is None and audit.dumps and snapshots:
        audit_log = dumps_audit_log(snapshots, instance_type)
    gaps = snapshot_gaps(snapshots)
    warn_gaps(gaps)
    from_log = log_candidates(audit_log, settings, snapshots) if audit_log is not None else None
    stitched = stitched_events(
        snapshots,
        from_log.candidates if from_log else (),
        from_log.known if from_log else None,
        gaps,
    )
    events = stitched.events
    rack_key = "rack" if instance_type == "vm" else config.rack_property_name
    masked = mask_machine_events(events, masker, rack_key)
    masked = sort_events(masked)  # by the masked host: the file is sorted by its own columns
    private = masker.method == "none"
    with open_writer(
        output, "machine", fmt, config.epoch, rack_key=rack_key, hold=True, private=private
    ) as writer:
        writer.write_all(masked)
    inputs = [
        {
            "name": s.name,
            "snapshot_time": s.time,
            "time_source": s.time_source,
            "size": s.size,
            "hosts": len({h.host for h in s.hosts if not h.deleted}),
        }
        for s in snapshots
    ]
    extra: Dict[str, Any] = {
        "instance_type": instance_type,
        "backup_dir": backup_dir,
        "sources": (["snapshots"] if snapshots else []) + (["audit-log"] if from_log else []),
        "events_by_source": {"snapshots": stitched.sources["snapshots"], "audit-log": stitched.sources[LOG]},
        "audit_log": audit_manifest(audit_log, from_log) if audit_log is not None and from_log else None,
        "skipped": [{"name": f.name, "error": f.message.replace(f.uri, f.name)} for f in failures],
        "incomplete_snapshots": [
            {"name": g.snapshot.name, "hosts_lacking": len(g.hosts)} for g in gaps.values()
        ],
        "config": config.source,
    }
    if dump_cache is not None:
        extra["cache"] = {"directory": cache, "hits": dump_cache.hits, "misses": dump_cache.misses}
    manifest = base_manifest(
        "machine",
        epoch=config.epoch,
        fmt=fmt,
        masking_method=masker.method,
        key_fingerprint=masker.fingerprint,
        writer=writer,
        extra=extra,
        inputs=inputs,
    )
    manifest_file = write_manifest(output, manifest, writer=writer)
    return MachineTraceResult(output, manifest_file, manifest, masked, snapshots, failures)


def audit_manifest(audit: AuditLog, found: LogCandidates) -> Dict[str, Any]:
    """What the manifest says of the log: where it was read, its tables, from when it covers history."""
    summary = audit.summary()
    summary["coverage_start"] = found.coverage_start
    summary["rows_read"] = found.rows
    summary["tables_missing"] = [f"audit_{t}" for t in found.missing]
    summary["notes"] = list(found.notes)
    return summary
