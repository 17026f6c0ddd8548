"""Instance events as lines of text, the fast way: one implementation of each line format.

The instance trace can have tens of millions of rows, so its csv lines are made without ``csv.writer``
(:func:`instance_csv_lines`), and the database path formats rows without making events of them
(:func:`instance_line_maker`); the writers use the same functions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Callable, Dict, List, Optional, Tuple

import orjson

from ..events import InstanceEvent
from ..times import EpochClock
from .legacy import legacy_instance_row
from .records import instance_record, json_default, properties_json


def csv_instance_row(event: InstanceEvent, epoch: dt.datetime) -> List[Any]:
    """The csv row of :func:`instance_record`, built directly (this runs per event, millions of times)."""
    start = event.start_time
    finish = event.finish_time
    if start is not None:
        start_sec: Any = (start - epoch).total_seconds()
        start_sec = -1 if start_sec < 0 else int(start_sec) if start_sec.is_integer() else start_sec
        start_text = start.isoformat()
    else:
        start_sec = start_text = ""
    if finish is not None:
        finish_sec: Any = (finish - epoch).total_seconds()
        finish_sec = -1 if finish_sec < 0 else int(finish_sec) if finish_sec.is_integer() else finish_sec
        finish_text = finish.isoformat()
    else:
        finish_sec = finish_text = ""
    if start is not None and finish is not None:
        duration: Any = (finish - start).total_seconds()
        if duration.is_integer():
            duration = int(duration)
    else:
        duration = ""
    result = event.result
    return [
        event.instance_uuid or "",
        event.event or "",
        start_text,
        start_sec,
        finish_text,
        finish_sec,
        duration,
        "" if result is None else result,
        event.instance_name or "",
        event.user_id or "",
        event.project_id or "",
        event.host or "",
        properties_json(event.properties),
    ]


def csv_field(text: str) -> str:
    """One csv field as ``csv.writer`` writes it (minimal quoting, ``"`` doubled)."""
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def instance_csv_lines(epoch: dt.datetime) -> Callable[..., str]:
    """A function giving the csv line of an instance event from its ten fields (positional, in
    :class:`~starcompactor.events.InstanceEvent` order).

    ``csv.writer.writerow`` costs ~5 µs per row on a small machine; this ~1.5 µs: one f-string, one scan
    for the characters that need quoting (a row that has them goes through ``csv.writer``), times through
    :class:`EpochClock`'s caches (inlined here: two method calls per row are measurable) and cached
    PROPERTIES text for the dict objects a source reuses (sources never change a dict once handed out).
    """
    clock = EpochClock(epoch)
    stamp = clock.stamp
    midnight = clock.midnight
    offset = clock.offset
    exact = clock.exact
    day_text = clock.day_text
    second_text = clock.second_text
    properties_text: Dict[int, Tuple[Any, str]] = {}

    def line(
        uuid: Any,
        name: Any,
        start: Any,
        finish: Any,
        result: Any,
        instance_name: Any,
        user: Any,
        project: Any,
        host: Any,
        properties: Dict[str, Any],
    ) -> str:
        start_text: Any
        start_sec: Any
        start_raw: Any
        finish_text: Any
        finish_sec: Any
        finish_raw: Any
        duration: Any
        if start is None:
            start_text = start_sec = start_raw = ""
        elif exact and not start.microsecond:
            delta = start - midnight
            days = delta.days
            seconds = delta.seconds
            start_text = day_text[days] + second_text[seconds]
            start_raw = days * 86400 + seconds - offset
            start_sec = -1 if start_raw < 0 else start_raw
        else:
            start_text, start_sec, start_raw = stamp(start)
        if finish is None:
            finish_text = finish_sec = duration = ""
        else:
            if exact and not finish.microsecond:
                delta = finish - midnight
                days = delta.days
                seconds = delta.seconds
                finish_text = day_text[days] + second_text[seconds]
                finish_raw = days * 86400 + seconds - offset
                finish_sec = -1 if finish_raw < 0 else finish_raw
            else:
                finish_text, finish_sec, finish_raw = stamp(finish)
            if start is None:
                duration = ""
            elif type(start_raw) is int and type(finish_raw) is int:
                duration = finish_raw - start_raw
            else:
                duration = (finish - start).total_seconds()
                if duration.is_integer():
                    duration = int(duration)
        text = (
            f"{uuid or ''},{name or ''},{start_text},{start_sec},{finish_text},{finish_sec},{duration},"
            f"{'' if result is None else result},{instance_name or ''},{user or ''},{project or ''},"
            f"{host or ''},"
        )
        if '"' in text or "\n" in text or "\r" in text or text.count(",") != 12:
            event = InstanceEvent(
                uuid, name, start, finish, result, instance_name, user, project, host, properties
            )
            return csv_quoted_line(csv_instance_row(event, epoch))
        cached = properties_text.get(id(properties))
        if cached is None or cached[0] is not properties:
            if len(properties_text) >= 4096:
                properties_text.clear()
            cached = properties_text[id(properties)] = (properties, csv_field(properties_json(properties)))
        return text + cached[1] + "\n"

    return line


def csv_quoted_line(row: List[Any], dialect: str = "unix-lf") -> str:
    """One csv line through ``csv.writer``: ``excel`` (CRLF, the original's) or ``\\n``-terminated.

    ``csv.writer`` quotes a field holding a character of the line terminator, so with ``\\n`` alone a
    field holding a bare ``\\r`` would go out unquoted and no reader could read the row back: the line is
    made with CRLF (both characters force quoting) and its terminator swapped.
    """
    buffer = io.StringIO()
    if dialect == "excel":
        csv.writer(buffer).writerow(row)
        return buffer.getvalue()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue()[:-2] + "\n"


def csv_line_maker() -> Callable[[List[Any]], str]:
    """:func:`csv_quoted_line` (``unix-lf``) with one ``csv.writer`` and buffer for every line: making
    them costs more than writing a machine event's line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    seek, truncate, writerow, getvalue = buffer.seek, buffer.truncate, writer.writerow, buffer.getvalue

    def line(row: List[Any]) -> str:
        seek(0)
        truncate()
        writerow(row)
        return getvalue()[:-2] + "\n"

    return line


def instance_line_maker(fmt: str, epoch: dt.datetime) -> Optional[Callable[..., str]]:
    """The function giving the ``fmt`` writer's line for one instance event, from the event's ten fields
    (positional, in :class:`~starcompactor.events.InstanceEvent` order), or None for a format that is
    not lines of text (parquet).

    The writers use it (through :func:`instance_line_formatter`), and so does the database path, which
    formats rows without making events of them: one implementation of each format.
    """
    if fmt == "csv":
        return instance_csv_lines(epoch)
    if fmt == "legacy-csv":

        def legacy_line(*fields: Any) -> str:
            return csv_quoted_line(legacy_instance_row(InstanceEvent(*fields), epoch), "excel")

        return legacy_line
    if fmt == "jsonl":
        dumps = orjson.dumps
        option = orjson.OPT_APPEND_NEWLINE

        def json_line(*fields: Any) -> str:
            record = instance_record(InstanceEvent(*fields), epoch)
            return dumps(record, default=json_default, option=option).decode("utf-8")

        return json_line
    return None


def instance_line_formatter(
    fmt: str, epoch: dt.datetime
) -> Optional[Callable[[List[InstanceEvent]], List[str]]]:
    """A function turning a batch of (masked) instance events into the lines the ``fmt`` writer writes
    for them, or None for a format that is not lines of text (parquet)."""
    make = instance_line_maker(fmt, epoch)
    if make is None:
        return None
    return lambda events: [make(*event) for event in events]
