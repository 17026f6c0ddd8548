"""One dump → one snapshot: the state of every physical host at the time of the dump (SPEC §1.2).

Workers send snapshots, not rows, back to the parent: a few hundred small frozen :class:`HostState`
records per dump, whatever the size of the dump.

* **vm**: for every Nova cell database, ``compute_nodes`` joined to its ``nova-compute`` service on
  ``host``. A host key (``hypervisor_hostname``) can have a live row and soft-deleted rows beside it;
  each row becomes one record, the deleted ones with ``deleted_at`` set.
* **baremetal**: Ironic ``nodes`` joined to Blazar ``computehosts`` on ``nodes.uuid =
  computehosts.hypervisor_hostname``, plus the host's extra capabilities. Where the capability *name*
  lives depends on the Blazar schema of the dump, detected from the dump's own columns:
  ``capability_name`` (old Blazar), ``capability_id`` → ``extra_capabilities`` (Chameleon's fork,
  2020–2024) or ``property_id`` → ``resource_properties`` (upstream since 2020).
  A host is present when its Ironic node and its live Blazar host are; capabilities are optional.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .backups import BackupFile
from .errors import DumpError, MissingTableError
from .statements import DumpReader, TableKey

log = logging.getLogger(__name__)

Properties = Tuple[Tuple[str, Any], ...]

VM_PROPERTIES = ("rack", "vcpu_capability", "memory_capability_mb", "disk_capability_gb")
UNKNOWN_RACK = "UNKNOWN"
NOVA_COMPUTE = "nova-compute"

BLAZAR_OLD = "capability_name"
BLAZAR_CHAMELEON = "extra_capabilities"
BLAZAR_UPSTREAM = "resource_properties"

BAREMETAL_TABLES: Tuple[TableKey, ...] = (
    ("ironic", "nodes"),
    ("blazar", "computehosts"),
    ("blazar", "computehost_extra_capabilities"),
    ("blazar", "extra_capabilities"),
    ("blazar", "resource_properties"),
)


@dataclass(frozen=True)
class HostState:
    """One host record of one snapshot: what the events of SPEC §2 are derived from.

    ``properties`` is a tuple of ``(name, value)`` pairs in output order (hashable, picklable).
    A record with ``deleted_at`` set is a soft-deleted row: it contributes CREATE and DELETE only.
    """

    host: str
    created_at: Optional[dt.datetime]
    updated_at: Optional[dt.datetime]  #: when the properties last changed (the UPDATE time)
    properties: Properties
    enabled: Optional[bool] = None  #: None when no service/node says
    status_at: Optional[dt.datetime] = None  #: when ``enabled`` was last written
    deleted_at: Optional[dt.datetime] = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def properties_dict(self) -> Dict[str, Any]:
        return dict(self.properties)


@dataclass(frozen=True)
class Snapshot:
    """The hosts of one dump, and where and when the dump was taken."""

    uri: str
    name: str
    time: dt.datetime  #: naive UTC
    time_source: str  #: "name", "trailer" or "mtime"
    hosts: Tuple[HostState, ...]
    size: Optional[int] = None
    detail: Dict[str, Any] = field(default_factory=dict, compare=False)

    def present(self) -> Set[str]:
        """Host keys this snapshot shows (live or soft-deleted): a host missing later was deleted."""
        return {h.host for h in self.hosts}


@dataclass(frozen=True)
class SnapshotSettings:
    """What a worker needs to turn a dump into a snapshot (small and picklable)."""

    instance_type: str = "vm"
    nova_databases: Tuple[str, ...] = ("nova", "nova_cell0")
    hypervisor_hostname_regex: Optional[str] = None
    rack_extract_group: Optional[int] = None
    baremetal_properties: Tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Any, instance_type: str) -> SnapshotSettings:
        return cls(
            instance_type=instance_type,
            nova_databases=tuple(config.nova_databases),
            hypervisor_hostname_regex=config.hypervisor_hostname_regex,
            rack_extract_group=config.rack_extract_group,
            baremetal_properties=tuple(config.baremetal_properties),
        )

    def tables(self) -> Tuple[TableKey, ...]:
        if self.instance_type == "vm":
            return tuple((db, t) for db in self.nova_databases for t in ("compute_nodes", "services"))
        if self.instance_type == "baremetal":
            return BAREMETAL_TABLES
        raise ValueError(f"unknown instance type {self.instance_type!r}")


# -- value helpers ------------------------------------------------------------------------------------


def _time(value: Any) -> Optional[dt.datetime]:
    """A DATETIME column value (typed by the reader, or text when the dump had no CREATE TABLE)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip()
    if not text or text.startswith("0000"):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        return None


