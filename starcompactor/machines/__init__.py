"""Archives → snapshots → machine events: ``backups`` (find and date the dumps), ``state`` (host records),
``snapshot`` (one dump → the state of every host; vm), ``blazar`` (bare metal, every Blazar schema as a
row of data), ``diff`` (snapshots → events, SPEC §2), ``audit`` (the ``openstack_audit`` log → events at
their exact times), ``stitch`` (both sources → one trace, SPEC §1.4), ``trace`` (the whole run:
:func:`make_machine_trace`).
"""

from __future__ import annotations

from .backups import BackupFile, list_backups
from .diff import machine_events
from .snapshot import read_snapshot
from .state import HostState, Snapshot, SnapshotSettings
from .trace import AuditSource, MachineTraceResult, make_machine_trace

__all__ = [
    "AuditSource",
    "BackupFile",
    "HostState",
    "MachineTraceResult",
    "Snapshot",
    "SnapshotSettings",
    "list_backups",
    "machine_events",
    "make_machine_trace",
    "read_snapshot",
]
