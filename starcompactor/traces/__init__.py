"""Records → files, for both traces: ``records`` (the typed output record of an event), ``lines`` (fast
text lines of instance events), ``legacy`` (the original's exact rows), ``writers`` (one class per
format, registered by name), ``atomic`` (whole files or none), ``manifest`` (what a trace was made from),
``result`` (what making a trace returns).
"""

from __future__ import annotations

from .manifest import base_manifest, manifest_path, write_manifest
from .records import INSTANCE_COLUMNS, MACHINE_COLUMNS
from .result import Progress, ProgressCallback, TraceResult
from .writers import TraceWriter, default_output, open_writer, register_writer, supported_formats

__all__ = [
    "INSTANCE_COLUMNS",
    "MACHINE_COLUMNS",
    "Progress",
    "ProgressCallback",
    "TraceResult",
    "TraceWriter",
    "base_manifest",
    "default_output",
    "manifest_path",
    "open_writer",
    "register_writer",
    "supported_formats",
    "write_manifest",
]
