"""Machine events end to end: list the dumps → read each into a snapshot → diff → mask → write.

:func:`make_machine_trace` is the library entry the command line calls. Each dump is read by a worker
(process pool, or a Dask cluster) that returns a compact :class:`~starcompactor.snapshot.Snapshot`;
the parent orders the snapshots (SPEC §1.1), diffs them (§2), masks (§4) and writes the trace and its
manifest (§3) atomically.

A dump that cannot be read stops the run with an error naming it — before anything is written — unless
``skip_bad_files`` is set: then it is left out as missing data (never as a snapshot without hosts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from .backups import BackupFile, list_backups
from .config import Config
from .diff import machine_events, order_snapshots, sort_events
from .errors import DumpError, StarCompactorError
from .events import MachineEvent
from .mask import Masker, mask_machine_events
from .parallel import map_ordered, open_executor
from .snapshot import Snapshot, SnapshotSettings, read_snapshot
from .writers import base_manifest, open_writer, write_manifest

log = logging.getLogger(__name__)


class BadDumpError(DumpError):
    """A dump failed in a worker; carries the worker's one-line message."""

    what = "cannot read dump"

    def __init__(self, path: str, message: str, kind: str = "DumpError") -> None:
        self.message = message
        self.kind = kind
        super().__init__(path, message)

    def __reduce__(self) -> Any:
        return (BadDumpError, (self.path, self.message, self.kind))

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Failure:
    """A dump a worker could not read (errors travel as values: our exceptions need not pickle)."""

    uri: str
    name: str
    message: str
    kind: str


def snapshot_or_failure(task: "tuple[BackupFile, SnapshotSettings]") -> Union[Snapshot, Failure]:
    """Worker entry: read one dump; a :class:`StarCompactorError` comes back as a :class:`Failure`."""
    backup, settings = task
    try:
        return read_snapshot(backup, settings)
    except StarCompactorError as exc:
        return Failure(backup.uri, backup.name, str(exc), type(exc).__name__)
    except OSError as exc:
        return Failure(
            backup.uri, backup.name, f"{backup.uri}: cannot read: {exc.strerror or exc}", "OSError"
        )


@dataclass
class MachineTraceResult:
    """What a run produced (for the command line's summary and for tests)."""

    output: str
    manifest: Optional[str]
    events: List[MachineEvent]
    snapshots: List[Snapshot]
    skipped: List[Failure] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)


def read_snapshots(
    backups: Sequence[BackupFile],
    settings: SnapshotSettings,
    *,
    workers: Optional[int] = None,
    executor: Optional[str] = None,
    skip_bad_files: bool = False,
    progress: bool = False,
) -> "tuple[List[Snapshot], List[Failure]]":
    """Read every dump (in parallel) into snapshots in snapshot order, and the failures skipped."""
    from .progress import Progress

    total = sum(b.size or 0 for b in backups) or None
    tasks = [(b, settings) for b in backups]
    with Progress(len(backups), total, show=progress) as bar, open_executor(executor, workers) as pool:

        def done(index: int, result: Union[Snapshot, Failure]) -> None:
            bar.file_done(backups[index].size)
            if isinstance(result, Failure) and not skip_bad_files:
                raise BadDumpError(result.uri, result.message, result.kind)

        results = map_ordered(snapshot_or_failure, tasks, pool, done)
    snapshots = [r for r in results if isinstance(r, Snapshot)]
    failures = [r for r in results if isinstance(r, Failure)]
    for failure in failures:
        log.warning("skipped %s", failure.message)
    return order_snapshots(snapshots), failures


def make_machine_trace(
    backup_dir: str,
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
    progress: bool = False,
) -> MachineTraceResult:
    """Write the machine-event trace of the dumps in ``backup_dir`` to ``output`` (``-``: stdout).

    ``masker`` defaults to no masking (the command line always passes one). Returns what was written.
    """
    config = config or Config()
    masker = masker or Masker("none")
    if instance_type not in ("vm", "baremetal"):
        raise StarCompactorError(f"unknown instance type {instance_type!r} (vm or baremetal)")
    regex = backup_file_regex or config.backup_file_regex
    backups = list_backups(backup_dir, regex)
    log.info("%d dump(s) in %s", len(backups), backup_dir)
    settings = SnapshotSettings.from_config(config, instance_type)
    snapshots, failures = read_snapshots(
        backups,
        settings,
        workers=workers,
        executor=executor,
        skip_bad_files=skip_bad_files,
        progress=progress,
    )
    if failures:
        names = ", ".join(f.name for f in failures)
        log.warning("skipped %d unreadable dump(s), treated as missing data: %s", len(failures), names)
    if not snapshots:
        raise StarCompactorError(f"{backup_dir}: none of the {len(backups)} dump(s) could be read")
    events = machine_events(snapshots)
    rack_key = "rack" if instance_type == "vm" else config.rack_property_name
    masked = mask_machine_events(events, masker, rack_key)
    masked = sort_events(masked)  # by the masked host: the file is sorted by its own columns
    with open_writer(output, "machine", fmt, config.epoch, rack_key=rack_key) as writer:
        writer.write_all(masked)
    inputs = [
        {
            "name": s.name, "uri": s.uri, "snapshot_time": s.time, "time_source": s.time_source,
            "size": s.size, "hosts": len({h.host for h in s.hosts if not h.deleted}),
        }
        for s in snapshots
    ]  # fmt: skip
    extra: Dict[str, Any] = {
        "instance_type": instance_type,
        "backup_dir": backup_dir,
        "skipped": [{"name": f.name, "uri": f.uri, "error": f.message} for f in failures],
        "config": config.source,
    }
    manifest = base_manifest(
        "machine", epoch=config.epoch, fmt=fmt, masking_method=masker.method,
        key_fingerprint=masker.fingerprint, writer=writer, extra=extra, inputs=inputs,
    )  # fmt: skip
    manifest_file = write_manifest(output, manifest)
    return MachineTraceResult(output, manifest_file, masked, snapshots, failures, dict(writer.counts))
