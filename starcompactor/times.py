"""Times, the way every stage needs them: naive UTC ``datetime`` objects.

OpenStack writes DATETIME columns in naive UTC; everything read from elsewhere (a file name, an API, the
command line, a Parquet column, a dump's ``SET TIME_ZONE``) is brought to the same form here, and the
writers turn it into text and seconds since the trace epoch (fast: :class:`EpochClock`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, Optional, Tuple

from .errors import ConfigError


def to_utc(value: dt.datetime) -> dt.datetime:
    """A naive UTC datetime from an aware one (a naive one is taken as UTC already)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def parse_time(text: str, what: str = "time") -> dt.datetime:
    """ISO 8601 (``2015-09-17T00:00:00``, ``2015-09-17 00:00``, ``…Z``, ``…+02:00``) → naive UTC.

    A bad value is a :class:`ConfigError` naming ``what`` (the flag or setting it came from).
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{what}: not an ISO 8601 time: {text!r}") from exc
    return to_utc(parsed)


def datetime_or_none(text: Any) -> Optional[dt.datetime]:
    """DATETIME/TIMESTAMP text (str or bytes) → naive datetime; zero or invalid dates → None.

    ``fromisoformat`` is C and several times faster than a regex-based converter.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("ascii")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def as_datetime(value: Any) -> Optional[dt.datetime]:
    """A time column's value, typed by the reader or still text (no CREATE TABLE): naive UTC or None.

    Zero dates (``0000-00-00 …``) and text that is not a time are None: they date nothing.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("ascii", "replace")
    text = str(value).strip()
    if not text or text.startswith("0000"):
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return to_utc(dt.datetime.fromisoformat(text.replace("T", " ")))
    except ValueError:
        return None


_OFFSET = re.compile(r"^([+-])(\d{1,2}):(\d{2})$")


def parse_time_zone(value: str) -> Optional[dt.tzinfo]:
    """``'+00:00'`` → a fixed-offset zone, ``'Europe/Paris'`` → that zone; ``SYSTEM`` → None (unknown)."""
    m = _OFFSET.match(value.strip())
    if not m:
        if value.strip().upper() in ("SYSTEM", ""):
            return None
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(value.strip())
        except (ImportError, ValueError, KeyError, OSError):  # unknown name, no tz database
            return None
    sign = -1 if m.group(1) == "-" else 1
    return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def seconds_since(time: Optional[dt.datetime], epoch: dt.datetime, *, clamp: bool = True) -> Optional[float]:
    """Seconds from ``epoch`` to ``time``; -1 before the epoch when ``clamp``; None when time is missing."""
    if time is None:
        return None
    value = (time - epoch).total_seconds()
    if clamp and value < 0:
        return -1
    return value


class DayText(Dict[int, str]):
    """days since a midnight → ``YYYY-MM-DDT`` (computed on first use)."""

    def __init__(self, midnight: dt.datetime) -> None:
        super().__init__()
        self.midnight = midnight

    def __missing__(self, days: int) -> str:
        text = self[days] = (self.midnight + dt.timedelta(days=days)).date().isoformat() + "T"
        return text


class SecondText(Dict[int, str]):
    """second of the day → ``HH:MM:SS`` (computed on first use)."""

    def __missing__(self, second: int) -> str:
        text = self[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        return text


class EpochClock:
    """ISO text and seconds since the epoch of naive datetimes, for writers of millions of rows.

    ``datetime.isoformat()`` costs ~1 µs; here a time without microseconds is split into whole days and
    seconds of day since midnight before the epoch, and the text is two cached pieces (a day's
    ``YYYY-MM-DDT``, a second's ``HH:MM:SS``). Anything else (microseconds, time zones) takes the
    general route. Both give the same text and numbers.
    """

    def __init__(self, epoch: dt.datetime) -> None:
        self.epoch = epoch
        self.midnight = epoch.replace(hour=0, minute=0, second=0, microsecond=0)
        self.offset = (epoch - self.midnight).seconds
        self.exact = epoch.microsecond == 0 and epoch.tzinfo is None
        self.day_text = DayText(self.midnight)
        self.second_text = SecondText()

    def stamp(self, time: dt.datetime) -> Tuple[str, Any, Any]:
        """(ISO text, seconds since the epoch clamped at -1, unclamped seconds)."""
        if self.exact and not time.microsecond and time.tzinfo is None:
            delta = time - self.midnight
            seconds = delta.days * 86400 + delta.seconds - self.offset
            text = self.day_text[delta.days] + self.second_text[delta.seconds]
            return text, (-1 if seconds < 0 else seconds), seconds
        seconds_f = (time - self.epoch).total_seconds()
        value: Any = int(seconds_f) if seconds_f.is_integer() else seconds_f
        return time.isoformat(), (-1 if value < 0 else value), value
