"""The one rule for ``HOST_NAME (PHYSICAL)`` of an instance event (SPEC §1.3), for every source.

The machine trace keys hosts by ``compute_nodes.hypervisor_hostname`` (VMs) or the Ironic node uuid (bare
metal), which is what ``instances.node`` holds: so that the two traces join, the host of an event is

1. the instance's ``node`` (non-empty);
2. else the event's own ``instance_actions_events.host`` — the service that handled that event (a
   compute host, a conductor): an instance that never landed, or whose failed build cleared its host,
   has no node, but its events say where they ran;
3. else ``instances.host`` (what the original tool published), so that the cell is never empty while any
   column names a host.

:func:`physical_host` applies it to values; :func:`physical_host_sql` writes it for a query, so a
database and an archive give the same host for the same rows.
"""

from __future__ import annotations

from typing import Any, Optional

#: The columns the rule reads, first that is non-empty wins.
HOST_COLUMNS = ("instances.node", "instance_actions_events.host", "instances.host")


def physical_host(node: Any, event_host: Any, instance_host: Any) -> Optional[Any]:
    """The host of an event: ``node``, else ``event_host``, else ``instance_host`` as it is (None or '')."""
    return node or event_host or instance_host


def physical_host_sql(instance: str = "i", event: str = "iae") -> str:
    """:func:`physical_host` as a SQL expression over the aliases of ``instances`` and
    ``instance_actions_events``."""
    return f"COALESCE(NULLIF({instance}.`node`, ''), NULLIF({event}.`host`, ''), {instance}.`host`)"


__all__ = ["HOST_COLUMNS", "physical_host", "physical_host_sql"]
