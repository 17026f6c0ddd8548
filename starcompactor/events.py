"""The records a trace is made of, shared by every stage from diffing or querying to writing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, NamedTuple, Optional

#: Tie-break order of machine events at the same time (SPEC §2).
EVENT_ORDER = {"CREATE": 0, "DELETE": 1, "DISABLE": 2, "ENABLE": 3, "UPDATE": 4}


@dataclass(frozen=True)
class MachineEvent:
    """One event in the life of a physical host. ``host`` is the unmasked host key until masking."""

    time: dt.datetime
    host: str
    event: str
    properties: Dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def sort_key(self) -> tuple:
        return (self.time, self.host, EVENT_ORDER.get(self.event, 9))


class InstanceEvent(NamedTuple):
    """One ``instance_actions_events`` row (or its API equivalent).

    A named tuple rather than a dataclass: the database path makes millions of them, and a tuple is
    built and read several times faster. Treat ``properties`` as read-only (the default is shared).
    """

    instance_uuid: str
    event: str
    start_time: Optional[dt.datetime]
    finish_time: Optional[dt.datetime]
    result: Optional[str]
    instance_name: Optional[str]
    user_id: Optional[str]
    project_id: Optional[str]
    host: Optional[str]
    properties: Dict[str, Any] = {}  # noqa: RUF012 - shared, never mutated
