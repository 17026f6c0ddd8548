"""``OUTPUT.manifest.json``: what a trace was made from and how (never the key itself)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

import orjson

from .._version import __version__
from .atomic import atomic_output
from .records import iso, json_default

if TYPE_CHECKING:
    from .writers import TraceWriter


def manifest_path(output: str) -> Optional[str]:
    return None if output == "-" else output + ".manifest.json"


def write_manifest(output: str, manifest: Dict[str, Any]) -> Optional[str]:
    """Write ``OUTPUT.manifest.json`` beside the trace (nothing for stdout). Never holds the key."""
    path = manifest_path(output)
    if path is None:
        return None
    data = orjson.dumps(
        manifest, default=_manifest_default, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    )
    with atomic_output(path, binary=True) as handle:
        handle.write(data)
    return path


def _manifest_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return json_default(value)


def base_manifest(
    kind: str,
    *,
    epoch: dt.datetime,
    fmt: str,
    masking_method: str,
    key_fingerprint: Optional[str],
    writer: TraceWriter,
    extra: Optional[Dict[str, Any]] = None,
    inputs: Sequence[Dict[str, Any]] = (),
) -> Dict[str, Any]:
    manifest: Dict[str, Any] = {
        "tool": "starcompactor",
        "version": __version__,
        "trace": kind,
        "format": fmt,
        "epoch": epoch.isoformat(),
        "masking": {"method": masking_method, "key_fingerprint": key_fingerprint},
        "inputs": list(inputs),
        "counts": dict(sorted(writer.counts.items())),
        "events": sum(writer.counts.values()),
        "time_range": {"first": iso(writer.first), "last": iso(writer.last)},
    }
    if extra:
        manifest.update(extra)
    return manifest
