"""One dump → one snapshot: the state of every physical host at the time of the dump (SPEC §1.2).

* **vm**: for every Nova cell database, ``compute_nodes`` joined to its ``nova-compute`` service on
  ``host``. A host key (``hypervisor_hostname``) can have a live row and soft-deleted rows beside it;
  each row becomes one record, the deleted ones with ``deleted_at`` set.
* **baremetal**: Ironic ``nodes`` joined to Blazar ``computehosts`` on ``nodes.uuid =
  computehosts.hypervisor_hostname``, plus the host's extra capabilities, in whichever Blazar schema the
  dump has (:mod:`starcompactor.machines.blazar`). A host is present when its Ironic node and its live
  Blazar host are; capabilities are optional.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..audit.dumps import DumpLogCollector, audit_keys
from ..audit.records import AUDIT_DATABASE
from ..dump import DumpReader, TableKey
from ..errors import DumpError, MissingTableError
from ..times import as_datetime
from .backups import BackupFile
from .blazar import (
    BAREMETAL_COLUMNS,
    BAREMETAL_TABLES,
    CAPABILITIES,
    COMPUTEHOSTS,
    NODES,
    baremetal_host_states,
    blazar_schema,
    capability_names,
    capability_rows,
)
from .state import (
    AUDIT_KEEP,
    AUDIT_TABLES,
    HostState,
    Snapshot,
    SnapshotSettings,
    as_int,
    as_text,
    identity_of,
    is_deleted,
)

log = logging.getLogger(__name__)

UNKNOWN_RACK = "UNKNOWN"
NOVA_COMPUTE = "nova-compute"
VM_TABLES = ("compute_nodes", "services")


#: The columns a vm snapshot reads of each table (compute_nodes also holds kilobytes of JSON per row).
VM_COLUMNS = {
    "compute_nodes": (
        "id",
        "host",
        "hypervisor_hostname",
        "vcpus",
        "memory_mb",
        "local_gb",
        "created_at",
        "updated_at",
        "deleted_at",
        "deleted",
    ),
    "services": ("id", "host", "binary", "disabled", "created_at", "updated_at", "deleted_at", "deleted"),
}


def columns_of(settings: SnapshotSettings) -> Dict[TableKey, Tuple[str, ...]]:
    """The columns a snapshot keeps of each table it reads."""
    if settings.instance_type == "vm":
        return {key: VM_COLUMNS[key[1]] for key in tables_of(settings)}
    return dict(BAREMETAL_COLUMNS)


def tables_of(settings: SnapshotSettings) -> Tuple[TableKey, ...]:
    """The tables a snapshot of ``settings``' site type reads."""
    if settings.instance_type == "vm":
        return tuple((db, table) for db in settings.nova_databases for table in VM_TABLES)
    if settings.instance_type == "baremetal":
        return BAREMETAL_TABLES
    raise ValueError(f"unknown instance type {settings.instance_type!r}")


# -- vm -----------------------------------------------------------------------------------------------


def rack_of(hostname: str, pattern: Optional["re.Pattern[str]"], group: Optional[int]) -> str:
    """The rack in ``hostname`` (config regex and group), ``UNKNOWN`` when not configured or no match."""
    if pattern is None or not group:
        return UNKNOWN_RACK
    m = pattern.search(hostname)
    if m is None:
        return UNKNOWN_RACK
    try:
        return m.group(group) or UNKNOWN_RACK
    except IndexError:
        return UNKNOWN_RACK


