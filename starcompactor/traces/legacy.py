"""The original tool's csv rows, byte for byte (``legacy-csv``).

PROPERTIES as a Python dict repr, missing values as ``None``, ``*_SEC`` as floats; the writer adds the
excel dialect's CRLF. Consumers parse these files with ``eval()``, so nothing here may change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Optional

from ..events import InstanceEvent, MachineEvent
from ..times import seconds_since


def legacy_machine_row(event: MachineEvent, epoch: dt.datetime, rack_key: Optional[str]) -> List[str]:
    seconds = seconds_since(event.time, epoch, clamp=False)
    seconds_text = "-1" if seconds is not None and seconds < 0 else str(seconds)
    properties = dict(event.properties)
    if rack_key and rack_key not in properties:
        properties[rack_key] = None  # the original's ordered mask set it on every row
    return [legacy_str(event.time), seconds_text, event.host, event.event, repr(properties)]


def legacy_instance_row(event: InstanceEvent, epoch: dt.datetime) -> List[str]:
    start = seconds_since(event.start_time, epoch, clamp=False)
    finish = seconds_since(event.finish_time, epoch, clamp=False)
    duration = None
    if event.start_time is not None and event.finish_time is not None:
        duration = (event.finish_time - event.start_time).total_seconds()
    return [
        legacy_str(event.instance_uuid),
        legacy_str(event.event),
        legacy_str(event.start_time),
        str(start),
        legacy_str(event.finish_time),
        str(finish),
        str(duration),
        legacy_str(event.result),
        legacy_str(event.instance_name),
        legacy_str(event.user_id),
        legacy_str(event.project_id),
        legacy_str(event.host),
        repr(dict(event.properties)),
    ]


def legacy_str(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
