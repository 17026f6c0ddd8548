"""``OUTPUT.manifest.json``: what a trace was made from and how (never the key itself).

Every string in it is cleaned on the way out: credentials in URIs redacted, bytes that were not UTF-8 (a
file name's surrogate escapes) written as ``\\xNN``, so that writing it cannot fail on a name.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

import orjson

from .._version import __version__
from ..errors import OutputError, redact, unescape_surrogates
from .atomic import AtomicFile, commit_together
from .records import iso, json_default

if TYPE_CHECKING:
    from .writers import TraceWriter


def manifest_path(output: str) -> Optional[str]:
    return None if output == "-" else output + ".manifest.json"


def write_manifest(
    output: str, manifest: Dict[str, Any], *, writer: Optional[TraceWriter] = None
) -> Optional[str]:
    """Write ``OUTPUT.manifest.json`` beside the trace (nothing for stdout, a FIFO or a device).

    ``writer``: a writer opened with ``hold=True``, whose finished trace is put in place together with
    the manifest (:func:`~starcompactor.traces.atomic.commit_together`); on any error neither is.
    Never holds the key.
    """
    trace = writer.output if writer is not None else None
    path = manifest_path(output)
    if path is None or (trace is not None and trace.stream):
        if trace is not None:
            trace.commit()
        return None
    try:
        data = orjson.dumps(
            clean(manifest), default=_manifest_default, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
    except (TypeError, ValueError) as exc:
        if trace is not None:
            trace.discard()
        raise OutputError(path, f"cannot write the manifest: {exc}") from None
    target = AtomicFile(path, binary=True, private=trace.private if trace is not None else False)
    try:
        handle = target.open()
        handle.write(data)
        target.finish()
    except BaseException:
        target.discard()
        if trace is not None:
            trace.discard()
        raise
    if trace is None:
        try:
            target.commit()
        except BaseException:
            target.discard()
            raise
    else:
        commit_together(trace, target)
    return path


def clean(value: Any) -> Any:
    """``value`` (dicts, lists, strings …) with every string fit to publish: URI credentials redacted,
    surrogate escapes (bytes that were not UTF-8) written as ``\\xNN``."""
    if isinstance(value, str):
        text = redact(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = unescape_surrogates(text)
        return text
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


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