def vm_host_states(
    compute_nodes: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    settings: SnapshotSettings,
) -> List[HostState]:
    """Records of one Nova cell: each compute node row with a ``nova-compute`` service on its host.

    A live node's service is the host's live ``nova-compute`` row; with none live, the latest deleted one
    (the original's LEFT JOIN kept such hosts too). A soft-deleted node's service is the deleted row
    removed nearest its own ``deleted_at`` (Nova deletes both together), so that the record tells the
    node's last state, not that of a service registered after it; with no deleted service, the node has
    no state. A node with no ``nova-compute`` service at all is skipped.
    """
    pattern = re.compile(settings.hypervisor_hostname_regex) if settings.hypervisor_hostname_regex else None
    services_of: Dict[str, List[Mapping[str, Any]]] = {}
    for row in services:
        if as_text(row.get("binary")) != NOVA_COMPUTE or row.get("host") is None:
            continue
        services_of.setdefault(as_text(row["host"]) or "", []).append(row)
    states = []
    for row in compute_nodes:
        hostname = as_text(row.get("hypervisor_hostname"))
        candidates = services_of.get(as_text(row.get("host")) or "")
        if not hostname or not candidates:
            continue
        properties = (
            ("rack", rack_of(hostname, pattern, settings.rack_extract_group)),
            ("vcpu_capability", as_int(row.get("vcpus"))),
            ("memory_capability_mb", as_int(row.get("memory_mb"))),
            ("disk_capability_gb", as_int(row.get("local_gb"))),
        )
        deleted_at = (
            (as_datetime(row.get("deleted_at")) or as_datetime(row.get("updated_at")))
            if is_deleted(row)
            else None
        )
        service = _service_of(candidates, deleted_at)
        disabled = as_int(service.get("disabled")) if service is not None else None
        states.append(
            HostState(
                host=hostname,
                created_at=as_datetime(row.get("created_at")),
                updated_at=as_datetime(row.get("updated_at")),
                properties=properties,
                enabled=None if disabled is None else disabled != 1,
                status_at=(as_datetime(service.get("updated_at")) or as_datetime(service.get("created_at")))
                if service is not None
                else None,
                deleted_at=deleted_at,
                identity=identity_of(row),
                link=as_text(row.get("host")),
            )
        )
    return states


def _service_of(
    candidates: Sequence[Mapping[str, Any]], deleted_at: Optional[dt.datetime]
) -> Optional[Mapping[str, Any]]:
    """The service row whose state a node row has (see :func:`vm_host_states`)."""
    if deleted_at is None:
        return max(candidates, key=_service_rank)
    gone = [row for row in candidates if is_deleted(row)]
    if not gone:
        return None

    def distance(row: Mapping[str, Any]) -> Tuple:
        stamp = as_datetime(row.get("deleted_at")) or as_datetime(row.get("updated_at"))
        if stamp is None:
            return (True, dt.timedelta.max, 0)
        return (False, abs(stamp - deleted_at), -(as_int(row.get("id")) or 0))

    return min(gone, key=distance)


def _service_rank(row: Mapping[str, Any]) -> Tuple:
    live = not is_deleted(row)
    stamp = as_datetime(row.get("deleted_at")) or as_datetime(row.get("updated_at")) or dt.datetime.min
    return (live, stamp, as_int(row.get("id")) or 0)


def merge_records(states: Iterable[HostState]) -> Tuple[HostState, ...]:
    """At most one live record per host (the most recently created wins; logged), deleted ones kept."""
    live: Dict[str, HostState] = {}
    deleted: List[HostState] = []
    for state in states:
        if state.deleted:
            deleted.append(state)
            continue
        other = live.get(state.host)
        if other is not None:
            log.debug("host %s has two live records; keeping the most recently created", state.host)
            key = lambda s: (s.created_at or dt.datetime.min, s.updated_at or dt.datetime.min)  # noqa: E731
            if key(other) >= key(state):
                continue
        live[state.host] = state
    ordered = sorted(deleted, key=lambda s: (s.host, s.deleted_at or dt.datetime.min))
    ordered += sorted(live.values(), key=lambda s: s.host)
    return tuple(ordered)


# -- reading a dump -----------------------------------------------------------------------------------


