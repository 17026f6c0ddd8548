"""Bare metal: Ironic ``nodes`` joined to Blazar ``computehosts`` and their extra capabilities (SPEC §1.2).

Where a capability's *name* lives differs between the Blazar schemas found in the field; each is one row
of :data:`BLAZAR_LAYOUTS`, detected from the dump's own columns of ``computehost_extra_capabilities``:

* old Blazar: the name is ``capability_name`` on the capability row itself;
* Chameleon's fork (2020–2024): ``capability_id`` → ``extra_capabilities.capability_name``;
* upstream since 2020 (and Chameleon's fork since 2024): ``property_id`` →
  ``resource_properties.property_name``.

A fourth schema is one more row here (and a fixture history in tests/fixtures/machines/).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..dump import TableKey
from ..times import as_datetime
from .state import HostState, SnapshotSettings, as_int, as_text, identity_of, is_deleted, latest


@dataclass(frozen=True)
class BlazarLayout:
    """One Blazar schema: how a capability row names its capability.

    ``name`` is how snapshots report the layout; ``detect`` the column of ``computehost_extra_capabilities``
    that only this layout has; ``id_column`` the column holding the name's id (None: the name is on the row,
    in ``detect``); ``names_table``/``names_column`` where an id's name is.
    """

    name: str
    detect: str
    id_column: Optional[str] = None
    names_table: Optional[str] = None
    names_column: Optional[str] = None

    def capability_name(self, row: Mapping[str, Any], names: Mapping[str, str]) -> Optional[str]:
        """The name of the capability ``row`` sets (``names``: id → name, from :attr:`names_table`)."""
        if self.id_column is None:
            return as_text(row.get(self.detect))
        return names.get(as_text(row.get(self.id_column)) or "")


BLAZAR_OLD = BlazarLayout("capability_name", detect="capability_name")
BLAZAR_CHAMELEON = BlazarLayout(
    "extra_capabilities", "capability_id", "capability_id", "extra_capabilities", "capability_name"
)
BLAZAR_UPSTREAM = BlazarLayout(
    "resource_properties", "property_id", "property_id", "resource_properties", "property_name"
)
#: Every Blazar schema known, tried in this order.
BLAZAR_LAYOUTS: Tuple[BlazarLayout, ...] = (BLAZAR_OLD, BLAZAR_CHAMELEON, BLAZAR_UPSTREAM)

NODES: TableKey = ("ironic", "nodes")
COMPUTEHOSTS: TableKey = ("blazar", "computehosts")
CAPABILITIES: TableKey = ("blazar", "computehost_extra_capabilities")

#: Tables a bare-metal snapshot reads: the three it needs, and every layout's names table.
BAREMETAL_TABLES: Tuple[TableKey, ...] = (NODES, COMPUTEHOSTS, CAPABILITIES) + tuple(
    dict.fromkeys(("blazar", layout.names_table) for layout in BLAZAR_LAYOUTS if layout.names_table)
)


_SOFT_DELETE = ("deleted", "deleted_at")

#: The columns a bare-metal snapshot reads of each table (the rest is converted to nothing).
BAREMETAL_COLUMNS: Dict[TableKey, Tuple[str, ...]] = {
    NODES: ("id", "uuid", "maintenance", "created_at", "updated_at"),
    COMPUTEHOSTS: ("id", "hypervisor_hostname", "created_at", "updated_at", *_SOFT_DELETE),
    CAPABILITIES: (
        ("id", "computehost_id", "capability_value", "created_at", "updated_at", *_SOFT_DELETE)
        + tuple(dict.fromkeys(c for layout in BLAZAR_LAYOUTS for c in (layout.detect, layout.id_column) if c))
    ),
    **{
        ("blazar", layout.names_table): ("id", layout.names_column, *_SOFT_DELETE)
        for layout in BLAZAR_LAYOUTS
        if layout.names_table and layout.names_column
    },
}


def blazar_schema(columns: Iterable[str]) -> Optional[BlazarLayout]:
    """Which Blazar layout ``computehost_extra_capabilities`` has, from its column names."""
    names = set(columns)
    for layout in BLAZAR_LAYOUTS:
        if layout.detect in names:
            return layout
    return None


def capability_names(layout: Optional[BlazarLayout], rows: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
    """id → name of the live rows of ``layout``'s names table (empty for a layout without one)."""
    names: Dict[str, str] = {}
    if layout is None or layout.names_column is None:
        return names
    for row in rows:
        if not is_deleted(row) and row.get("id") is not None:
            names[as_text(row["id"]) or ""] = as_text(row.get(layout.names_column)) or ""
    return names


