"""Instance events from the ``openstack_audit`` log (SPEC §1.4): ``instances --source audit``.

The log holds a row per change of ``instances``, ``instance_actions`` and ``instance_actions_events``
(tables ``audit_nova_instances``, ``audit_nova_instance_actions``, ``audit_nova_instance_actions_events``;
a site audits the two action tables only with a recent role). Each row's ``data`` is the whole source
row after the change (before it, for a DELETE: an archived row), so the *latest* row per ``id`` is the
row's final state — an event's INSERT has no finish time, its UPDATE does (upstream StarCompactor kept
the INSERT rows only, and so lost every event written after the log was installed). Then the join and
the rules of SPEC §1.3, as the database path applies them: events without a finish time are left out
(unless asked for), ``--start``/``--end`` bound the action's ``created_at``, and ``HOST_NAME (PHYSICAL)``
is :func:`~starcompactor.instances.db.physical_host` of the instance's node, the event's host and the
instance's host.

Backfilled rows (the state when the role ran) are final states too: events finished before the log was
installed are there as long as their rows were (Nova's archive moves them away).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ..audit.records import AuditLog, json_time
from ..config import check_instance_type
from ..errors import AuditLogError
from ..events import InstanceEvent
from .hosts import physical_host

log = logging.getLogger(__name__)

INSTANCES = "nova_instances"
ACTIONS = "nova_instance_actions"
EVENTS = "nova_instance_actions_events"
TABLES = (INSTANCES, ACTIONS, EVENTS)


#: The ``data`` keys each table's final rows keep (an instance row carries ~50 columns).
KEEP = {
    INSTANCES: ("uuid", "hostname", "user_id", "project_id", "node", "host", "memory_mb", "root_gb", "vcpus"),
    ACTIONS: ("instance_uuid", "created_at"),
    EVENTS: ("action_id", "event", "start_time", "finish_time", "result", "host"),
}


def final_rows(
    audit: AuditLog, table: str, keys: Optional[Tuple[str, ...]] = None
) -> Dict[str, Mapping[str, Any]]:
    """``id`` → the ``data`` of the latest row (highest ``audit_id``) of ``audit_<table>``, cut to
    ``keys`` (default: :data:`KEEP`'s for the table, else all)."""
    keys = keys or KEEP.get(table)
    latest: Dict[str, Tuple[int, Mapping[str, Any]]] = {}
    for batch in audit.batches(table):
        for row in batch:
            key = row.id
            if key is None:
                continue
            seen = latest.get(key)
            if seen is None or row.audit_id > seen[0]:
                data = row.data
                latest[key] = (row.audit_id, {k: data.get(k) for k in keys} if keys else data)
    return {key: data for key, (_, data) in latest.items()}


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _int(value: Any) -> Optional[int]:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class AuditInstanceSource:
    """Instance events of an audit log, sorted by start time; iterate once (the log is read then).

    Raises :class:`~starcompactor.errors.AuditLogError` at construction when the log lacks any of the
    three tables (a site that does not audit actions).
    """

    def __init__(
        self,
        audit: AuditLog,
        *,
        start: Optional[dt.datetime] = None,
        end: Optional[dt.datetime] = None,
        instance_type: str = "vm",
        include_unfinished: bool = False,
    ) -> None:
        check_instance_type(instance_type)
        lacking = audit.lacks(*TABLES)
        if lacking:
            raise AuditLogError(
                audit.source,
                None,
                "no instance events: the audit log lacks "
                + ", ".join(f"audit_{t}" for t in lacking)
                + " (the site does not audit instance actions)",
            )
        self.audit = audit
        self.start = start
        self.end = end
        self.instance_type = instance_type
        self.include_unfinished = include_unfinished
        self.skipped_unfinished = 0
        self.without_instance = 0
        self.events = 0

    def __iter__(self) -> Iterator[InstanceEvent]:
        return iter(self.read())

    def read(self) -> List[InstanceEvent]:
        """Every event, in start-time order (ties: the event row's id, as the SQL orders them)."""
        instances = final_rows(self.audit, INSTANCES)
        by_uuid = {str(data.get("uuid")): data for data in instances.values() if data.get("uuid")}
        actions = final_rows(self.audit, ACTIONS)
        rows = final_rows(self.audit, EVENTS)
        vm = self.instance_type == "vm"
        made: List[Tuple[dt.datetime, int, InstanceEvent]] = []
        for event_id, event in rows.items():
            action = actions.get(_text(event.get("action_id")) or "")
            if action is None:
                self.without_instance += 1
                continue
            created = json_time(action.get("created_at"))
            if self.start is not None and (created is None or created < self.start):
                continue
            if self.end is not None and (created is None or created > self.end):
                continue
            instance = by_uuid.get(_text(action.get("instance_uuid")) or "")
            if instance is None:
                self.without_instance += 1
                continue
            finish = json_time(event.get("finish_time"))
            if finish is None and not self.include_unfinished:
                self.skipped_unfinished += 1
                continue
            start = json_time(event.get("start_time"))
            properties: Dict[str, Any] = (
                {
                    "memory_mb": _int(instance.get("memory_mb")),
                    "root_gb": _int(instance.get("root_gb")),
                    "vcpus": _int(instance.get("vcpus")),
                }
                if vm
                else {}
            )
            made.append(
                (
                    start or dt.datetime.min,
                    _int(event_id) or 0,
                    InstanceEvent(
                        instance_uuid=_text(instance.get("uuid")) or "",
                        event=_text(event.get("event")) or "",
                        start_time=start,
                        finish_time=finish,
                        result=_text(event.get("result")),
                        instance_name=_text(instance.get("hostname")),
                        user_id=_text(instance.get("user_id")),
                        project_id=_text(instance.get("project_id")),
                        host=physical_host(
                            _text(instance.get("node")), _text(event.get("host")), _text(instance.get("host"))
                        ),
                        properties=properties,
                    ),
                )
            )
        if self.without_instance:
            log.warning(
                "%s: %d event row(s) whose action or instance is not in the log left out",
                self.audit.source,
                self.without_instance,
            )
        made.sort(key=lambda item: (item[0], item[1]))
        self.events = len(made)
        return [event for _, _, event in made]

    def manifest_extra(self) -> Dict[str, Any]:
        return {
            "source": "audit",
            "window": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
            "include_unfinished": self.include_unfinished,
            "skipped_unfinished": self.skipped_unfinished,
            "without_instance": self.without_instance,
        }

    def inputs(self) -> List[Dict[str, Any]]:
        return [{"source": "openstack_audit", "location": self.audit.source, "form": self.audit.form}]


__all__ = ["AuditInstanceSource", "final_rows"]
