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
    if not keys:
        latest: Dict[Any, Tuple[int, Mapping[str, Any]]] = {}
        for batch in audit.batches(table):
            for row in batch:
                seen = latest.get(row.id)
                if row.id is not None and (seen is None or row.audit_id > seen[0]):
                    latest[row.id] = (row.audit_id, row.data)
        return {key: data for key, (_, data) in latest.items()}
    return {key: dict(zip(keys, values)) for key, values in final_values(audit, table, keys).items()}


def final_values(
    audit: AuditLog, table: str, keys: Tuple[str, ...], shared: Tuple[str, ...] = ()
) -> Dict[Any, Tuple[Any, ...]]:
    """``id`` → the values of ``keys`` in the latest row of ``audit_<table>``, as a tuple: a log of
    millions of event rows is held as tuples (~100 bytes each, not a dict's ~400), and the texts of the
    ``shared`` keys (event names, results, hosts: a few hundred distinct values) as one string each."""
    latest: Dict[Any, Tuple[int, Tuple[Any, ...]]] = {}
    texts: Dict[str, str] = {}
    share = [k in shared for k in keys]
    for batch in audit.batches(table):
        for row in batch:
            key = row.id
            if key is None:
                continue
            seen = latest.get(key)
            if seen is None or row.audit_id > seen[0]:
                data = row.data
                values = tuple(
                    texts.setdefault(v, v) if one and type(v) is str else v
                    for one, v in zip(share, map(data.get, keys))
                )
                latest[key] = (row.audit_id, values)
    return {key: values for key, (_, values) in latest.items()}


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
        return self._events()

    def read(self) -> List[InstanceEvent]:
        """Every event, in start-time order (ties: the event row's id, as the SQL orders them)."""
        return list(self._events())

    def _events(self) -> Iterator[InstanceEvent]:
        """The events, made one by one once their order is known: the log's final rows are held as
        tuples, an instance's fields and properties once per instance, and an event until it is made as
        a start time, an id and two references."""
        instance_keys = KEEP[INSTANCES]
        by_uuid: Dict[str, Tuple[Any, ...]] = {}
        for values in final_values(self.audit, INSTANCES, instance_keys).values():
            data = dict(zip(instance_keys, values))
            if not data.get("uuid"):
                continue
            properties: Dict[str, Any] = (
                {
                    "memory_mb": _int(data.get("memory_mb")),
                    "root_gb": _int(data.get("root_gb")),
                    "vcpus": _int(data.get("vcpus")),
                }
                if self.instance_type == "vm"
                else {}
            )
            by_uuid[str(data["uuid"])] = (
                _text(data.get("uuid")) or "",
                _text(data.get("hostname")),
                _text(data.get("user_id")),
                _text(data.get("project_id")),
                _text(data.get("node")),
                _text(data.get("host")),
                properties,
            )
        actions = final_values(self.audit, ACTIONS, KEEP[ACTIONS])  # instance_uuid, created_at
        rows = final_values(self.audit, EVENTS, KEEP[EVENTS], shared=("event", "result", "host"))
        order: List[Tuple[dt.datetime, int, Tuple[Any, ...], Tuple[Any, ...]]] = []
        for event_id, event in rows.items():
            action_id, _name, start_text, finish_text, _result, _host = event
            action = actions.get(_text(action_id) or "") if action_id is not None else None
            if action is None and action_id is not None:
                action = actions.get(action_id)  # ids kept as the log gives them (int or text)
            if action is None:
                self.without_instance += 1
                continue
            created = json_time(action[1])
            if self.start is not None and (created is None or created < self.start):
                continue
            if self.end is not None and (created is None or created > self.end):
                continue
            instance = by_uuid.get(_text(action[0]) or "")
            if instance is None:
                self.without_instance += 1
                continue
            if finish_text is None and not self.include_unfinished:
                self.skipped_unfinished += 1
                continue
            start = json_time(start_text)
            order.append((start or dt.datetime.min, _int(event_id) or 0, event, instance))
        del rows, actions
        if self.without_instance:
            log.warning(
                "%s: %d event row(s) whose action or instance is not in the log left out",
                self.audit.source,
                self.without_instance,
            )
        order.sort(key=lambda item: (item[0], item[1]))
        self.events = len(order)
        for start, _, event, instance in order:
            _, name, _, finish_text, result, host = event
            uuid, hostname, user, project, node, instance_host, properties = instance
            yield InstanceEvent(
                instance_uuid=uuid,
                event=_text(name) or "",
                start_time=None if start == dt.datetime.min else start,
                finish_time=json_time(finish_text),
                result=_text(result),
                instance_name=hostname,
                user_id=user,
                project_id=project,
                host=physical_host(node, _text(host), instance_host),
                properties=properties,
            )

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


__all__ = ["AuditInstanceSource", "final_rows", "final_values"]