def capability_rows(
    layout: Optional[BlazarLayout], rows: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> Dict[str, str]:
    """Capability row id → capability name: what names an audit-log capability row whose ``data`` lacks
    the layout's name column (the role's lists fit none of the schemas exactly)."""
    out: Dict[str, str] = {}
    if layout is None:
        return out
    for row in rows:
        row_id = as_text(row.get("id"))
        name = layout.capability_name(row, names)
        if row_id is not None and name:
            out[row_id] = name
    return out


def baremetal_host_states(
    nodes: Sequence[Mapping[str, Any]],
    computehosts: Sequence[Mapping[str, Any]],
    capabilities: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    schema: Optional[BlazarLayout],
    settings: SnapshotSettings,
) -> List[HostState]:
    """Records of one bare-metal site. ``names`` maps a capability id to its name (for the newer schemas).

    Soft-deleted Blazar rows (Chameleon's fork) are gone for the state; a soft-deleted host keeps a
    record with ``deleted_at`` so it yields its DELETE at that time.
    """
    wanted = settings.baremetal_properties
    node_of: Dict[str, Mapping[str, Any]] = {}
    for row in nodes:
        uuid = as_text(row.get("uuid"))
        if uuid:
            node_of[uuid] = row
    caps_of: Dict[str, Dict[str, Tuple[Any, Optional[dt.datetime]]]] = {}
    removed_at: Dict[str, List[dt.datetime]] = {}
    for cap in capabilities:
        host_id = as_text(cap.get("computehost_id"))
        if host_id is None:
            continue
        name = schema.capability_name(cap, names) if schema is not None else None
        if name is None or name not in wanted:
            continue
        if is_deleted(cap):
            stamp = as_datetime(cap.get("deleted_at"))
            if stamp is not None:
                removed_at.setdefault(host_id, []).append(stamp)
            continue
        changed = latest((as_datetime(cap.get("created_at")), as_datetime(cap.get("updated_at"))))
        caps_of.setdefault(host_id, {})[name] = (as_text(cap.get("capability_value")), changed)
    states = []
    for host in computehosts:
        uuid = as_text(host.get("hypervisor_hostname"))
        node = node_of.get(uuid or "")
        deleted = is_deleted(host)
        if not uuid or (node is None and not deleted):
            continue  # a soft-deleted host whose node is gone too still tells when it was removed
        host_id = as_text(host.get("id")) or ""
        caps = caps_of.get(host_id, {})
        properties = tuple((name, caps[name][0]) for name in wanted if name in caps)
        maintenance = as_int(node.get("maintenance")) if node is not None else None
        states.append(
            HostState(
                host=uuid,
                created_at=as_datetime(host.get("created_at")),
                updated_at=latest([c[1] for c in caps.values()] + list(removed_at.get(host_id, []))),
                properties=properties,
                enabled=None if maintenance is None else maintenance != 1,
                status_at=(as_datetime(node.get("updated_at")) or as_datetime(node.get("created_at")))
                if node is not None
                else None,
                deleted_at=(as_datetime(host.get("deleted_at")) or as_datetime(host.get("updated_at")))
                if deleted
                else None,
                identity=identity_of(host),
            )
        )
    return states
