"""The state of physical hosts, as one dump shows it: the records the events of SPEC §2 come from.

Workers send snapshots, not rows, back to the parent: a few hundred small frozen :class:`HostState`
records per dump, whatever the size of the dump. The value helpers read columns typed by the reader, or
still text when a dump had no ``CREATE TABLE``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Set, Tuple

from ..audit.dumps import DumpLog
from ..times import as_datetime

Properties = Tuple[Tuple[str, Any], ...]
#: A row's identity: (source row id as text, created_at); None when the dump does not tell.
Identity = Optional[Tuple[Optional[str], Optional[dt.datetime]]]


@dataclass(frozen=True)
class HostState:
    """One host record of one snapshot: what the events of SPEC §2 are derived from.

    ``properties`` is a tuple of ``(name, value)`` pairs in output order (hashable, picklable).
    A record with ``deleted_at`` set is a soft-deleted row: it contributes its CREATE, its DELETE and
    its last state before the deletion. ``identity`` tells one row of a host key from another (vm:
    ``compute_nodes.id`` and ``created_at``; bare metal: the Blazar host's ``id`` and ``created_at``): a
    host missing from one snapshot and back later with the same identity was never deleted, and the
    audit log's rows name their host by it.
    """

    host: str
    created_at: Optional[dt.datetime]
    updated_at: Optional[dt.datetime]  #: when the properties last changed (the UPDATE time)
    properties: Properties
    enabled: Optional[bool] = None  #: None when no service/node says
    status_at: Optional[dt.datetime] = None  #: when ``enabled`` was last written
    deleted_at: Optional[dt.datetime] = None
    identity: Identity = None
    link: Optional[str] = None  #: what the status rows join on (vm: ``compute_nodes.host``)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


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
    #: the dump's ``openstack_audit`` tables, when the settings asked for them (read in the same pass)
    audit: Optional[DumpLog] = field(default=None, compare=False, repr=False)

    def present(self) -> Set[str]:
        """Host keys this snapshot shows (live or soft-deleted): a host missing later was deleted."""
        return {h.host for h in self.hosts}

    def identities(self) -> Dict[str, Set[Tuple[Optional[str], Optional[dt.datetime]]]]:
        """Host key → the identities of its records in this snapshot (those that have one)."""
        out: Dict[str, Set[Tuple[Optional[str], Optional[dt.datetime]]]] = {}
        for h in self.hosts:
            if h.identity is not None:
                out.setdefault(h.host, set()).add(h.identity)
        return out


@dataclass(frozen=True)
class SnapshotSettings:
    """What a worker needs to turn a dump into a snapshot (small and picklable)."""

    instance_type: str = "vm"
    nova_databases: Tuple[str, ...] = ("nova", "nova_cell0")
    hypervisor_hostname_regex: Optional[str] = None
    rack_extract_group: Optional[int] = None
    baremetal_properties: Tuple[str, ...] = ()
    #: also read the dump's ``openstack_audit`` tables (into :attr:`Snapshot.audit`)
    audit_log: bool = False

    @classmethod
    def from_config(cls, config: Any, instance_type: str) -> SnapshotSettings:
        return cls(
            instance_type=instance_type,
            nova_databases=tuple(config.nova_databases),
            hypervisor_hostname_regex=config.hypervisor_hostname_regex,
            rack_extract_group=config.rack_extract_group,
            baremetal_properties=tuple(config.baremetal_properties),
        )


#: The audit tables (without ``audit_``) each site type's machine trace reads: a machines run reads these
#: only, however many others (instance actions: millions of rows) the site audits.
AUDIT_TABLES: Dict[str, Tuple[str, ...]] = {
    "vm": ("nova_compute_nodes", "nova_services"),
    "baremetal": (
        "blazar_computehosts",
        "blazar_computehost_extra_capabilities",
        "ironic_nodes",
        "blazar_resource_properties",
        "blazar_extra_capabilities",
    ),
}

#: The ``data`` keys each table's rows are kept with: a compute node row carries ~25 columns, and a log
#: is read whole before its rows are sorted per host.
AUDIT_KEEP: Dict[str, Tuple[str, ...]] = {
    "nova_compute_nodes": (
        "hypervisor_hostname",
        "host",
        "vcpus",
        "memory_mb",
        "local_gb",
        "created_at",
        "deleted_at",
    ),
    "nova_services": ("host", "binary", "disabled", "created_at", "deleted_at"),
    "blazar_computehosts": ("hypervisor_hostname", "created_at", "deleted_at"),
    "blazar_computehost_extra_capabilities": (
        "computehost_id",
        "capability_value",
        "capability_name",
        "property_id",
        "capability_id",
        "created_at",
        "deleted_at",
    ),
    "ironic_nodes": ("uuid", "maintenance", "created_at"),
    "blazar_resource_properties": ("property_name",),
    "blazar_extra_capabilities": ("capability_name",),
}


# -- value helpers ------------------------------------------------------------------------------------


def as_int(value: Any) -> Any:
    """An integer column's value (text when the dump had no CREATE TABLE); other text stays as it is."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def as_text(value: Any) -> Optional[str]:
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


def identity_of(row: Mapping[str, Any]) -> Identity:
    """A source row's identity (its ``id`` as text, its ``created_at``); None without an id."""
    row_id = as_text(row.get("id"))
    return None if row_id is None else (row_id, as_datetime(row.get("created_at")))


def latest(times: Iterable[Optional[dt.datetime]]) -> Optional[dt.datetime]:
    present = [t for t in times if t is not None]
    return max(present) if present else None