def read_snapshot(backup: BackupFile, settings: SnapshotSettings, *, prefetch: bool = False) -> Snapshot:
    """Read one dump into a :class:`Snapshot`. Raises a :class:`DumpError` naming the file.

    Reading stops once the needed tables are read, unless the file name carries no time: then the
    whole dump is read for its ``-- Dump completed on`` trailer. ``prefetch``: decompress ahead in a
    thread (when a core would otherwise be idle).
    """
    wanted = tables_of(settings)
    need_trailer = backup.name_time is None
    # the log's tables this trace reads, only: a site auditing instance actions has millions more rows
    only = AUDIT_TABLES[settings.instance_type]
    audit = DumpLogCollector(backup.uri, keep=AUDIT_KEEP, only=only) if settings.audit_log else None
    reader = DumpReader(
        backup.uri,
        wanted + (tuple(audit_keys(only=only)) if audit is not None else ()),
        stop_early=not need_trailer,
        name=backup.uri,
        columns=columns_of(settings),
        prefetch=prefetch,
    )
    rows: Dict[TableKey, List[Dict[str, Any]]] = {key: [] for key in wanted}
    for db, table, row in reader:
        bucket = rows.get((db, table))
        if bucket is not None:
            bucket.append(row)
        elif audit is not None and db == AUDIT_DATABASE:
            audit.add(reader, table, row)
    info = reader.info
    seen = set(info.tables)
    columns = {key: schema.column_names for key, schema in reader.schemas.items()}
    detail: Dict[str, Any] = {
        "compression": info.compression,
        "decompressed_bytes": info.bytes_read,
        "stopped_early": info.stopped_early,
    }
    if settings.instance_type == "vm":
        records: List[HostState] = []
        cells = []
        for db in settings.nova_databases:
            if (db, "compute_nodes") not in seen:
                continue
            if (db, "services") not in seen:
                raise MissingTableError(
                    backup.uri, f"`{db}`.`compute_nodes` is there but `{db}`.`services` is not"
                )
            cells.append(db)
            records += vm_host_states(rows[(db, "compute_nodes")], rows[(db, "services")], settings)
        if not cells:
            raise MissingTableError(
                backup.uri,
                f"no `compute_nodes` table in any of the Nova databases {', '.join(settings.nova_databases)} "
                f"(databases in the dump: {', '.join(info.databases) or 'none'})",
            )
        detail["cells"] = cells
    else:
        for key in (NODES, COMPUTEHOSTS, CAPABILITIES):
            if key not in seen:
                raise MissingTableError(
                    backup.uri,
                    f"no `{key[0]}`.`{key[1]}` table (databases in the dump: {', '.join(info.databases) or 'none'})",
                )
        cap_columns = columns.get(CAPABILITIES) or (
            tuple(rows[CAPABILITIES][0]) if rows[CAPABILITIES] else ()
        )
        schema = blazar_schema(cap_columns)
        if schema is None and rows[CAPABILITIES]:
            raise DumpError(
                backup.uri, "`blazar`.`computehost_extra_capabilities` has no capability name column"
            )
        names_key = ("blazar", schema.names_table) if schema is not None and schema.names_table else None
        if names_key is not None and names_key not in seen:
            raise MissingTableError(
                backup.uri,
                f"`blazar`.`computehost_extra_capabilities` refers to `blazar`.`{names_key[1]}`, which is not in the dump",
            )
        names = capability_names(schema, rows[names_key] if names_key else ())
        records = baremetal_host_states(
            rows[NODES], rows[COMPUTEHOSTS], rows[CAPABILITIES], names, schema, settings
        )
        detail["blazar_schema"] = schema.name if schema is not None else None
        # what the audit log's capability rows may lack: their name (by the row's id), the names' ids
        detail["capability_rows"] = capability_rows(schema, rows[CAPABILITIES], names)
        detail["capability_names"] = names
    if backup.name_time is not None:
        time, source = backup.name_time, "name"
    elif info.completed_at is not None:
        time, source = info.completed_at, "trailer"
    elif backup.mtime is not None:
        time, source = backup.mtime, "mtime"
    else:
        raise DumpError(backup.uri, "no snapshot time: none in the name, no trailer, no modification time")
    return Snapshot(
        backup.uri,
        backup.name,
        time,
        source,
        merge_records(records),
        backup.size,
        detail,
        audit.finish(reader) if audit is not None else None,
    )