def _int(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def is_deleted(row: Mapping[str, Any]) -> bool:
    """Soft-deleted: ``deleted`` set (Nova: = id; Chameleon's Blazar: varchar), else ``deleted_at`` set."""
    if "deleted" in row:
        flag = row["deleted"]
        if isinstance(flag, bytes):
            flag = flag.decode("ascii", "replace")
        return flag not in (None, 0, "0", "", False)
    return row.get("deleted_at") is not None


def _latest(times: Iterable[Optional[dt.datetime]]) -> Optional[dt.datetime]:
    present = [t for t in times if t is not None]
    return max(present) if present else None


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

    The service of a host is its live ``nova-compute`` row; with none live, the latest deleted one
    (the original's LEFT JOIN kept such hosts too). A node with no ``nova-compute`` service is skipped.
    """
    pattern = re.compile(settings.hypervisor_hostname_regex) if settings.hypervisor_hostname_regex else None
    service_of: Dict[str, Mapping[str, Any]] = {}
    for row in services:
        if _text(row.get("binary")) != NOVA_COMPUTE or row.get("host") is None:
            continue
        host = _text(row["host"]) or ""
        current = service_of.get(host)
        if current is None or _service_rank(row) > _service_rank(current):
            service_of[host] = row
    states = []
    for row in compute_nodes:
        hostname = _text(row.get("hypervisor_hostname"))
        service = service_of.get(_text(row.get("host")) or "")
        if not hostname or service is None:
            continue
        properties = (
            ("rack", rack_of(hostname, pattern, settings.rack_extract_group)),
            ("vcpu_capability", _int(row.get("vcpus"))),
            ("memory_capability_mb", _int(row.get("memory_mb"))),
            ("disk_capability_gb", _int(row.get("local_gb"))),
        )
        deleted = is_deleted(row)
        disabled = _int(service.get("disabled"))
        states.append(
            HostState(
                host=hostname,
                created_at=_time(row.get("created_at")),
                updated_at=_time(row.get("updated_at")),
                properties=properties,
                enabled=None if disabled is None else disabled != 1,
                status_at=_time(service.get("updated_at")) or _time(service.get("created_at")),
                deleted_at=(_time(row.get("deleted_at")) or _time(row.get("updated_at")))
                if deleted
                else None,
            )
        )
    return states


def _service_rank(row: Mapping[str, Any]) -> Tuple:
    live = not is_deleted(row)
    stamp = _time(row.get("deleted_at")) or _time(row.get("updated_at")) or dt.datetime.min
    return (live, stamp, _int(row.get("id")) or 0)


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


# -- bare metal ---------------------------------------------------------------------------------------


def blazar_schema(columns: Iterable[str]) -> Optional[str]:
    """Which Blazar layout ``computehost_extra_capabilities`` has, from its column names."""
    names = set(columns)
    if "capability_name" in names:
        return BLAZAR_OLD
    if "capability_id" in names:
        return BLAZAR_CHAMELEON
    if "property_id" in names:
        return BLAZAR_UPSTREAM
    return None


def baremetal_host_states(
    nodes: Sequence[Mapping[str, Any]],
    computehosts: Sequence[Mapping[str, Any]],
    capabilities: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    schema: Optional[str],
    settings: SnapshotSettings,
) -> List[HostState]:
    """Records of one bare-metal site. ``names`` maps a capability id to its name (for the newer schemas).

    Soft-deleted Blazar rows (Chameleon's fork) are gone for the state; a soft-deleted host keeps a
    record with ``deleted_at`` so it yields its DELETE at that time.
    """
    wanted = settings.baremetal_properties
    node_of = {}
    for node in nodes:
        uuid = _text(node.get("uuid"))
        if uuid:
            node_of[uuid] = node
    caps_of: Dict[str, Dict[str, Tuple[Any, Optional[dt.datetime]]]] = {}
    removed_at: Dict[str, List[dt.datetime]] = {}
    for cap in capabilities:
        host_id = _text(cap.get("computehost_id"))
        if host_id is None:
            continue
        if schema == BLAZAR_OLD:
            name = _text(cap.get("capability_name"))
        elif schema == BLAZAR_CHAMELEON:
            name = names.get(_text(cap.get("capability_id")) or "")
        else:
            name = names.get(_text(cap.get("property_id")) or "")
        if name is None or name not in wanted:
            continue
        if is_deleted(cap):
            stamp = _time(cap.get("deleted_at"))
            if stamp is not None:
                removed_at.setdefault(host_id, []).append(stamp)
            continue
        changed = _latest((_time(cap.get("created_at")), _time(cap.get("updated_at"))))
        caps_of.setdefault(host_id, {})[name] = (_text(cap.get("capability_value")), changed)
    states = []
    for host in computehosts:
        uuid = _text(host.get("hypervisor_hostname"))
        node = node_of.get(uuid or "")
        if node is None or not uuid:
            continue
        host_id = _text(host.get("id")) or ""
        caps = caps_of.get(host_id, {})
        properties = tuple((name, caps[name][0]) for name in wanted if name in caps)
        maintenance = _int(node.get("maintenance"))
        deleted = is_deleted(host)
        states.append(
            HostState(
                host=uuid,
                created_at=_time(host.get("created_at")),
                updated_at=_latest([c[1] for c in caps.values()] + removed_at.get(host_id, [])),
                properties=properties,
                enabled=None if maintenance is None else maintenance != 1,
                status_at=_time(node.get("updated_at")) or _time(node.get("created_at")),
                deleted_at=(_time(host.get("deleted_at")) or _time(host.get("updated_at")))
                if deleted
                else None,
            )
        )
    return states


# -- reading a dump -----------------------------------------------------------------------------------


def read_snapshot(backup: BackupFile, settings: SnapshotSettings) -> Snapshot:
    """Read one dump into a :class:`Snapshot`. Raises a :class:`DumpError` naming the file.

    Reading stops once the needed tables are read, unless the file name carries no time: then the
    whole dump is read for its ``-- Dump completed on`` trailer.
    """
    wanted = settings.tables()
    need_trailer = backup.name_time is None
    reader = DumpReader(backup.uri, wanted, stop_early=not need_trailer, name=backup.uri)
    rows: Dict[TableKey, List[Dict[str, Any]]] = {key: [] for key in wanted}
    for db, table, row in reader:
        bucket = rows.get((db, table))
        if bucket is not None:
            bucket.append(row)
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
        for key in BAREMETAL_TABLES[:3]:
            if key not in seen:
                raise MissingTableError(
                    backup.uri,
                    f"no `{key[0]}`.`{key[1]}` table (databases in the dump: {', '.join(info.databases) or 'none'})",
                )
        caps_key = ("blazar", "computehost_extra_capabilities")
        cap_columns = columns.get(caps_key) or (tuple(rows[caps_key][0]) if rows[caps_key] else ())
        schema = blazar_schema(cap_columns)
        if schema is None and rows[caps_key]:
            raise DumpError(
                backup.uri, "`blazar`.`computehost_extra_capabilities` has no capability name column"
            )
        names: Dict[str, str] = {}
        if schema in (BLAZAR_CHAMELEON, BLAZAR_UPSTREAM):
            table = "extra_capabilities" if schema == BLAZAR_CHAMELEON else "resource_properties"
            column = "capability_name" if schema == BLAZAR_CHAMELEON else "property_name"
            if ("blazar", table) not in seen:
                raise MissingTableError(
                    backup.uri,
                    f"`blazar`.`computehost_extra_capabilities` refers to `blazar`.`{table}`, which is not in the dump",
                )
            for row in rows[("blazar", table)]:
                if not is_deleted(row) and row.get("id") is not None:
                    names[_text(row["id"]) or ""] = _text(row.get(column)) or ""
        records = baremetal_host_states(
            rows[("ironic", "nodes")],
            rows[("blazar", "computehosts")],
            rows[caps_key],
            names,
            schema,
            settings,
        )
        detail["blazar_schema"] = schema
    if backup.name_time is not None:
        time, source = backup.name_time, "name"
    elif info.completed_at is not None:
        time, source = info.completed_at, "trailer"
    elif backup.mtime is not None:
        time, source = backup.mtime, "mtime"
    else:
        raise DumpError(backup.uri, "no snapshot time: none in the name, no trailer, no modification time")
    return Snapshot(backup.uri, backup.name, time, source, merge_records(records), backup.size, detail)
