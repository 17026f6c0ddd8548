"""The output record of each event: the trace's columns with typed values (SPEC §3).

Shared by every writer: csv and jsonl turn a record into text, parquet into typed columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

import orjson

from ..events import InstanceEvent, MachineEvent
from ..times import seconds_since

MACHINE_COLUMNS = ("EVENT_TIME", "EVENT_TIME_SEC", "HOST_NAME (PHYSICAL)", "EVENT", "PROPERTIES")
INSTANCE_COLUMNS = (
    "INSTANCE_UUID",
    "EVENT",
    "START_TIME",
    "START_SEC",
    "FINISH_TIME",
    "FINISH_SEC",
    "EVENT_DURATION",
    "RESULT",
    "INSTANCE_NAME",
    "USER_ID",
    "PROJECT_ID",
    "HOST_NAME (PHYSICAL)",
    "PROPERTIES",
)


#: Columns of each kind of trace.
COLUMNS = {"machine": MACHINE_COLUMNS, "instance": INSTANCE_COLUMNS}


def number(value: Optional[float]) -> Any:
    """Whole seconds as int (``852658``), fractions as float."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def iso(time: Optional[dt.datetime]) -> Optional[str]:
    return time.isoformat() if time is not None else None


def json_default(value: Any) -> Any:
    """What orjson cannot write by itself: decimals (as numbers) and bytes (as text)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def properties_json(properties: Dict[str, Any]) -> str:
    return orjson.dumps(properties, default=json_default).decode("utf-8")


def machine_record(event: MachineEvent, epoch: dt.datetime) -> Dict[str, Any]:
    """The typed output record of a machine event (keys are the output columns)."""
    return {
        "EVENT_TIME": event.time,
        "EVENT_TIME_SEC": number(seconds_since(event.time, epoch)),
        "HOST_NAME (PHYSICAL)": event.host,
        "EVENT": event.event,
        "PROPERTIES": event.properties,
    }


def instance_record(event: InstanceEvent, epoch: dt.datetime) -> Dict[str, Any]:
    duration = None
    if event.start_time is not None and event.finish_time is not None:
        duration = (event.finish_time - event.start_time).total_seconds()
    return {
        "INSTANCE_UUID": event.instance_uuid,
        "EVENT": event.event,
        "START_TIME": event.start_time,
        "START_SEC": number(seconds_since(event.start_time, epoch)),
        "FINISH_TIME": event.finish_time,
        "FINISH_SEC": number(seconds_since(event.finish_time, epoch)),
        "EVENT_DURATION": number(duration),
        "RESULT": event.result,
        "INSTANCE_NAME": event.instance_name,
        "USER_ID": event.user_id,
        "PROJECT_ID": event.project_id,
        "HOST_NAME (PHYSICAL)": event.host,
        "PROPERTIES": event.properties,
    }
